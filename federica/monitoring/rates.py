"""Rates from SNMP counters, done right. Pure: no I/O, no clock of its own.

One poll of one interface is a `Reading`; two consecutive readings give a `Step` with a
rate per counter, or none and the reason. The rules (REFERENCES.md, "SNMP polling
practice"):

* the rate is the counter's Δ over the *measured* Δt between the two answers, never the
  nominal interval (a late poll would otherwise read as a burst);
* a Counter32 that went down wrapped once (modulo 2³²); a Counter64 never wraps in
  practice, so one that went down was reset: no rate, start over from this reading;
* the agent restarted (sysUpTime went back, or advanced clearly less than the time that
  passed, which catches a restart the counter's magnitude hides): every counter starts
  over;
* a gap longer than `GAP_INTERVALS` intervals stays a gap: a rate over it would spread an
  unknown burst over hours and draw a flat line where there was no data.

Starting over needs no state beyond the latest reading: every reading becomes the next
step's baseline, whatever its step produced.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

C32 = 2**32
GAP_INTERVALS = 3
# sysUpTime counts hundredths of a second.
TICKS_PER_S = 100
# How far sysUpTime may differ from the measured Δt, beyond the requests' own round trips,
# before we call it a restart: the tick's resolution and clock rates, with a wide margin
# (a restart loses far more than this).
UPTIME_SLACK_S = 0.5
UPTIME_SLACK_RATIO = 0.02


class Kind(enum.Enum):
    COUNTER32 = "counter32"
    COUNTER64 = "counter64"


class NoRate(enum.Enum):
    """Why a step gave no rate for a counter (or for all of them)."""

    FIRST = "first reading"
    NOT_LATER = "no time passed"
    GAP = "gap longer than 3 intervals"
    AGENT_RESTART = "agent restarted (sysUpTime reset)"
    ROW_CHANGED = "interface row changed (ifIndex)"
    COUNTER_RESET = "counter went back (Counter64 reset)"
    MISSING = "counter not in both readings"


@dataclass(frozen=True)
class Reading:
    """One interface's counters as one answer carried them."""

    at: dt.datetime  # when the answer arrived (measured, timezone-aware)
    uptime_ticks: int  # the agent's sysUpTime in the same answer
    counters: Mapping[str, int]
    if_index: int = 0
    # The request's round trip: the agent read sysUpTime at some moment within it.
    rtt_s: float = 0.0


@dataclass(frozen=True)
class Step:
    """What two consecutive readings say: [start, end) and a per-second rate per counter."""

    start: dt.datetime
    end: dt.datetime
    per_second: dict[str, float] = field(default_factory=dict)
    # Counters without a rate, and why; all of them when the whole step is void.
    void: dict[str, NoRate] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def agent_restarted(prev: Reading, cur: Reading) -> bool:
    """sysUpTime did not advance by the measured time between the readings.

    Each reading's time is its answer's arrival, and the agent read sysUpTime within the
    request's round trip before it: without a restart the advance lies between the
    elapsed time less the current round trip and the elapsed time plus the previous one
    (a loaded agent answering slowly is no restart). It is TimeTicks, which wraps after
    497 days: read modulo 2³², an agent that restarted shows either a small advance (up
    for less than the time between) or a huge one (went back), and a wrap shows the true
    advance."""
    elapsed = (cur.at - prev.at).total_seconds()
    advanced = ((cur.uptime_ticks - prev.uptime_ticks) % C32) / TICKS_PER_S
    slack = UPTIME_SLACK_S + UPTIME_SLACK_RATIO * elapsed
    return not elapsed - cur.rtt_s - slack <= advanced <= elapsed + prev.rtt_s + slack


def counter_delta(old: int, new: int, kind: Kind) -> int | None:
    """How far a counter moved, or None if it was reset (a Counter64 that went back)."""
    if new >= old:
        return new - old
    if kind is Kind.COUNTER32:
        return new + C32 - old
    return None


def step(prev: Reading | None, cur: Reading, kinds: Mapping[str, Kind], interval_s: float) -> Step:
    """The rates between `prev` and `cur` for the counters named in `kinds`."""
    if interval_s <= 0:
        raise ValueError("the polling interval must be positive")
    if prev is None:
        return Step(cur.at, cur.at, void=dict.fromkeys(kinds, NoRate.FIRST))
    whole = _void_reason(prev, cur, interval_s)
    if whole is not None:
        return Step(prev.at, cur.at, void=dict.fromkeys(kinds, whole))
    seconds = (cur.at - prev.at).total_seconds()
    out = Step(prev.at, cur.at)
    for name, kind in kinds.items():
        old, new = prev.counters.get(name), cur.counters.get(name)
        if old is None or new is None:
            out.void[name] = NoRate.MISSING
            continue
        delta = counter_delta(old, new, kind)
        if delta is None:
            out.void[name] = NoRate.COUNTER_RESET
        else:
            out.per_second[name] = delta / seconds
    return out


def _void_reason(prev: Reading, cur: Reading, interval_s: float) -> NoRate | None:
    seconds = (cur.at - prev.at).total_seconds()
    if seconds <= 0:
        return NoRate.NOT_LATER
    if seconds > GAP_INTERVALS * interval_s:
        return NoRate.GAP
    if agent_restarted(prev, cur):
        return NoRate.AGENT_RESTART
    if prev.if_index != cur.if_index:
        return NoRate.ROW_CHANGED
    return None
