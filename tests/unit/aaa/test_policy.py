"""The policy table: who may do what, decided without any I/O."""

from __future__ import annotations

import pytest

from federica.aaa.models import Role
from federica.aaa.policy import (
    Action,
    Principal,
    Scope,
    allowed_projects,
    booking_project,
    can_see,
    console,
    decide,
)

ALICE = Principal("alice", Role.RESEARCHER, user_id=1, projects=frozenset({"alpha"}))
LEAD = Principal("lena", Role.RESEARCHER, user_id=2, projects=frozenset({"alpha"}),
                 leads=frozenset({"alpha"}))  # fmt: skip
OPERATOR = Principal("olga", Role.OPERATOR, user_id=3)
ADMIN = Principal("adam", Role.ADMIN, user_id=4)


def test_nobody_signed_in_may_do_anything() -> None:
    for action in Action:
        assert not decide(None, action, project="alpha").allowed


@pytest.mark.parametrize("action", [Action.SLICE_READ, Action.SLICE_CREATE, Action.SLICE_CHANGE])
def test_researchers_act_on_their_projects_slices_only(action: Action) -> None:
    assert decide(ALICE, action, project="alpha").allowed
    refused = decide(ALICE, action, project="beta")
    assert not refused.allowed and "not a member of project 'beta'" in refused.reason
    assert not decide(ALICE, action, project=None).allowed  # the facility's own slices
    assert decide(ALICE, action, project="beta", owner_id=1).allowed  # booked it herself


def test_facility_wide_actions_by_role() -> None:
    staff_only = [
        Action.MAINTENANCE_MANAGE,
        Action.QUOTA_MANAGE,
        Action.SUBSTRATE_MANAGE,
        Action.AUDIT_READ,
        Action.USER_READ,
    ]
    for action in staff_only:
        assert not decide(ALICE, action).allowed
        assert decide(OPERATOR, action).allowed and decide(ADMIN, action).allowed
    for action in (Action.USER_MANAGE, Action.PROJECT_MANAGE):
        assert not decide(OPERATOR, action).allowed and decide(ADMIN, action).allowed
    for action in (Action.SUBSTRATE_READ, Action.CALENDAR_READ, Action.TOKEN_OWN):
        assert decide(ALICE, action).allowed


def test_only_a_lead_manages_members() -> None:
    assert not decide(ALICE, Action.PROJECT_MEMBERS, project="alpha").allowed
    assert decide(LEAD, Action.PROJECT_MEMBERS, project="alpha").allowed
    assert not decide(LEAD, Action.PROJECT_MEMBERS, project="beta").allowed
    assert not decide(OPERATOR, Action.PROJECT_MEMBERS, project="alpha").allowed
    assert decide(ADMIN, Action.PROJECT_MEMBERS, project="alpha").allowed


def test_a_token_limits_its_owner_to_its_scopes() -> None:
    read_only = Principal("adam", Role.ADMIN, user_id=4, scopes=frozenset({Scope.READ}))
    assert decide(read_only, Action.AUDIT_READ).allowed
    refused = decide(read_only, Action.SLICE_CREATE, project="alpha")
    assert not refused.allowed and "scope 'slices'" in refused.reason
    assert not decide(read_only, Action.USER_MANAGE).allowed
    # A scope never adds what the role lacks.
    wide = Principal("alice", Role.RESEARCHER, user_id=1, scopes=frozenset(Scope))
    assert not decide(wide, Action.USER_MANAGE).allowed


def test_the_console_is_an_administrator() -> None:
    local = console("root")
    assert local.username == "local:root" and local.via == "cli"
    assert all(decide(local, a, project="any").allowed for a in Action)


def test_which_slices_one_may_list() -> None:
    assert allowed_projects(ALICE) == frozenset({"alpha"})
    assert allowed_projects(OPERATOR) is None


def test_the_project_a_booking_is_charged_to() -> None:
    assert booking_project(ALICE, None) == ("alpha", "")  # her only project
    assert booking_project(ALICE, "alpha") == ("alpha", "")
    project, why = booking_project(ALICE, "beta")
    assert project is None and "not a member" in why
    two = Principal("t", Role.RESEARCHER, user_id=9, projects=frozenset({"a", "b"}))
    assert booking_project(two, None)[1] == "say which project: you are a member of a, b"
    none = Principal("n", Role.RESEARCHER, user_id=10)
    assert "not a member of any project" in booking_project(none, None)[1]
    assert booking_project(OPERATOR, None) == (None, "")


def test_a_member_who_is_not_a_lead_is_told_so() -> None:
    refused = decide(ALICE, Action.PROJECT_MEMBERS, project="alpha")
    assert not refused.allowed
    assert refused.reason == "only the leads of project 'alpha' may change its members"
    assert decide(LEAD, Action.PROJECT_MEMBERS, project="alpha").allowed
    outsider = decide(ALICE, Action.PROJECT_MEMBERS, project="beta")
    assert outsider.reason == "you are not a member of project 'beta'"


def test_what_a_caller_may_know_exists() -> None:
    assert can_see(ALICE, "alpha") and not can_see(ALICE, "beta") and not can_see(None, "alpha")
    assert can_see(ALICE, "beta", owner_id=1)  # booked it herself
    assert not can_see(ALICE, None, owner_id=4)  # the facility's own slice
    assert can_see(OPERATOR, "beta") and can_see(ADMIN, None)
    # Scopes limit what a token may do, not what its holder may know exists.
    narrow = Principal("alice", Role.RESEARCHER, user_id=1, projects=frozenset({"alpha"}),
                       scopes=frozenset({Scope.SLICES}))  # fmt: skip
    assert can_see(narrow, "alpha")
