"""The per-slice alarms' rules: a circuit carrying more than it booked, a node that died."""

from __future__ import annotations

from federica.alarms.evaluate import (
    CircuitLoad,
    Kind,
    NodeHealth,
    OpenAlarm,
    evaluate_slices,
)


def load(carried_bps: float | None, booked: int = 10) -> CircuitLoad:
    return CircuitLoad(7, "lab", "ab", booked, carried_bps, "prg-mx:ge-1/0/0.1203")


def node(state: str | None) -> NodeHealth:
    return NodeHealth(7, "lab", "a", "prg-v1", state)


def test_a_circuit_over_its_booking_by_more_than_the_tolerance_raises() -> None:
    assert evaluate_slices([load(10.9e6)], [], []).raise_ == []
    (r,) = evaluate_slices([load(11.5e6)], [], []).raise_
    assert (r.kind, r.subject, r.device) == (Kind.CIRCUIT_OVER_BOOKING, "s7:ab", "prg-mx")
    assert "11.50 Mb/s" in r.detail and "booked 10 Mb/s" in r.detail
    assert "prg-mx:ge-1/0/0.1203" in r.detail
    assert evaluate_slices([load(10.5e6)], [], [], tolerance=0.01).raise_ != []


def test_over_booking_is_deduplicated_kept_while_unknown_and_cleared() -> None:
    open_ = [OpenAlarm(3, Kind.CIRCUIT_OVER_BOOKING, "s7:ab", False)]
    still = evaluate_slices([load(20e6)], [], open_)
    assert still.raise_ == [] and still.clear == []
    assert evaluate_slices([load(None)], [], open_).clear == []  # not polled lately
    assert evaluate_slices([load(5e6)], [], open_).clear == [3]
    assert evaluate_slices([], [], open_).clear == [3]  # the slice let the circuit go


def test_a_node_not_running_raises_and_running_again_clears() -> None:
    (r,) = evaluate_slices([], [node("failed")], []).raise_
    assert (r.kind, r.subject) == (Kind.NODE_DIED, "s7:a")
    assert "prg-v1" in r.detail and "failed" in r.detail
    assert evaluate_slices([], [node("running")], []).raise_ == []
    assert evaluate_slices([], [node(None)], []).raise_ == []  # V-node not sampled
    open_ = [OpenAlarm(4, Kind.NODE_DIED, "s7:a", False)]
    assert evaluate_slices([], [node(None)], open_).clear == []
    assert evaluate_slices([], [node("absent")], open_).raise_ == []
    assert evaluate_slices([], [node("running")], open_).clear == [4]


def test_other_kinds_of_open_alarms_are_left_alone() -> None:
    open_ = [OpenAlarm(5, Kind.LINK_DOWN, "prg-erl", False)]
    d = evaluate_slices([], [], open_)
    assert d.clear == [] and d.raise_ == []
