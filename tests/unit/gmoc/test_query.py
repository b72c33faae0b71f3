"""The datastore's q: what GENI collectors send is understood; anything else is a BadQuery
naming a field, never another exception (which would be a 500)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from federica.gmoc import metrics
from federica.gmoc.query import DEFAULT_WINDOW_US, BadQuery, parse

NOW = 1_764_547_200_000_000


def q(**filters: Any) -> str:
    base: dict[str, Any] = {
        "eventType": ["ops_monitoring:rx_bps"],
        "obj": {"type": "interface", "id": ["a"]},
    }
    return json.dumps({"filters": base | filters})


def test_a_collectors_query() -> None:
    got = parse(
        q(
            eventType=["ops_monitoring:rx_bps", "ops_monitoring:tx_bps", "ops_monitoring:rx_bps"],
            ts={"gte": 1000, "lte": 2000},
        ),
        NOW,
    )
    assert got.event_types == ("rx_bps", "tx_bps")
    assert (got.obj_type, got.ids) == ("interface", ("a",))
    assert (got.lo_us, got.hi_us) == (1000, 2001)
    assert got.contains(2000) and not got.contains(999)


def test_bounds_default_to_the_hour_before_now_and_gt_lt_are_exclusive() -> None:
    got = parse(q(), NOW)
    assert (got.lo_us, got.hi_us) == (NOW - DEFAULT_WINDOW_US, NOW)
    got = parse(q(ts={"gt": 10, "lt": 20}), NOW)
    assert (got.lo_us, got.hi_us) == (11, 20)


@pytest.mark.parametrize(
    ("ts", "field"),
    [
        ({"gte": 5, "lt": 5}, "filters.ts"),
        ({"gt": 4, "lte": 4}, "filters.ts"),
        ({"gte": True, "lt": 5}, "filters.ts.gte"),
        ({"gte": 1, "gt": 1, "lt": 5}, "filters.ts.gt"),
        ({"gte": 0, "lt": 40 * 86_400_000_000}, "filters.ts"),
        ([1, 2], "filters.ts"),
    ],
)
def test_impossible_windows(ts: Any, field: str) -> None:
    with pytest.raises(BadQuery) as err:
        parse(q(ts=ts), NOW)
    assert err.value.status == 400
    assert field in [e.field for e in err.value.errors]


def test_every_metric_is_known_by_its_prefixed_name() -> None:
    names = [metrics.PREFIX + m for m in metrics.ALL]
    assert parse(q(eventType=names), NOW).event_types == tuple(metrics.ALL)
    with pytest.raises(BadQuery) as err:
        parse(q(eventType=["rx_bps"]), NOW)  # the prefix is part of the name
    assert err.value.errors[0].field == "filters.eventType[0]"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
filters = st.fixed_dictionaries(
    {},
    optional={
        "eventType": json_values | st.lists(st.sampled_from(sorted(metrics.EVENT_TYPES))),
        "obj": json_values
        | st.fixed_dictionaries(
            {"type": st.sampled_from([*metrics.BY_TYPE, "x"]), "id": json_values}
        ),
        "ts": json_values
        | st.dictionaries(st.sampled_from(["gt", "gte", "lt", "lte", "x"]), json_values),
    },
)


@given(st.one_of(json_values, st.fixed_dictionaries({"filters": filters}), st.text()))
def test_anything_is_a_query_or_a_bad_query_naming_fields(doc: Any) -> None:
    raw = doc if isinstance(doc, str) else json.dumps(doc)
    fields: list[str] = []
    try:
        parse(raw, NOW)
    except BadQuery as exc:
        fields = [e.field for e in exc.errors] or [""]
    assert all(fields)
