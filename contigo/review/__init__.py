"""The review queue's Contigo side: finders the central server runs, services and pages.

The sync engine (:mod:`sync.server.review`) opens, joins and closes items; this package tells it
what only Contigo can know (blind-index duplicates, implausible weights, site codes) and lets
supervisors and nutrition leads read and resolve items on a laptop or on the central server.
"""
