"""Slices over HTTP: book, dry-run, list, show, release; bad input → 4xx problem+json
naming the field, and nothing written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from federica.aaa.models import AuditEntry
from federica.context import Context
from federica.slices import service
from tests.conftest import EXAMPLES
from tests.helpers import load_file, records, table_dump

PROBLEM = "application/problem+json"
BGP = (EXAMPLES / "slices" / "bgp-lab.yaml").read_text()


@pytest.fixture
def core4(db: Context) -> Context:
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    return db


def test_book_show_list_release(core4: Context, client: FlaskClient) -> None:
    r = client.post("/api/v1/slices", data=BGP, content_type="application/yaml")
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    sl = body["slice"]
    assert sl["name"] == "bgp-lab" and sl["status"] == "scheduled"
    assert len(sl["nodes"]) == 4 and all(c["hops"] for c in sl["circuits"])
    assert set(body["timings_ms"]) == {"api", "validate", "embed", "reserve"}
    assert client.get("/api/v1/slices/bgp-lab").get_json()["id"] == sl["id"]
    assert [s["name"] for s in client.get("/api/v1/slices?status=scheduled").get_json()] == [
        "bgp-lab"
    ]
    r = client.post(f"/api/v1/slices/{sl['id']}/release")
    assert r.status_code == 200 and r.get_json()["status"] == "ended"
    assert client.post(f"/api/v1/slices/{sl['id']}/release").status_code == 200  # idempotent


def test_a_booking_answers_what_reading_the_slice_back_says_and_is_audited_with_it(
    core4: Context, client: FlaskClient
) -> None:
    """The booking's answer is made from the rows it wrote, not read back: it must say
    exactly what describe() of the stored slice says; its audit entry commits with it."""
    rows_before, _ = records(core4)
    r = client.post("/api/v1/slices", data=BGP, content_type="application/yaml")
    assert r.status_code == 201, r.get_json()
    answered = r.get_json()["slice"]
    with core4.read_sessions() as s:
        stored = service.describe(service.get(s, answered["id"]))
    assert answered == stored
    assert len(answered["events"]) >= 2 and answered["history"][0]["reason"] == "booked"
    assert records(core4)[0] == rows_before + 1
    with core4.read_sessions() as s:
        entry = s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert entry is not None and entry.slice_id == answered["id"] and entry.status == 201
    assert entry.action == "slice.create" and json.loads(entry.detail)["name"] == "bgp-lab"


def test_dry_run_writes_nothing(core4: Context, client: FlaskClient) -> None:
    before = table_dump(core4)
    r = client.post("/api/v1/slices?dry_run=true", data=BGP, content_type="application/yaml")
    assert r.status_code == 200 and r.get_json()["dry_run"] is True
    assert len(r.get_json()["embedding"]["circuits"]) == 4
    assert table_dump(core4) == before


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (
            json.dumps({"name": "x", "nodes": [{"name": "a", "pop": "NOWHERE"}]}),
            422,
            "nodes[0].pop",
        ),
        (
            json.dumps(
                {
                    "name": "x",
                    "nodes": [{"name": "a"}],
                    "circuits": [{"name": "c", "endpoints": ["a", "b"]}],
                }
            ),
            422,
            "circuits[0].endpoints[1]",
        ),
        ('{"name": "x", "nodes": [', 422, ""),
        (
            json.dumps(
                {
                    "name": "x",
                    "nodes": [{"name": "a", "pop": "PRG"}, {"name": "b", "pop": "MIL"}],
                    "circuits": [{"name": "c", "endpoints": ["a", "b"], "bandwidth_mbps": 5000}],
                }
            ),
            409,
            "circuits[0]",
        ),
        (
            json.dumps(
                {
                    "name": "x",
                    "nodes": [{"name": "a"}],
                    "window": {"start": "2026-01-01T00:00:00Z", "duration": "1h"},
                }
            ),
            422,
            "window.start",
        ),
        (
            json.dumps(
                {"name": "x", "nodes": [{"name": "a"}], "ssh_keys": ["ssh-rsa AAAA-garbage!!"]}
            ),
            422,
            "ssh_keys[0]",
        ),
    ],
    ids=[
        "unknown-pop",
        "missing-node",
        "malformed-json",
        "bandwidth-above-any-path",
        "past",
        "not-an-ssh-key",
    ],
)
def test_bad_requests_are_problems_and_change_nothing(
    core4: Context, client: FlaskClient, body: str, status: int, field: str
) -> None:
    before, (rows, counted) = table_dump(core4), records(core4)
    r = client.post("/api/v1/slices", data=body, content_type="application/json")
    assert r.status_code == status and r.mimetype == PROBLEM
    problem = r.get_json()
    assert any(e["field"] == field for e in problem["errors"]), problem
    assert table_dump(core4) == before
    assert records(core4) == (rows + 1, counted)  # exactly one audit row


def test_a_ten_megabyte_request_is_refused(core4: Context, client: FlaskClient) -> None:
    r = client.post(
        "/api/v1/slices", data="x" * (10 * 1024 * 1024), content_type="application/json"
    )
    assert r.status_code == 413 and r.mimetype == PROBLEM


def test_unknown_slice_and_bad_parameters(core4: Context, client: FlaskClient) -> None:
    assert client.get("/api/v1/slices/nope").status_code == 404
    r = client.get("/api/v1/slices?status=sleeping")
    assert r.status_code == 422 and "status" in r.get_json()["detail"]
    r = client.post("/api/v1/slices?dry_run=maybe", data=BGP)
    assert r.status_code == 422 and "dry_run" in r.get_json()["detail"]


def test_a_row_the_database_refuses_is_a_500_with_a_reference_and_no_sql(
    core4: Context,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug that writes a row the database's constraints refuse (here a VLAN tag 0 on a
    circuit's hop): one attempt, nothing written, a problem with a reference to the log
    line that holds the SQL, and no SQL in the response."""
    real = service.reservation_rows
    calls: list[str] = []

    def buggy(*args: Any) -> list[dict[str, Any]]:
        rows = real(*args)
        calls.append("rows")
        for r in rows:
            if r["vlan"] is not None:
                r["vlan"] = 0
        return rows

    monkeypatch.setattr(service, "reservation_rows", buggy)
    before = table_dump(core4)
    r = client.post("/api/v1/slices", data=BGP, content_type="application/yaml")
    assert r.status_code == 500 and r.mimetype == PROBLEM
    problem = r.get_json()
    ref = problem["correlation_id"]
    assert problem["type"].endswith("/internal-error") and ref in problem["detail"]
    text = r.get_data(as_text=True).lower()
    for sql in ("insert", "reservations", "vlan", "constraint", "check", "parameters"):
        assert sql not in text, text
    assert calls == ["rows"]  # not retried: it would fail the same way
    assert table_dump(core4) == before
    (logged,) = [rec for rec in caplog.records if ref in rec.getMessage()]
    assert logged.exc_info is not None
    assert "INSERT INTO reservations" in str(logged.exc_info[1])  # the log has the SQL


def test_any_unexpected_error_is_a_500_with_a_reference_to_the_log(
    core4: Context,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("SELECT secret FROM users WHERE id = 7")

    assert (
        client.post("/api/v1/slices", data=BGP, content_type="application/yaml").status_code == 201
    )
    monkeypatch.setattr(service, "describe", broken)
    r = client.get("/api/v1/slices")
    assert r.status_code == 500 and r.mimetype == PROBLEM
    problem = r.get_json()
    assert "SELECT" not in r.get_data(as_text=True)
    ref = problem["correlation_id"]
    assert ref in problem["detail"] and problem["instance"] == "/api/v1/slices"
    (logged,) = [rec for rec in caplog.records if ref in rec.getMessage()]
    assert logged.exc_info is not None and "SELECT secret" in str(logged.exc_info[1])
