"""The editor's form ↔ request document, and request field paths → form elements."""

from __future__ import annotations

import datetime as dt

import pytest

from federica.errors import FieldError, InvalidInput
from federica.slices.request import parse_request
from federica.web.portal import forms

NOW = dt.datetime(2026, 11, 21, 12, tzinfo=dt.UTC)


def _form(**extra: str) -> dict[str, str]:
    base = {
        "name": "tri", "project": "lab", "start_mode": "now", "duration": "2h",
        "nodes-0-name": "a", "nodes-0-kind": "host", "nodes-0-vcpu": "2",
        "nodes-0-ram_mb": "512", "nodes-0-pop": "PRG", "nodes-0-image": "",
        "nodes-1-name": "", "nodes-1-kind": "router", "nodes-1-vcpu": "1",  # blank row
        "nodes-1-ram_mb": "1024", "nodes-1-pop": "",
        "nodes-3-name": "b", "nodes-3-kind": "router",  # rows need not be contiguous
        "circuits-0-name": "ab", "circuits-0-endpoints": "a,  b", "circuits-0-bandwidth_mbps": "50",
        "circuits-1-name": "", "circuits-1-endpoints": "", "circuits-1-bandwidth_mbps": "100",
    }  # fmt: skip
    return base | extra


def test_the_form_becomes_the_request_it_shows() -> None:
    doc, rows = forms.to_request(forms.from_form(_form()))
    assert doc == {
        "name": "tri",
        "project": "lab",
        "window": {"start": "now", "duration": "2h"},
        "nodes": [
            {"name": "a", "kind": "host", "vcpu": 2, "ram_mb": 512, "pop": "PRG"},
            {"name": "b", "kind": "router"},
        ],
        "circuits": [{"name": "ab", "endpoints": ["a", "b"], "bandwidth_mbps": 50}],
    }
    assert rows.nodes == [0, 2] and rows.circuits == [0]  # list positions of the rows
    req, window = parse_request(doc, now=NOW, max_duration=dt.timedelta(days=30))
    assert [n.name for n in req.nodes] == ["a", "b"] and window.end - window.start == dt.timedelta(
        hours=2
    )


def test_a_start_time_from_the_form_is_utc() -> None:
    doc, _ = forms.to_request(forms.from_form(_form(start_mode="at", start_at="2026-12-01T09:00")))
    assert doc["window"]["start"] == "2026-12-01T09:00Z"


def test_what_is_not_a_number_is_left_for_validation_to_name() -> None:
    doc, rows = forms.to_request(forms.from_form(_form(**{"nodes-3-vcpu": "two"})))
    with pytest.raises(InvalidInput) as bad:
        parse_request(doc, now=NOW, max_duration=dt.timedelta(days=30))
    placed = forms.place_errors(bad.value.errors, rows)
    # The page is drawn again with its rows renumbered 0, 1, 2: the third row's vCPU field.
    assert list(placed) == ["nodes-2-vcpu"]


@pytest.mark.parametrize(
    ("path", "element"),
    [
        ("nodes[1].pop", "nodes-3-pop"),
        ("nodes[0]", "nodes-0"),
        ("circuits[0].endpoints[1]", "circuits-0-endpoints"),
        ("circuits[0]", "circuits-0"),
        ("nodes[7].name", "nodes"),  # beyond the rows: the section
        ("window.start", "start_at"),
        ("window.end", "duration"),
        ("gateway.node", "gateway_node"),
        ("ssh_keys[0]", "ssh_keys"),
        ("project", "project"),
        ("", ""),
        ("something.else", ""),
    ],
)
def test_field_paths_point_at_form_elements(path: str, element: str) -> None:
    rows = forms.Rows(nodes=[0, 3], circuits=[0])
    assert forms.element_of(path, rows) == element


def test_errors_without_a_field_keep_their_path_in_the_text() -> None:
    placed = forms.place_errors([FieldError("oddity", "wrong"), FieldError("name", "in use")], None)
    assert placed == {"": ["oddity: wrong"], "name": ["in use"]}


def test_a_request_document_fills_the_form_and_comes_back_the_same() -> None:
    doc = {
        "name": "lab",
        "description": "two routers",
        "project": "p",
        "window": {"start": "2026-12-01T09:00:00+00:00", "duration": "3d"},
        "nodes": [
            {"name": "r1", "kind": "router", "vcpu": 1, "ram_mb": 1024, "pop": "MIL"},
            {"name": "r2", "kind": "router", "vcpu": 1, "ram_mb": 1024},
        ],
        "circuits": [{"name": "c", "endpoints": ["r1", "r2"], "bandwidth_mbps": 100}],
        "gateway": {"node": "r1", "pop": "MIL"},
        "ssh_keys": ["ssh-ed25519 AAAA x@y"],
    }
    ed = forms.from_request(doc)
    assert ed.start_mode == "at" and ed.start_at == "2026-12-01T09:00"
    again, _ = forms.to_request(ed)
    assert again["nodes"] == doc["nodes"] and again["circuits"] == doc["circuits"]
    assert again["gateway"] == doc["gateway"] and again["ssh_keys"] == doc["ssh_keys"]
    assert again["window"] == {"start": "2026-12-01T09:00Z", "duration": "3d"}


def test_junk_documents_fill_an_empty_form_rather_than_fail() -> None:
    ed = forms.from_request({"nodes": "x", "circuits": [1, {"name": "c"}], "window": 3})
    assert ed.nodes == [] and [c["name"] for c in ed.circuits] == ["c"]
