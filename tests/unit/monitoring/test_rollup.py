"""Rates averaged into aligned periods (federica.monitoring.rollup)."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from federica.monitoring.rollup import Span, average, floor

T0 = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
COLS = ("in_octets", "out_octets")


def at(s: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=s)


def span(a: float, b: float, in_octets: float | None, out_octets: float | None = 0.0) -> Span:
    return Span(at(a), at(b), {"in_octets": in_octets, "out_octets": out_octets})


def test_periods_are_aligned_to_the_epoch() -> None:
    assert floor(at(299), 300) == T0
    assert floor(at(301), 300) == at(300)
    assert floor(dt.datetime(2026, 11, 30, 12, 59, tzinfo=dt.UTC), 3600) == T0


def test_time_weighted_average_and_coverage() -> None:
    # 100 B/s for 60 s then 400 B/s for 30 s: 18000 B over 90 s of a 300 s period.
    out = average([span(0, 60, 100.0), span(60, 90, 400.0)], 300, COLS)
    assert len(out) == 1
    assert out[0].start == T0 and out[0].end == at(300)
    assert out[0].covered_s == pytest.approx(90)
    assert out[0].values["in_octets"] == pytest.approx(18000 / 90)


def test_a_span_across_a_boundary_counts_in_both_periods_for_its_part() -> None:
    out = average([span(270, 330, 10.0)], 300, COLS)
    assert [(p.start, p.covered_s) for p in out] == [(T0, pytest.approx(30)), (at(300), 30)]
    assert all(p.values["in_octets"] == pytest.approx(10.0) for p in out)


def test_a_column_without_value_is_averaged_over_its_own_time_only() -> None:
    out = average([span(0, 30, None, 5.0), span(30, 60, 50.0, 5.0)], 300, COLS)
    assert out[0].values == {"in_octets": pytest.approx(50.0), "out_octets": pytest.approx(5.0)}
    assert out[0].covered_s == pytest.approx(60)


def test_no_data_no_period() -> None:
    assert average([], 300, COLS) == []
    only_void = average([span(0, 30, None, None)], 300, COLS)
    assert only_void[0].values == {"in_octets": None, "out_octets": None}


def test_window_cuts_spans() -> None:
    out = average([span(0, 600, 1.0)], 300, COLS, window=(at(100), at(400)))
    assert [(p.start, p.covered_s) for p in out] == [(T0, 200), (at(300), 100)]


def test_a_rolled_up_span_weighs_by_its_coverage() -> None:
    # A 5-min period with 60 s of data at 10 B/s, beside a full one at 20 B/s.
    half = Span(T0, at(300), {"in_octets": 10.0}, covered_s=60)
    full = Span(at(300), at(600), {"in_octets": 20.0})
    (hour,) = average([half, full], 3600, ("in_octets",))
    assert hour.covered_s == pytest.approx(360)
    assert hour.values["in_octets"] == pytest.approx((10 * 60 + 20 * 300) / 360)


@given(
    cuts=st.lists(st.integers(1, 3000), min_size=1, max_size=30, unique=True),
    rate=st.floats(0, 1e10, allow_nan=False),
)
def test_a_steady_rate_averages_to_itself_and_volume_is_kept(cuts: list[int], rate: float) -> None:
    edges = [0, *sorted(cuts)]
    spans = [span(a, b, rate) for a, b in itertools.pairwise(edges)]
    periods = average(spans, 300, COLS)
    assert sum(p.covered_s for p in periods) == pytest.approx(edges[-1])
    for p in periods:
        assert p.values["in_octets"] == pytest.approx(rate)
    volume = sum((p.values["in_octets"] or 0) * p.covered_s for p in periods)
    assert volume == pytest.approx(rate * edges[-1])


def test_period_must_be_positive() -> None:
    with pytest.raises(ValueError, match="period"):
        average([], 0, COLS)
