"""Transfers of a person between sites, also across countries (DESIGN.md §3, SYNC.md §2.10):
the field services and pages, the local checks of a transferred person, and Contigo's hooks for
the sync engine's transfer and scope handling."""
