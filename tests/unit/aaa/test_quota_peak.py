"""The at-once quota's sweep against a brute-force count over every instant."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from federica.slices.calendar import Interval
from federica.slices.quota import peak

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


spans = st.lists(
    st.tuples(st.integers(0, 60), st.integers(1, 30), st.integers(0, 5)).map(
        lambda t: (at(t[0]), at(t[0] + t[1]), t[2])
    ),
    max_size=12,
)


@given(spans, st.integers(0, 50), st.integers(1, 40))
def test_peak_is_the_largest_sum_at_any_instant(
    items: list[tuple[dt.datetime, dt.datetime, int]], lo: int, length: int
) -> None:
    window = Interval(at(lo), at(lo + length))
    brute = max(
        (
            sum(a for s, e, a in items if s <= at(m) < e)
            for m in range(lo, lo + length)  # whole minutes cover every change point
        ),
        default=0,
    )
    assert peak(items, window) == brute


def test_back_to_back_spans_do_not_add_up() -> None:
    assert peak([(at(0), at(10), 3), (at(10), at(20), 4)], Interval(at(0), at(20))) == 4
