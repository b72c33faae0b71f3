"""Rates averaged into aligned periods (roll-ups and query steps). Pure: no I/O.

A rate holds over its span [start, end); a period's value is the time-weighted average of
the spans overlapping it, per column over the time that column had a value, and the
period's `covered_s` is how much of it any span covered. A span that crosses a period
boundary counts in both periods for the part inside each. Periods are aligned to the Unix
epoch, so every process cuts them the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Span:
    start: dt.datetime
    end: dt.datetime
    values: Mapping[str, float | None]
    covered_s: float | None = None  # a roll-up's own coverage; None: the whole span


@dataclass(frozen=True)
class Period:
    start: dt.datetime
    end: dt.datetime
    covered_s: float
    values: dict[str, float | None]


def floor(at: dt.datetime, period_s: int) -> dt.datetime:
    """The start of the aligned period of `period_s` seconds that holds `at`."""
    offset = (at - EPOCH) // dt.timedelta(seconds=period_s)
    return EPOCH + dt.timedelta(seconds=offset * period_s)


def average(
    spans: Iterable[Span],
    period_s: int,
    columns: Sequence[str],
    window: tuple[dt.datetime, dt.datetime] | None = None,
) -> list[Period]:
    """Periods (in time order) that some span overlaps; inside `window` if given.

    A span that is itself an average over part of its time (`covered_s`) weighs by that
    part, spread evenly over the span."""
    if period_s <= 0:
        raise ValueError("a period must be positive")
    step = dt.timedelta(seconds=period_s)
    sums: dict[dt.datetime, dict[str, float]] = {}
    weights: dict[dt.datetime, dict[str, float]] = {}
    covered: dict[dt.datetime, float] = {}
    for span in spans:
        length = (span.end - span.start).total_seconds()
        if length <= 0:
            continue
        density = 1.0 if span.covered_s is None else min(1.0, span.covered_s / length)
        lo, hi = span.start, span.end
        if window is not None:
            lo, hi = max(lo, window[0]), min(hi, window[1])
        at = floor(lo, period_s)
        while at < hi:
            overlap = (min(hi, at + step) - max(lo, at)).total_seconds() * density
            if overlap > 0:
                covered[at] = covered.get(at, 0.0) + overlap
                total, weight = sums.setdefault(at, {}), weights.setdefault(at, {})
                for name in columns:
                    value = span.values.get(name)
                    if value is not None:
                        total[name] = total.get(name, 0.0) + value * overlap
                        weight[name] = weight.get(name, 0.0) + overlap
            at += step
    return [
        Period(
            at,
            at + step,
            min(covered[at], float(period_s)),
            {
                name: (sums[at][name] / weights[at][name] if weights[at].get(name) else None)
                for name in columns
            },
        )
        for at in sorted(covered)
    ]
