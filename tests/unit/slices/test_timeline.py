"""The calendar index reads a resource's reservations through a Timeline sorted by start;
it must return exactly what a scan of every reservation returns (hypothesis)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from federica.slices.calendar import Interval
from federica.slices.index import Held, Timeline, _peak
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


held_rows = st.lists(
    st.tuples(
        spans,
        st.sampled_from([ReservationKind.LINK_VLAN, ReservationKind.LINK_BANDWIDTH]),
        st.integers(0, 50),
        st.integers(0, 4096),
    ),
    max_size=30,
)


@settings(max_examples=400)
@given(held_rows, spans)
def test_the_peak_in_a_window_is_the_largest_sum_at_any_instant(
    rows: list[tuple[tuple[int, int], ReservationKind, int, int]], window: tuple[int, int]
) -> None:
    """index._peak (a sweep with a shortcut) against brute force, hour by hour. Every row
    counts, tag rows too: since one row holds a hop's tag and its Mb/s."""
    ws, we = at(window[0]), at(window[0] + window[1])
    held = [
        Held(1, kind, ("link", 1), 7 if kind is ReservationKind.LINK_VLAN else None, mbps, ram,
             at(start), at(start + length))
        for (start, length), kind, mbps, ram in rows
    ]  # fmt: skip
    overlapping = [h for h in held if h.start < we and h.end > ws]

    def at_hour(hour: int, ram: bool) -> int:
        t = at(hour)
        return sum(h.ram_mb if ram else h.amount for h in overlapping if h.start <= t < h.end)

    hours = range(window[0], window[0] + window[1])
    expected = (max(at_hour(t, False) for t in hours), max(at_hour(t, True) for t in hours))
    assert _peak(overlapping, Interval(ws, we)) == expected
