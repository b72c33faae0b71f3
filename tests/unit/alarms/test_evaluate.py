"""The alarm rules, each on its own, without a database."""

from __future__ import annotations

import pytest

from federica.alarms.evaluate import (
    DeviceState,
    Kind,
    Maintenance,
    OpenAlarm,
    PortState,
    evaluate,
)

DOWN, UP = 2, 1
N = 3


def ports(prg_end: int = UP, erl_end: int = UP, spare: int = UP) -> list[PortState]:
    return [
        PortState("prg", "ge-0/0/0", UP, prg_end, "prg-erl"),
        PortState("erl", "ge-0/0/0", UP, erl_end, "prg-erl"),
        PortState("prg", "ge-0/0/9", UP, spare),
    ]


def healthy(prg: int = 0, erl: int = 0) -> list[DeviceState]:
    return [DeviceState("prg", prg, "timeout" if prg else ""), DeviceState("erl", erl)]


def test_nothing_down_raises_nothing() -> None:
    d = evaluate(healthy(), ports(), [], unreachable_after=N)
    assert (d.raise_, d.clear, d.suppress, d.unsuppress) == ([], [], [], [])


def test_a_link_end_down_raises_one_alarm_naming_the_link_even_with_both_ends_down() -> None:
    d = evaluate(healthy(), ports(prg_end=DOWN, erl_end=DOWN), [], unreachable_after=N)
    assert [(r.kind, r.subject, r.link) for r in d.raise_] == [
        (Kind.LINK_DOWN, "prg-erl", "prg-erl")
    ]
    assert d.raise_[0].ports == ("erl:ge-0/0/0", "prg:ge-0/0/0")


def test_a_port_on_no_link_raises_port_down_and_admin_down_raises_nothing() -> None:
    d = evaluate(healthy(), ports(spare=DOWN), [], unreachable_after=N)
    assert [(r.kind, r.subject) for r in d.raise_] == [(Kind.PORT_DOWN, "prg:ge-0/0/9")]
    shut = [PortState("prg", "ge-0/0/9", DOWN, DOWN)]
    assert evaluate(healthy(), shut, [], unreachable_after=N).raise_ == []


def test_an_open_alarm_is_not_raised_twice_and_clears_when_the_condition_goes() -> None:
    alarm = OpenAlarm(7, Kind.LINK_DOWN, "prg-erl", False)
    again = evaluate(healthy(), ports(prg_end=DOWN), [alarm], unreachable_after=N)
    assert (again.raise_, again.clear) == ([], [])
    back = evaluate(healthy(), ports(), [alarm], unreachable_after=N)
    assert back.clear == [7]


@pytest.mark.parametrize("failures", [1, N - 1])
def test_a_device_failing_fewer_than_n_polls_raises_nothing_and_clears_nothing(
    failures: int,
) -> None:
    alarm = OpenAlarm(7, Kind.PORT_DOWN, "prg:ge-0/0/9", False)
    # prg's port states are from before it stopped answering: they say nothing now.
    d = evaluate(healthy(prg=failures), ports(), [alarm], unreachable_after=N)
    assert (d.raise_, d.clear, d.suppress) == ([], [], [])


def test_n_failed_polls_raise_device_unreachable_and_suppress_its_ports_alarms() -> None:
    link = OpenAlarm(7, Kind.LINK_DOWN, "prg-erl", False)
    spare = OpenAlarm(8, Kind.PORT_DOWN, "prg:ge-0/0/9", False)
    # erl still answers: its end of the link is down, yet prg being away hides the link.
    d = evaluate(healthy(prg=N), ports(erl_end=DOWN), [link, spare], unreachable_after=N)
    assert [(r.kind, r.subject) for r in d.raise_] == [(Kind.DEVICE_UNREACHABLE, "prg")]
    assert "timeout" in d.raise_[0].detail
    assert sorted(d.suppress) == [7, 8] and d.clear == []


def test_no_new_port_alarm_while_its_device_is_unreachable() -> None:
    device = OpenAlarm(9, Kind.DEVICE_UNREACHABLE, "prg", False)
    d = evaluate(healthy(prg=N + 2), ports(erl_end=DOWN), [device], unreachable_after=N)
    assert (d.raise_, d.clear) == ([], [])


def test_the_device_answering_again_clears_it_and_brings_its_ports_alarms_back() -> None:
    device = OpenAlarm(9, Kind.DEVICE_UNREACHABLE, "prg", False)
    link = OpenAlarm(7, Kind.LINK_DOWN, "prg-erl", True)
    spare = OpenAlarm(8, Kind.PORT_DOWN, "prg:ge-0/0/9", True)
    d = evaluate(healthy(), ports(prg_end=DOWN), [device, link, spare], unreachable_after=N)
    assert sorted(d.clear) == [8, 9]  # the spare port is up again; the link is not
    assert d.unsuppress == [7]
    assert d.raise_ == []


def test_maintenance_keeps_new_alarms_silent_but_lets_open_ones_clear() -> None:
    on_prg = Maintenance(devices=frozenset({"prg"}))
    quiet = evaluate(healthy(prg=N), ports(), [], unreachable_after=N, maintenance=on_prg)
    assert quiet.raise_ == []
    links = evaluate(healthy(), ports(erl_end=DOWN, spare=DOWN), [], unreachable_after=N,
                     maintenance=on_prg)  # fmt: skip
    assert links.raise_ == []  # erl's end of a link to prg; prg's own port
    on_link = Maintenance(links=frozenset({"prg-erl"}))
    d = evaluate(healthy(), ports(erl_end=DOWN, spare=DOWN), [], unreachable_after=N,
                 maintenance=on_link)  # fmt: skip
    assert [r.subject for r in d.raise_] == ["prg:ge-0/0/9"]
    alarm = OpenAlarm(7, Kind.LINK_DOWN, "prg-erl", False)
    assert evaluate(healthy(), ports(), [alarm], unreachable_after=N, maintenance=on_prg).clear == [
        7
    ]


def test_unreachable_after_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        evaluate([], [], [], unreachable_after=0)


def test_an_alarm_raised_by_a_service_is_left_to_it() -> None:
    """An e-stop's device alarm holds no polled condition: a poll neither clears it nor
    suppresses it, whatever the device's state (the e-stop's lift clears it)."""
    open_ = [OpenAlarm(7, Kind.ESTOP_DEVICE, "prg-mx", False)]
    for devices in (healthy(), healthy(prg=5)):
        d = evaluate(devices, ports(), open_, unreachable_after=3)
        assert 7 not in d.clear + d.suppress + d.unsuppress
