"""Slice states, the one table of legal moves, and the one function that makes a move.

Every status change (booking, release, extension, the worker, the emergency stop) goes
through `move`, so an illegal one is refused wherever it comes from.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Protocol

from federica.errors import Conflict


class SliceStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    RELEASING = "releasing"
    ENDED = "ended"
    FAILED = "failed"
    SHUTDOWN = "shutdown"  # emergency stop: isolated, state kept, lifted by an operator


class PartState(enum.StrEnum):
    """A node's or circuit's own state; the slice's status is derived from these."""

    PLANNED = "planned"
    READY = "ready"
    FAILED = "failed"
    REMOVED = "removed"


class EventKind(enum.StrEnum):
    START = "start"
    WARN = "warn"  # warn before end
    END = "end"


S = SliceStatus
TRANSITIONS: dict[SliceStatus, frozenset[SliceStatus]] = {
    S.SCHEDULED: frozenset({S.PROVISIONING, S.RELEASING, S.FAILED, S.SHUTDOWN}),
    S.PROVISIONING: frozenset({S.ACTIVE, S.FAILED, S.RELEASING, S.SHUTDOWN}),
    S.ACTIVE: frozenset({S.RELEASING, S.FAILED, S.SHUTDOWN}),
    S.RELEASING: frozenset({S.ENDED, S.FAILED}),
    S.FAILED: frozenset({S.RELEASING}),  # a failed slice can always be released
    S.SHUTDOWN: frozenset({S.ACTIVE, S.RELEASING}),  # lifted, or released
    S.ENDED: frozenset(),
}
INITIAL = S.SCHEDULED  # what a booking is
HOLDING = frozenset({S.SCHEDULED, S.PROVISIONING, S.ACTIVE, S.SHUTDOWN, S.FAILED})
EXTENDABLE = frozenset({S.SCHEDULED, S.PROVISIONING, S.ACTIVE})


class IllegalTransition(Conflict):
    title = "Not possible in this state"
    type_slug = "illegal-transition"


def check_transition(current: SliceStatus, new: SliceStatus, slice_name: str) -> None:
    if new not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "nothing"
        raise IllegalTransition(
            f"slice {slice_name} is {current.value}; it can move to {allowed}, not {new.value}"
        )


class Moving(Protocol):
    """A slice as `move` sees it (models.Slice); kept abstract so this module stays pure."""

    name: str
    status: SliceStatus

    def _record_status(self, status: SliceStatus, at: dt.datetime, reason: str) -> None: ...


def move(sl: Moving, new: SliceStatus, at: dt.datetime, reason: str) -> None:
    """The one way a slice changes status: checked against TRANSITIONS, kept in its
    history with the reason."""
    check_transition(sl.status, new, sl.name)
    sl._record_status(new, at, reason)


def derived_status(current: SliceStatus, parts: list[PartState]) -> SliceStatus:
    """What a slice that was `current` is, given its parts: never active while a part
    failed or is not ready yet."""
    if current in (S.ENDED, S.RELEASING, S.SHUTDOWN, S.SCHEDULED):
        return current
    if any(p is PartState.FAILED for p in parts):
        return S.FAILED
    if current is S.PROVISIONING and all(p is PartState.READY for p in parts):
        return S.ACTIVE
    if current is S.ACTIVE and any(p is not PartState.READY for p in parts):
        return S.FAILED
    return current
