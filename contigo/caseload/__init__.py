"""Caseload review: line lists of who is in treatment, who defaulted, who is overdue, for the
sites a nutrition lead, an administrator or a supervisor oversees."""
