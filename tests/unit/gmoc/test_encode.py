"""The datastore's own encoder of /data/ answers gives, byte for byte, the JSON the
standard library's encoder makes of the same objects (compact, ASCII-escaped)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from federica.gmoc.data import Series, encode

HEAD = {
    "$schema": "http://www.gpolab.bbn.com/monitoring/schema/20140828/data#",
    "id": "rx_bps:x",
    "subject": "https://h/info/interface/x",
    "eventType": "ops_monitoring:rx_bps",
    "description": 'bits per second received, ünïcode "quoted"',
    "units": "bps",
}


def standard(answer: list[Series]) -> bytes:
    return json.dumps([s.as_json() for s in answer], separators=(",", ":")).encode()


def test_edge_values_and_empty_series() -> None:
    ts = (0, 1_700_000_000_000_001, 253_370_764_800_000_000)
    answer = [
        Series(HEAD, ts, (1e-7, 1e16, 0.1)),
        Series(HEAD, ts, [0, 1, 2**53 + 1]),  # availability and kilobytes: integers
        Series(HEAD, (), ()),
        Series({**HEAD, "id": "tx_bps:x"}, ts, (8000.0, 123456.789012345, 5e-324)),
        # Where orjson writes digits and Python an exponent (found by hypothesis in CI).
        Series(HEAD, ts, (1.52587890625e-05, -9e-05, 1.2345678901234567e17)),
    ]
    assert encode(answer) == standard(answer)
    assert json.loads(encode(answer)) == [s.as_json() for s in answer]


numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**63), 2**63 - 1)
)


@given(st.lists(st.lists(st.tuples(st.integers(0, 2**62), numbers), max_size=20), max_size=5))
def test_any_series(series: list[list[tuple[int, float | int]]]) -> None:
    answer = [Series(HEAD, tuple(t for t, _ in s), [v for _, v in s]) for s in series]
    assert encode(answer) == standard(answer)
