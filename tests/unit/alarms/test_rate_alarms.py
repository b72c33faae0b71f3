"""The rate alarms (utilisation, errors, discards), each rule on its own, no database."""

from __future__ import annotations

from collections.abc import Sequence

from federica.alarms.evaluate import (
    DeviceState,
    Kind,
    Maintenance,
    OpenAlarm,
    PortRates,
    Raise,
    RateSample,
    Thresholds,
    evaluate,
)

T = Thresholds(window_s=300, utilisation_percent=90, errors_per_s=1, discards_per_s=10)
MBPS = 1_000_000 / 8  # octets per second in one Mbit/s
N = 3


def samples(
    mbps: Sequence[float], errors: float = 0, discards: float = 0, step: float = 30
) -> tuple[RateSample, ...]:
    """One sample per poll, oldest first, ending at t = len * step."""
    return tuple(
        RateSample(i * step, (i + 1) * step, m * MBPS, 0.0, errors, discards)
        for i, m in enumerate(mbps)
    )


def link_end(s: tuple[RateSample, ...], device: str = "prg") -> PortRates:
    return PortRates(device, "ge-0/0/0", 1000, s, link="prg-erl")


def run(
    rates: list[PortRates], open_: list[OpenAlarm] | None = None, *, failing: str = ""
) -> list[tuple[Kind, str]]:
    devices = [DeviceState(d, N if d == failing else 0) for d in ("prg", "erl")]
    d = evaluate(devices, [], open_ or [], unreachable_after=N, rates=rates, thresholds=T)
    return [(r.kind, r.subject) for r in d.raise_]


def test_utilisation_over_the_threshold_at_every_poll_of_the_window_names_the_link() -> None:
    devices = [DeviceState("prg", 0), DeviceState("erl", 0)]
    d = evaluate(
        devices, [], [], unreachable_after=N, rates=[link_end(samples([950] * 10))], thresholds=T
    )
    (alarm,) = d.raise_
    assert (alarm.kind, alarm.subject, alarm.link) == (Kind.UTILISATION_HIGH, "prg-erl", "prg-erl")
    assert alarm.ports == ("prg:ge-0/0/0",)
    assert "95 %" in alarm.detail and "over 90 %" in alarm.detail


def test_a_burst_or_a_window_not_yet_covered_raises_nothing() -> None:
    assert run([link_end(samples([950] * 4 + [10] + [950] * 5))]) == []
    assert run([link_end(samples([950] * 5))]) == []  # 150 s of a 300 s window
    assert run([link_end(samples([900] * 10))]) == []  # at the threshold, not over


def test_a_port_on_no_link_is_measured_against_its_speed() -> None:
    port = PortRates("prg", "ge-1/0/1", 100, samples([95] * 10))
    assert run([port]) == [(Kind.UTILISATION_HIGH, "prg:ge-1/0/1")]
    assert run([PortRates("prg", "ge-1/0/1", None, samples([95] * 10))]) == []  # speed unknown


def test_errors_and_discards_over_their_rates() -> None:
    assert run([link_end(samples([1] * 10, errors=2))]) == [(Kind.ERRORS_HIGH, "prg-erl")]
    assert run([link_end(samples([1] * 10, discards=11))]) == [(Kind.DISCARDS_HIGH, "prg-erl")]
    assert run([link_end(samples([1] * 10, errors=0.5, discards=5))]) == []


def test_an_open_alarm_stays_while_over_and_clears_at_the_first_poll_under() -> None:
    alarm = OpenAlarm(7, Kind.UTILISATION_HIGH, "prg-erl", False)

    def decide(mbps: Sequence[float], failing: int = 0) -> tuple[list[int], list[Raise]]:
        d = evaluate(
            [DeviceState("prg", failing), DeviceState("erl", 0)],
            [],
            [alarm],
            unreachable_after=N,
            rates=[link_end(samples(mbps))],
            thresholds=T,
        )
        return d.clear, d.raise_

    # A dip inside the window, over again now: the alarm stays, nothing new.
    assert decide([950] * 8 + [10, 950]) == ([], [])
    assert decide([950] * 9 + [10]) == ([7], [])
    # prg's latest poll failed: its rates say nothing now; the alarm stays.
    assert decide([950] * 9 + [10], failing=1) == ([], [])


def test_an_unreachable_device_suppresses_and_maintenance_silences_rate_alarms() -> None:
    alarm = OpenAlarm(7, Kind.ERRORS_HIGH, "prg-erl", False)
    rates = [link_end(samples([1] * 10, errors=5))]
    d = evaluate(
        [DeviceState("prg", N), DeviceState("erl", 0)],
        [],
        [alarm],
        unreachable_after=N,
        rates=rates,
        thresholds=T,
    )
    assert d.suppress == [7] and d.clear == []
    quiet = evaluate(
        [DeviceState("prg", 0)],
        [],
        [],
        unreachable_after=N,
        rates=rates,
        thresholds=T,
        maintenance=Maintenance(links=frozenset({"prg-erl"})),
    )
    assert quiet.raise_ == []


def test_both_ends_over_are_one_link_alarm_naming_both() -> None:
    ends = [link_end(samples([950] * 10)), link_end(samples([990] * 10), device="erl")]
    devices = [DeviceState("prg", 0), DeviceState("erl", 0)]
    (alarm,) = evaluate(devices, [], [], unreachable_after=N, rates=ends, thresholds=T).raise_
    assert alarm.ports == ("erl:ge-0/0/0", "prg:ge-0/0/0")
