"""Alarms on the facility's state as monitoring sees it (issue 20, part 5)."""
