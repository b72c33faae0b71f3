"""Each rule of "rates done right" (federica.monitoring.rates), example and property."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from federica.monitoring.rates import C32, Kind, NoRate, Reading, step

T0 = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
INTERVAL = 30.0
KINDS = {"in_octets": Kind.COUNTER64, "in_errors": Kind.COUNTER32}


def reading(after_s: float, *, uptime_s: float | None = None, index: int = 1, **c: int) -> Reading:
    """A reading `after_s` seconds after T0, from an agent up since 1000 s before T0."""
    up = 1000 + after_s if uptime_s is None else uptime_s
    return Reading(T0 + dt.timedelta(seconds=after_s), round(up * 100), c, index)


def test_rate_is_delta_over_the_measured_interval_not_the_nominal_one() -> None:
    # The poll came 15 s late: 45 s passed, and the rate is over those 45 s.
    s = step(reading(0, in_octets=1000), reading(45, in_octets=10_000), KINDS, INTERVAL)
    assert s.per_second["in_octets"] == pytest.approx(9000 / 45)
    assert (s.start, s.end) == (T0, T0 + dt.timedelta(seconds=45))


@given(
    start=st.integers(0, 2**64 - 1),
    rate=st.integers(0, 10**10),
    seconds=st.floats(1, 3 * INTERVAL, allow_nan=False),
)
def test_counter64_rate_recovers_any_steady_rate(start: int, rate: int, seconds: float) -> None:
    moved = int(rate * seconds)
    if start + moved >= 2**64:
        start = 0
    s = step(
        reading(0, in_octets=start), reading(seconds, in_octets=start + moved), KINDS, INTERVAL
    )
    assert s.per_second["in_octets"] == pytest.approx(moved / seconds)
    assert s.void == {"in_errors": NoRate.MISSING}


def test_counter32_wrap_is_corrected() -> None:
    s = step(reading(0, in_errors=C32 - 100), reading(30, in_errors=200), KINDS, INTERVAL)
    assert s.per_second["in_errors"] == pytest.approx(300 / 30)


@given(start=st.integers(0, C32 - 1), moved=st.integers(0, C32 - 1))
def test_counter32_delta_is_exact_modulo_2_32(start: int, moved: int) -> None:
    end = (start + moved) % C32
    s = step(reading(0, in_errors=start), reading(30, in_errors=end), KINDS, INTERVAL)
    assert s.per_second["in_errors"] * 30 == pytest.approx(moved)


@given(start=st.integers(1, 2**64 - 1), back=st.integers(1, 2**64 - 1))
def test_counter64_that_went_back_starts_over(start: int, back: int) -> None:
    back = min(back, start)
    prev = reading(0, in_octets=start, in_errors=5)
    cur = reading(30, in_octets=start - back, in_errors=65)
    s = step(prev, cur, KINDS, INTERVAL)
    assert "in_octets" not in s.per_second
    assert s.void["in_octets"] is NoRate.COUNTER_RESET
    # Only that counter: the others of the same row still have their rate.
    assert s.per_second["in_errors"] == pytest.approx(2.0)
    # And the next step measures from the reset value.
    nxt = step(cur, reading(60, in_octets=start - back + 3000), KINDS, INTERVAL)
    assert nxt.per_second["in_octets"] == pytest.approx(100.0)


def test_sysuptime_that_went_back_voids_every_counter() -> None:
    # The agent restarted: its counters started over too, and a Counter32 that happens to be
    # lower would otherwise read as a wrap of almost 2**32.
    prev = reading(0, in_octets=10**9, in_errors=50)
    cur = reading(30, uptime_s=12, in_octets=10**9 + 5, in_errors=3)
    s = step(prev, cur, KINDS, INTERVAL)
    assert s.per_second == {}
    assert s.void == dict.fromkeys(KINDS, NoRate.AGENT_RESTART)


def test_restart_hidden_by_counter_magnitude_is_still_seen() -> None:
    # Up 1000 s at the first poll; restarted during a long (but not void) interval and up
    # 1040 s again 85 s later: sysUpTime went *up*, yet by far less than 85 s.
    prev = reading(0, in_octets=100, in_errors=1)
    cur = reading(85, uptime_s=1040, in_octets=5000, in_errors=2)
    assert step(prev, cur, KINDS, INTERVAL).void["in_octets"] is NoRate.AGENT_RESTART


def test_sysuptime_wrap_is_not_a_restart() -> None:
    # TimeTicks wrap after 2**32 hundredths of a second (497 days).
    prev = Reading(T0, C32 - 1000, {"in_octets": 0}, 1)
    cur = Reading(T0 + dt.timedelta(seconds=30), 2000, {"in_octets": 3000}, 1)
    assert step(prev, cur, KINDS, INTERVAL).per_second["in_octets"] == pytest.approx(100.0)


@given(
    gap=st.floats(0.5, 80, allow_nan=False),  # the whole step stays inside 3 intervals
    rtts=st.tuples(st.floats(0, 5, allow_nan=False), st.floats(0, 5, allow_nan=False)),
    reads=st.tuples(st.floats(0, 1, allow_nan=False), st.floats(0, 1, allow_nan=False)),
)
def test_an_answer_however_slow_is_not_a_restart(
    gap: float, rtts: tuple[float, float], reads: tuple[float, float]
) -> None:
    # Each request is sent, the agent reads sysUpTime somewhere within its round trip, and
    # the answer arrives (the reading's time). No restart, whatever the latencies.
    sent = [0.0, rtts[0] + gap]
    arrived = [sent[0] + rtts[0], sent[1] + rtts[1]]
    read = [sent[i] + reads[i] * rtts[i] for i in range(2)]
    prev, cur = (
        Reading(
            T0 + dt.timedelta(seconds=arrived[i]),
            round((1000 + read[i]) * 100),
            {"in_octets": 100 * i},
            1,
            rtts[i],
        )
        for i in range(2)
    )
    assert "in_octets" in step(prev, cur, KINDS, INTERVAL).per_second


def test_without_round_trips_a_second_of_latency_is_a_restart() -> None:
    # The same readings as a slow answer, but claiming an instant round trip: sysUpTime
    # advanced 1.75 s in 1 s, which no running agent does.
    prev = reading(0, in_octets=0)
    cur = reading(1, uptime_s=1001.75, in_octets=100)
    assert step(prev, cur, KINDS, INTERVAL).void["in_octets"] is NoRate.AGENT_RESTART
    slow = dataclasses.replace(prev, rtt_s=1.0)
    assert "in_octets" in step(slow, cur, KINDS, INTERVAL).per_second


def test_a_restart_is_seen_through_slow_answers() -> None:
    # Round trips of 2 s each, but the agent's uptime is 20 s where 1030 s were due.
    prev = dataclasses.replace(reading(0, in_octets=500), rtt_s=2.0)
    cur = dataclasses.replace(reading(30, uptime_s=20, in_octets=600), rtt_s=2.0)
    assert step(prev, cur, KINDS, INTERVAL).void["in_octets"] is NoRate.AGENT_RESTART


@pytest.mark.parametrize("seconds", [90.001, 91, 3600])
def test_a_gap_longer_than_three_intervals_stays_a_gap(seconds: float) -> None:
    s = step(reading(0, in_octets=0), reading(seconds, in_octets=10**6), KINDS, INTERVAL)
    assert s.per_second == {} and s.void["in_octets"] is NoRate.GAP
    assert (s.start, s.end) == (T0, T0 + dt.timedelta(seconds=seconds))


def test_three_intervals_exactly_is_not_a_gap() -> None:
    s = step(reading(0, in_octets=0), reading(90, in_octets=900), KINDS, INTERVAL)
    assert s.per_second["in_octets"] == pytest.approx(10.0)


def test_gap_threshold_follows_the_configured_interval() -> None:
    prev, cur = reading(0, in_octets=0), reading(150, in_octets=1500)
    assert step(prev, cur, KINDS, 60.0).per_second["in_octets"] == pytest.approx(10.0)
    assert step(prev, cur, KINDS, 30.0).void["in_octets"] is NoRate.GAP


def test_first_reading_has_no_rate() -> None:
    s = step(None, reading(0, in_octets=5), KINDS, INTERVAL)
    assert s.per_second == {} and s.void == dict.fromkeys(KINDS, NoRate.FIRST)


@pytest.mark.parametrize("seconds", [0, -5])
def test_no_rate_unless_time_moved_forward(seconds: float) -> None:
    s = step(reading(0, in_octets=0), reading(seconds, in_octets=10), KINDS, INTERVAL)
    assert s.void["in_octets"] is NoRate.NOT_LATER


def test_a_row_that_moved_to_another_ifindex_starts_over() -> None:
    s = step(reading(0, in_octets=0), reading(30, index=7, in_octets=900), KINDS, INTERVAL)
    assert s.void["in_octets"] is NoRate.ROW_CHANGED


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval"):
        step(None, reading(0), KINDS, 0)
