"""The calendar index reads a resource's reservations through a Timeline sorted by start;
it must return exactly what a scan of every reservation returns (hypothesis)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from federica.slices.index import Held, Timeline
from federica.slices.models import ReservationKind

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def at(hours: int) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


spans = st.tuples(st.integers(0, 200), st.integers(1, 100))
helds = st.lists(st.tuples(st.integers(1, 8), spans), max_size=40)


@settings(max_examples=300)
@given(helds, st.lists(st.integers(1, 8), max_size=4), spans, st.none() | st.integers(1, 8))
def test_a_timeline_finds_what_a_full_scan_finds(
    items: list[tuple[int, tuple[int, int]]],
    removed: list[int],
    window: tuple[int, int],
    exclude: int | None,
) -> None:
    tl = Timeline()
    every = []
    for sid, (start, length) in items:
        h = Held(
            sid,
            ReservationKind.LINK_BANDWIDTH,
            ("link", 1),
            None,
            10,
            0,
            at(start),
            at(start + length),
        )
        tl.add(h)
        every.append(h)
    for sid in removed:
        tl.remove(sid)
    ws, we = at(window[0]), at(window[0] + window[1])
    expected = [
        h
        for h in every
        if h.slice_id not in removed and h.slice_id != exclude and h.start < we and ws < h.end
    ]
    got = tl.overlapping(ws, we, exclude)
    assert sorted(got, key=repr) == sorted(expected, key=repr)
    assert [h.start for h in tl.items] == sorted(h.start for h in tl.items) == tl.starts
