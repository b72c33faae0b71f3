"""Roles of people: pure (the policy decides on them without the database)."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    """A person's facility-wide role. Leading a project is per project (Membership)."""

    RESEARCHER = "researcher"
    OPERATOR = "operator"
    ADMIN = "admin"


class ProjectRole(enum.StrEnum):
    LEAD = "lead"
    MEMBER = "member"
