"""Calendar arithmetic. Pure: no I/O, no database.

Intervals are half-open [start, end); at one instant an end comes before a start, so
back-to-back bookings never overlap. A shared resource (link bandwidth, host CPU/RAM)
has a capacity; bookings use an amount of it over their interval.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

Instant = dt.datetime


@dataclass(frozen=True, order=True)
class Interval:
    start: Instant
    end: Instant

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("calendar instants must be timezone-aware")
        if not self.start < self.end:
            raise ValueError(
                f"empty interval: {self.start.isoformat()} is not before {self.end.isoformat()}"
            )

    @property
    def length(self) -> dt.timedelta:
        return self.end - self.start

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end

    def shifted(self, start: Instant) -> Interval:
        return Interval(start, start + self.length)


@dataclass(frozen=True)
class Booking:
    interval: Interval
    amount: int


def peak_usage(bookings: Iterable[Booking], window: Interval) -> int:
    """Most of the resource in use at any instant of `window` (a sweep over the bookings
    that overlap it: ends before starts at the same instant)."""
    events: list[tuple[Instant, int, int]] = []
    for b in bookings:
        if b.interval.overlaps(window):
            events.append((max(b.interval.start, window.start), 1, b.amount))
            events.append((min(b.interval.end, window.end), 0, -b.amount))
    events.sort()
    peak = level = 0
    for _, _, delta in events:
        level += delta
        peak = max(peak, level)
    return peak


def fits(capacity: int, bookings: Iterable[Booking], window: Interval, amount: int) -> bool:
    return peak_usage(bookings, window) + amount <= capacity


def free_amount(capacity: int, bookings: Iterable[Booking], window: Interval) -> int:
    """What is left at the busiest instant of `window`."""
    return capacity - peak_usage(bookings, window)


def earliest_start(
    feasible: Callable[[Interval], bool],
    length: dt.timedelta,
    after: Instant,
    boundaries: Iterable[Instant],
    horizon: Instant,
) -> Interval | None:
    """The earliest window of `length` starting at or after `after` (and ending by
    `horizon`) for which `feasible` holds. Feasibility only changes where a booking ends,
    so the candidates are `after` and every booking end after it."""
    candidates = sorted({after, *(t for t in boundaries if after < t)})
    for start in candidates:
        window = Interval(start, start + length)
        if window.end > horizon:
            return None
        if feasible(window):
            return window
    return None


def latest_end(
    capacity: int, bookings: Sequence[Booking], current: Interval, amount: int, limit: Instant
) -> Instant:
    """How far `current` (already holding `amount`, not among `bookings`) can be extended:
    up to the first instant after it ends where another booking would push usage over
    capacity, and at most to `limit`."""
    if limit <= current.end or amount > capacity:
        return current.end
    tail = Interval(current.end, limit)
    events: list[tuple[Instant, int, int]] = []
    for b in bookings:
        if b.interval.overlaps(tail):
            events.append((max(b.interval.start, tail.start), 1, b.amount))
            events.append((min(b.interval.end, tail.end), 0, -b.amount))
    events.sort()
    level = 0
    for at, kind, delta in events:
        level += delta
        if kind == 1 and level + amount > capacity:
            return at
    return limit
