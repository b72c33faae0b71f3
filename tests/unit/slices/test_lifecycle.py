"""The one table of slice status moves and the one function that makes them."""

from __future__ import annotations

import datetime as dt

import pytest

from federica.slices.lifecycle import (
    HOLDING,
    TRANSITIONS,
    IllegalTransition,
    SliceStatus,
    move,
)

S = SliceStatus
AT = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)


class FakeSlice:
    def __init__(self, status: SliceStatus) -> None:
        self.name, self.status = "lab", status
        self.history: list[tuple[SliceStatus, str]] = []

    def _record_status(self, status: SliceStatus, at: dt.datetime, reason: str) -> None:
        self.status = status
        self.history.append((status, reason))


def test_every_status_has_its_row_and_only_ended_is_final() -> None:
    assert set(TRANSITIONS) == set(SliceStatus)
    assert [s for s, nxt in TRANSITIONS.items() if not nxt] == [S.ENDED]
    assert S.ENDED not in HOLDING and S.RELEASING not in HOLDING


@pytest.mark.parametrize(
    ("current", "new"),
    [(c, n) for c in SliceStatus for n in SliceStatus if n in TRANSITIONS[c]],
)
def test_a_legal_move_is_made_and_recorded(current: SliceStatus, new: SliceStatus) -> None:
    sl = FakeSlice(current)
    move(sl, new, AT, "because")
    assert sl.status is new and sl.history == [(new, "because")]


@pytest.mark.parametrize(
    ("current", "new"),
    [(c, n) for c in SliceStatus for n in SliceStatus if n not in TRANSITIONS[c]],
)
def test_an_illegal_move_is_refused_and_changes_nothing(
    current: SliceStatus, new: SliceStatus
) -> None:
    sl = FakeSlice(current)
    with pytest.raises(IllegalTransition, match=f"slice lab is {current.value}") as info:
        move(sl, new, AT, "because")
    assert info.value.status == 409
    assert sl.status is current and sl.history == []


def test_every_way_out_of_a_failure_or_an_emergency_stop_goes_through_a_release() -> None:
    assert TRANSITIONS[S.FAILED] == {S.RELEASING}
    assert TRANSITIONS[S.SHUTDOWN] == {S.ACTIVE, S.RELEASING}
    assert TRANSITIONS[S.RELEASING] == {S.ENDED, S.FAILED}


def test_nothing_else_sets_a_slice_status() -> None:
    """Booking, release, extension, the worker, the emergency stop: all through `move`
    (the booking's first status is lifecycle.INITIAL). A new shortcut fails here."""
    import re
    from pathlib import Path

    import federica

    root = Path(federica.__file__).parent
    setter = re.compile(r"\.status\s*=[^=]|_record_status\(|update\(Slice\)")
    found = [
        (str(path.relative_to(root)), line.strip().split("(")[0])
        for path in sorted(root.rglob("*.py"))
        for line in path.read_text().splitlines()
        if setter.search(line)
    ]
    assert found == [
        ("slices/lifecycle.py", "def _record_status"),  # the protocol
        ("slices/lifecycle.py", "sl._record_status"),  # move
        ("slices/models.py", "def _record_status"),
        ("slices/models.py", "self.status = status"),
    ]
