"""Reporting: a de-identified table of facts, kept in step with the record, and the monthly
indicators counted over it (see ``docs/reports.md``)."""
