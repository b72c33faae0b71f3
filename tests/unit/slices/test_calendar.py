"""Calendar arithmetic against a brute-force model on a minute grid (hypothesis)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federica.slices.calendar import (
    Booking,
    Interval,
    earliest_start,
    fits,
    latest_end,
    peak_usage,
)

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def at(minute: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minute)


def iv(a: int, b: int) -> Interval:
    return Interval(at(a), at(b))


@st.composite
def intervals(draw: st.DrawFn, lo: int = 0, hi: int = 60) -> tuple[int, int]:
    a = draw(st.integers(lo, hi - 1))
    b = draw(st.integers(a + 1, hi))
    return a, b


bookings_st = st.lists(st.tuples(intervals(), st.integers(1, 10)), max_size=12)


def brute_usage(bookings: list[tuple[tuple[int, int], int]], minute: int) -> int:
    # Half-open: a booking [a, b) uses minute m iff a <= m < b.
    return sum(amount for (a, b), amount in bookings if a <= minute < b)


def as_bookings(raw: list[tuple[tuple[int, int], int]]) -> list[Booking]:
    return [Booking(iv(a, b), amount) for (a, b), amount in raw]


@given(bookings_st, intervals())
def test_peak_usage_matches_brute_force(
    raw: list[tuple[tuple[int, int], int]], window: tuple[int, int]
) -> None:
    expected = max(brute_usage(raw, m) for m in range(window[0], window[1]))
    assert peak_usage(as_bookings(raw), iv(*window)) == expected


@given(bookings_st, intervals(), st.integers(1, 10), st.integers(1, 30))
def test_fits_matches_brute_force(
    raw: list[tuple[tuple[int, int], int]], window: tuple[int, int], amount: int, capacity: int
) -> None:
    expected = all(brute_usage(raw, m) + amount <= capacity for m in range(*window))
    assert fits(capacity, as_bookings(raw), iv(*window), amount) == expected


@settings(max_examples=200)
@given(bookings_st, st.integers(0, 30), st.integers(1, 20), st.integers(1, 10), st.integers(1, 20))
def test_earliest_start_is_the_first_feasible_minute(
    raw: list[tuple[tuple[int, int], int]],
    after: int,
    length: int,
    amount: int,
    capacity: int,
) -> None:
    books = as_bookings(raw)
    got = earliest_start(
        lambda w: fits(capacity, books, w, amount),
        dt.timedelta(minutes=length),
        at(after),
        [b.interval.end for b in books],
        at(200),
    )
    brute = next(
        (
            s
            for s in range(after, 200 - length + 1)
            if all(brute_usage(raw, m) + amount <= capacity for m in range(s, s + length))
        ),
        None,
    )
    assert (got.start if got else None) == (at(brute) if brute is not None else None)


@settings(max_examples=200)
@given(bookings_st, intervals(0, 30), st.integers(1, 10), st.integers(1, 20), st.integers(31, 90))
def test_latest_end_is_the_furthest_feasible_extension(
    raw: list[tuple[tuple[int, int], int]],
    current: tuple[int, int],
    amount: int,
    capacity: int,
    limit: int,
) -> None:
    books = as_bookings(raw)
    got = latest_end(capacity, books, iv(*current), amount, at(limit))
    end = current[1]
    while end < limit and brute_usage(raw, end) + amount <= capacity:
        end += 1
    assert got == at(end)


def test_back_to_back_bookings_do_not_overlap() -> None:
    assert not iv(0, 10).overlaps(iv(10, 20))
    assert fits(1, [Booking(iv(0, 10), 1)], iv(10, 20), 1)
    assert not fits(1, [Booking(iv(0, 11), 1)], iv(10, 20), 1)


def test_intervals_must_be_aware_and_non_empty() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Interval(dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2))
    with pytest.raises(ValueError, match="empty interval"):
        iv(5, 5)
