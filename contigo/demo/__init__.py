"""A demo instance: two countries, four sites, their users, and nine months of realistic records.

``contigo demo`` builds it so that a newcomer sees what a working field laptop looks like: who is
due today and overdue, children treated for acute malnutrition who recovered, defaulted or are
still in treatment, flagged measurements, mothers and their children, and children seen on both
sides of a border. Sites and users go through the real services (``contigo init``'s, then
:func:`auth.services.add_user`). Persons and their records are the rows the services write
(:func:`persons.services.register`, :func:`encounters.services.record`,
:func:`episodes.services.admit` and ``close``): every value encrypted, indexed, assessed,
audited and in the outbox exactly as typed records would be, made in memory and inserted in
bulk (:mod:`contigo.demo.bulk`; ``tests/test_demo_bulk.py`` builds one plan both ways and finds
the same record). The build is in :mod:`contigo.demo.build`.

Growth is drawn from the WHO Child Growth Standards themselves: each child gets a length-for-age
z-score of their own, and each visit a weight-for-length z-score from the child's trajectory
(steady, declining into MAM or SAM and recovering, ...), which the LMS tables turn back into
centimetres and kilograms. The engine then classifies those values like any others.

One transaction per 40 persons; only the users' passwords pay the full scrypt cost. A seed
gives the same people and stories, dated relative to today. A build that fails part-way leaves
a partial instance, which a second run refuses: remove the folder and build again.
"""
