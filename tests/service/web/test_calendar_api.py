"""Over HTTP on both databases: extend and "how far can I extend?", find-slot, the
calendar of a resource, maintenance windows and quotas; bad input is a named 4xx."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from federica.context import Context
from tests.accounts import ensure_project
from tests.conftest import EXAMPLES
from tests.helpers import load_file, table_dump

PROBLEM = "application/problem+json"
DAY = "2026-12-10"


@pytest.fixture
def core4(db: Context) -> Context:
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    return db


def prg(
    name: str, start: str, hours: int, vcpu: int = 8, project: str | None = None
) -> dict[str, Any]:
    """A slice that fills one PRG V-node (8 cores) for `hours`."""
    doc: dict[str, Any] = {
        "name": name,
        "window": {"start": f"{DAY}T{start}:00Z", "duration": f"{hours}h"},
        "nodes": [{"name": "a", "pop": "PRG", "vcpu": vcpu}],
    }
    if project:
        doc["project"] = project
    return doc


def book(client: FlaskClient, doc: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/api/v1/slices", json=doc)
    assert r.status_code == 201, r.get_json()
    return r.get_json()["slice"]  # type: ignore[no-any-return]


def test_extend_up_to_the_next_booking_and_no_further(core4: Context, client: FlaskClient) -> None:
    mine = book(client, prg("mine", "09:00", 2))
    book(client, prg("other1", "09:00", 8))  # the second PRG V-node, all day
    book(client, prg("later", "14:00", 2))  # takes a PRG V-node again from 14:00
    ext = client.get("/api/v1/slices/mine/extent").get_json()
    assert ext["latest_end"] == f"{DAY}T14:00:00+00:00"
    assert "vCPU on V-node prg-v" in ext["limited_by"]

    r = client.post("/api/v1/slices/mine/extend", json={"by": "2h"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["end"] == f"{DAY}T13:00:00+00:00"
    assert r.get_json()["history"][-1]["reason"] == f"extended to {DAY} 13:00 UTC"

    before = table_dump(core4)
    r = client.post("/api/v1/slices/mine/extend", json={"to": f"{DAY}T15:00:00Z"})
    assert r.status_code == 409 and r.content_type == PROBLEM
    assert "14:00 UTC at most" in r.get_json()["detail"]
    assert r.get_json()["errors"][0]["field"] == "to"
    for body, field in (
        ({"by": "soon"}, "by"),
        ({"to": "tomorrow"}, "to"),
        ({"by": "1h", "to": f"{DAY}T15:00:00Z"}, ""),
        ({"until": "1h"}, "until"),
        ({"by": "31d"}, "to"),  # past the maximum length: limited, refused
        ({"by": "99999999999d"}, "by"),
        ({"by": "P999999999D"}, "by"),
    ):
        r = client.post("/api/v1/slices/mine/extend", json=body)
        assert 400 <= r.status_code < 500 and r.content_type == PROBLEM, body
        if r.status_code == 422:
            assert r.get_json()["errors"][0]["field"] == field, body
    assert table_dump(core4) == before
    assert mine["id"]


def test_find_slot_returns_the_earliest_window_that_fits(
    core4: Context, client: FlaskClient
) -> None:
    book(client, prg("x1", "09:00", 3))
    book(client, prg("x2", "10:00", 4))
    want = prg("want", "09:00", 2)
    r = client.post(f"/api/v1/slots?after={DAY}T09:00:00Z", json=want)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["start"] == f"{DAY}T12:00:00+00:00"  # x1 ends, a V-node is free
    assert r.get_json()["end"] == f"{DAY}T14:00:00+00:00"
    r = client.post("/api/v1/slots?after=whenever", json=want)
    assert r.status_code == 422 and "after" in r.get_json()["detail"]


def test_maintenance_blocks_bookings_and_names_the_slices_it_hits(
    core4: Context, client: FlaskClient
) -> None:
    book(client, prg("early", "09:00", 2, vcpu=2))
    r = client.post(
        "/api/v1/maintenance",
        json={
            "target_kind": "pop",
            "target": "PRG",
            "start": f"{DAY}T10:00:00Z",
            "end": f"{DAY}T12:00:00Z",
            "reason": "fibre works",
        },
    )
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["affected_slices"] == ["early"]
    mid = client.post("/api/v1/slices", json=prg("mid", "11:00", 2, vcpu=1))
    assert mid.status_code == 409
    assert "PoP PRG" in mid.get_json()["detail"] and "fibre works" in mid.get_json()["detail"]
    # "how far can I extend?": not at all, it already runs into the maintenance
    ext = client.get("/api/v1/slices/early/extent").get_json()
    assert ext["latest_end"] == f"{DAY}T11:00:00+00:00" and "fibre works" in ext["limited_by"]
    [mw] = client.get("/api/v1/maintenance").get_json()
    assert client.delete(f"/api/v1/maintenance/{mw['id']}").status_code == 200
    assert client.post("/api/v1/slices", json=prg("mid", "11:00", 2, vcpu=1)).status_code == 201
    for body, field in (
        (
            {"target_kind": "rack", "target": "x", "end": f"{DAY}T12:00:00Z", "reason": "r"},
            "target_kind",
        ),
        (
            {"target_kind": "pop", "target": "XXX", "end": f"{DAY}T12:00:00Z", "reason": "r"},
            "target",
        ),
        (
            {"target_kind": "pop", "target": "PRG", "end": "2020-01-01T00:00:00Z", "reason": "r"},
            "end",
        ),
        ({"target_kind": "pop", "target": "PRG", "end": f"{DAY}T12:00:00Z"}, "reason"),
    ):
        r = client.post("/api/v1/maintenance", json=body)
        assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == field, body


def test_a_booking_over_quota_is_refused_naming_the_quota(
    core4: Context, client: FlaskClient
) -> None:
    ensure_project(core4, "bgp-study")
    r = client.put("/api/v1/quotas/bgp-study", json={"vcpu_hours_per_month": 20})
    assert r.status_code == 200 and r.get_json()["vcpu_hours_per_month"] == 20
    book(client, prg("q1", "09:00", 2, vcpu=8, project="bgp-study"))  # 16 vCPU-hours
    r = client.post("/api/v1/slices", json=prg("q2", "12:00", 1, vcpu=8, project="bgp-study"))
    assert r.status_code == 409 and r.content_type == PROBLEM
    assert "quota of 20 vCPU-hours" in r.get_json()["detail"]
    assert r.get_json()["errors"][0]["field"] == "project"
    assert client.post("/api/v1/slices/q1/extend", json={"by": "1h"}).status_code == 409
    book(client, prg("q3", "12:00", 1, vcpu=4, project="bgp-study"))  # 20: exactly the quota
    before = table_dump(core4)
    r = client.put("/api/v1/quotas/bgp-study", json={"vcpu_hours_per_month": -1})
    assert r.status_code == 422
    r = client.put("/api/v1/quotas/bgp-study", json={"max_nodes": "2"})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "max_nodes"
    r = client.put("/api/v1/quotas/no-such-project", json={"vcpu_hours_per_month": 1})
    assert r.status_code == 404 and "no project" in r.get_json()["detail"]
    assert table_dump(core4) == before


def test_the_calendar_of_a_resource(core4: Context, client: FlaskClient) -> None:
    sl = book(client, prg("cal", "09:00", 2, vcpu=3))
    host = sl["nodes"][0]["v_node"]
    r = client.get(f"/api/v1/calendar/hosts/{host}?from={DAY}T00:00:00Z&to={DAY}T23:00:00Z")
    assert r.status_code == 200, r.get_json()
    [b] = r.get_json()["bookings"]
    assert b["slice"] == "cal" and b["vcpu"] == 3 and b["start"] == f"{DAY}T09:00:00+00:00"
    assert r.get_json()["resource"]["capacity"]["vcpu"] == 8
    assert client.get("/api/v1/calendar/hosts/nope").status_code == 404
    r = client.get(f"/api/v1/calendar/links/prg-erl?from={DAY}T10:00:00Z&to={DAY}T09:00:00Z")
    assert r.status_code in (404, 422)
