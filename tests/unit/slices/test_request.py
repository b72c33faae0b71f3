"""The slice request format: valid requests parse; each kind of bad request is refused
with the field and the reason."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from federica.errors import InvalidInput
from federica.slices.request import parse_duration, parse_request, schema_json
from tests.conftest import EXAMPLES, REPO

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)
MAX = dt.timedelta(days=30)
POPS = {"PRG", "ERL", "MIL", "PSN"}


def req(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "lab",
        "window": {"start": "now", "duration": "2h"},
        "nodes": [{"name": "a", "pop": "PRG"}, {"name": "b"}],
        "circuits": [{"name": "c1", "endpoints": ["a", "b"], "bandwidth_mbps": 100}],
    }
    base.update(over)
    return base


def problems(data: Any) -> list[str]:
    with pytest.raises(InvalidInput) as info:
        parse_request(data, now=NOW, max_duration=MAX, known_pops=POPS)
    return [str(e) for e in info.value.errors]


def test_the_example_request_parses() -> None:
    r, w = parse_request(
        (EXAMPLES / "slices" / "bgp-lab.yaml").read_bytes(),
        now=NOW,
        max_duration=MAX,
        known_pops=POPS,
    )
    assert [n.name for n in r.nodes] == ["r-prg", "r-erl", "r-mil", "r-psn"]
    assert (w.start, w.end) == (NOW, NOW + dt.timedelta(days=3))
    assert r.gateway is not None and r.gateway.node == "r-psn"


def test_json_works_as_well_as_yaml() -> None:
    r, _ = parse_request(json.dumps(req()), now=NOW, max_duration=MAX)
    assert r.circuits[0].endpoints == ["a", "b"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            req(nodes=[{"name": "a", "pop": "XYZ"}, {"name": "b"}]),
            "nodes[0].pop: unknown PoP 'XYZ'",
        ),
        (
            req(circuits=[{"name": "c1", "endpoints": ["a", "ghost"]}]),
            "circuits[0].endpoints[1]: no node named 'ghost'",
        ),
        (
            req(window={"start": "2026-12-02T10:00:00Z", "end": "2026-12-02T09:00:00Z"}),
            "window.end: the slice would end",
        ),
        (req(window={"start": "now", "duration": "40d"}), "longer than the maximum"),
        (req(nodes=[{"name": "a"}, {"name": "a"}]), "nodes[1].name: duplicate node name 'a'"),
        (
            req(
                circuits=[
                    {"name": "c1", "endpoints": ["a", "b"]},
                    {"name": "c1", "endpoints": ["b", "a"]},
                ]
            ),
            "circuits[1].name: duplicate circuit name",
        ),
        (
            req(circuits=[{"name": "c1", "endpoints": ["a", "b"], "bandwidth_mbps": 0}]),
            "circuits[0].bandwidth_mbps: input should be greater than or equal to 1",
        ),
        (req(window={"start": "yesterday", "duration": "1h"}), "window.start: 'yesterday' is not"),
        (req(window={"start": "2026-12-01T10:00:00", "duration": "1h"}), "has no time zone"),
        (req(window={"start": "2026-11-01T10:00:00Z", "duration": "1h"}), "is in the past"),
        (
            req(window={"start": "now", "duration": "1h", "end": "2026-12-01T10:00:00Z"}),
            "window: give exactly one of duration and end",
        ),
        (req(window={"start": "now", "duration": "soon"}), "window.duration: 'soon' is not"),
        (req(colour="red"), "colour: unknown field"),
        (req(nodes=[]), "nodes: list should have at least 1 item"),
        (req(gateway={"node": "zz"}), "gateway.node: no node named 'zz'"),
        (
            req(circuits=[{"name": "c1", "endpoints": ["a", "a"]}]),
            "circuits[0].endpoints[1]: node 'a' is already an endpoint",
        ),
        ("name: [unclosed", "not valid YAML/JSON: line 2, column 1"),
        ("- just\n- a list\n", "a slice request is a mapping"),
        ("x" * 1_000_001, "the limit is 1000000"),
    ],
    ids=[
        "unknown-pop",
        "missing-node",
        "end-before-start",
        "too-long",
        "dup-node",
        "dup-circuit",
        "zero-bandwidth",
        "bad-start",
        "naive-time",
        "past-start",
        "duration-and-end",
        "bad-duration",
        "unknown-field",
        "no-nodes",
        "gateway-node",
        "self-loop",
        "malformed-yaml",
        "not-a-mapping",
        "ten-megabytes",
    ],
)
def test_bad_requests_name_the_field_and_reason(data: Any, expected: str) -> None:
    assert any(expected in p for p in problems(data)), problems(data)


def test_all_problems_are_reported_at_once() -> None:
    found = problems(
        req(
            nodes=[{"name": "a", "pop": "XYZ"}, {"name": "a"}],
            circuits=[{"name": "c1", "endpoints": ["a", "ghost"]}],
        )
    )
    assert len(found) == 3


def test_durations() -> None:
    assert parse_duration("3d") == dt.timedelta(days=3)
    assert parse_duration("90m") == dt.timedelta(minutes=90)
    assert parse_duration("P1DT2H") == dt.timedelta(days=1, hours=2)


def test_the_published_schema_is_current() -> None:
    assert (REPO / "docs" / "slice-request.schema.json").read_text() == schema_json()


def test_a_key_pasted_from_its_file_is_accepted_but_two_keys_in_one_entry_are_not() -> None:
    # What `cat ~/.ssh/id_ed25519.pub` gives ends in a line break: people paste it as is.
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx9bN0c2KqYbFn3k5c0d6mYq0yqDq3wq2wqv4s1l0rW alice"
    doc = json.dumps(req(ssh_keys=[key + "\n"])).encode()
    r, _ = parse_request(doc, now=NOW, max_duration=MAX, known_pops=POPS)
    assert r.ssh_keys == [key]
    two = json.dumps(req(ssh_keys=[key + "\n" + key])).encode()
    assert any("ssh_keys[0]" in p for p in problems(two))
