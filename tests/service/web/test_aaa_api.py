"""Accounts over HTTP on both databases: password login (rate-limited, no user
enumeration), tokens (scoped, expiring, revocable, stored hashed), quotas, accounting and
the audit log's "who held this VLAN" question."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from federica.aaa.models import AnonymousRequest, ApiToken, AuditEntry
from federica.aaa.policy import Scope
from federica.context import Context
from federica.db import transaction
from tests.accounts import client_as, ensure_project, make_user
from tests.conftest import EXAMPLES
from tests.helpers import load_file, records, table_dump

PROBLEM = "application/problem+json"
DAY = (dt.datetime.now(dt.UTC) + dt.timedelta(days=20)).date().isoformat()


@pytest.fixture
def core4(db: Context) -> Context:
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    return db


def login(client: FlaskClient, username: str, password: str, **extra: Any) -> Any:
    return client.post(
        "/api/v1/auth/login", json={"username": username, "password": password} | extra
    )


def test_password_login_gives_a_token_that_works(db: Context, anon_client: FlaskClient) -> None:
    make_user(db, "alice", projects=["alpha"], password="a long passphrase")
    r = login(anon_client, "Alice", "a long passphrase", name="laptop")
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    secret = body["token"]
    assert secret.startswith("fed_") and body["name"] == "laptop" and body["state"] == "active"
    me = anon_client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200
    assert me.get_json()["username"] == "alice" and me.get_json()["projects"] == {"alpha": "member"}
    with transaction(db.read_sessions) as s:  # stored hashed: the secret is nowhere
        hashes = list(s.scalars(select(ApiToken.token_hash)))
        entries = list(s.scalars(select(AuditEntry.detail)))
    assert secret not in " ".join(hashes) and len(hashes) == 2
    assert "a long passphrase" not in " ".join(entries) and secret not in " ".join(entries)


def test_wrong_passwords_and_unknown_users_look_the_same_and_are_rate_limited(
    db: Context, anon_client: FlaskClient
) -> None:
    make_user(db, "alice", password="a long passphrase")
    wrong = login(anon_client, "alice", "not her passphrase")
    unknown = login(anon_client, "nobody", "not her passphrase")
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.get_json()["detail"] == unknown.get_json()["detail"] == "wrong username or password"
    )
    for _ in range(4):
        assert login(anon_client, "alice", "guess").status_code == 401
        assert login(anon_client, "nobody", "guess").status_code == 401
    # Five failures: now even the right password waits, and so does the unknown name.
    locked = login(anon_client, "alice", "a long passphrase")
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert login(anon_client, "nobody", "guess").status_code == 429
    # Others are not locked out by it.
    make_user(db, "bob", password="bob's passphrase")
    assert login(anon_client, "bob", "bob's passphrase").status_code == 201
    bad = anon_client.post("/api/v1/auth/login", json={"username": "alice"})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "password"


def test_expired_revoked_and_forged_tokens_are_refused(
    db: Context, app: Flask, anon_client: FlaskClient
) -> None:
    short = make_user(db, "alice", lifetime=dt.timedelta(milliseconds=300))
    alice = client_as(app, short)
    assert alice.get("/api/v1/me").status_code == 200
    time.sleep(0.4)
    r = alice.get("/api/v1/me")
    assert r.status_code == 401 and "expired" in r.get_json()["detail"]

    bob = client_as(app, make_user(db, "bob"))
    new = bob.post("/api/v1/tokens", json={"name": "script", "scopes": ["read"]})
    assert new.status_code == 201
    script = client_as(app, new.get_json()["token"])
    assert script.get("/api/v1/me").get_json()["token_scopes"] == ["read"]
    r = script.post("/api/v1/slices", json={"name": "x", "nodes": [{"name": "a"}]})
    assert r.status_code == 403 and "scope 'slices'" in r.get_json()["detail"]
    assert bob.delete(f"/api/v1/tokens/{new.get_json()['id']}").get_json()["state"] == "revoked"
    r = script.get("/api/v1/me")
    assert r.status_code == 401 and "revoked" in r.get_json()["detail"]
    listed = {t["name"]: t["state"] for t in bob.get("/api/v1/tokens").get_json()}
    assert listed == {"script": "revoked", "test": "active"}

    for header in ("Bearer fed_forged", "Basic YWxpY2U6cHc=", "Bearer "):
        r = anon_client.get("/api/v1/me", headers={"Authorization": header})
        assert r.status_code == 401 and r.content_type == PROBLEM, header
    # A token cannot mint a wider one; a researcher cannot hold admin.
    r = script.post("/api/v1/tokens", json={"scopes": ["read", "slices"]})
    assert r.status_code == 401  # revoked already
    r = bob.post("/api/v1/tokens", json={"scopes": ["admin"]})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "scopes"
    readonly = client_as(app, make_user(db, "carol", scopes=[Scope.READ, Scope.PROJECTS]))
    r = readonly.post("/api/v1/tokens", json={"scopes": ["slices"]})
    assert r.status_code == 403


def test_admins_manage_accounts_and_leads_manage_members(
    db: Context, app: Flask, client: FlaskClient
) -> None:
    r = client.post("/api/v1/users", json={"username": "Dana", "role": "researcher",
                                           "password": "dana's passphrase"})  # fmt: skip
    assert r.status_code == 201 and r.get_json()["username"] == "dana"
    assert client.post("/api/v1/users", json={"username": "dana"}).status_code == 409
    r = client.post("/api/v1/users", json={"username": "Bad Name!"})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "username"
    r = client.post("/api/v1/users", json={"username": "eve", "role": "king"})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "role"
    r = client.post("/api/v1/projects", json={"name": "alpha", "lead": "dana"})
    assert r.status_code == 201 and r.get_json()["members"][0]["role"] == "lead"
    dana = client_as(app, login(app.test_client(), "dana", "dana's passphrase").get_json()["token"])
    make_user(db, "erin")
    r = dana.put("/api/v1/projects/alpha/members/erin", json={"role": "member"})
    assert r.status_code == 200
    assert {m["username"] for m in r.get_json()["members"]} == {"dana", "erin"}
    assert dana.delete("/api/v1/projects/alpha/members/erin").status_code == 200
    assert dana.post("/api/v1/projects", json={"name": "beta"}).status_code == 403
    r = client.patch("/api/v1/users/dana", json={"active": False})
    assert r.status_code == 200 and r.get_json()["active"] is False
    assert dana.get("/api/v1/me").status_code == 401  # disabled: her tokens stop
    assert login(app.test_client(), "dana", "dana's passphrase").status_code == 401


def _doc(name: str, start: str, hours: int, nodes: int, mbps: int = 0, **extra: Any) -> Any:
    doc: dict[str, Any] = {
        "name": name,
        "window": {"start": f"{DAY}T{start}:00Z", "duration": f"{hours}h"},
        "nodes": [{"name": f"n{i}", "pop": ["PRG", "MIL"][i % 2], "vcpu": 1} for i in range(nodes)],
    }
    if mbps:
        doc["circuits"] = [{"name": "c", "endpoints": ["n0", "n1"], "bandwidth_mbps": mbps}]
    return doc | extra


def test_quotas_on_nodes_and_bandwidth_name_the_limit(
    core4: Context, app: Flask, client: FlaskClient
) -> None:
    alice = client_as(app, make_user(core4, "alice", projects=["alpha"]))
    r = client.put("/api/v1/quotas/alpha", json={"max_nodes": 3, "max_bandwidth_mbps": 500})
    assert r.status_code == 200 and r.get_json()["max_nodes"] == 3
    assert alice.post("/api/v1/slices", json=_doc("s1", "09:00", 4, 2, 300)).status_code == 201
    before = table_dump(core4)
    r = alice.post("/api/v1/slices", json=_doc("s2", "10:00", 1, 2))
    assert r.status_code == 409 and r.get_json()["quota"] == "nodes"
    assert "may hold 3 nodes at once" in r.get_json()["detail"]
    assert table_dump(core4) == before  # refused: nothing written
    r = alice.post("/api/v1/slices", json=_doc("s3", "10:00", 1, 1, 0))
    assert r.status_code == 201  # exactly the node quota
    r = alice.post("/api/v1/slices", json=_doc("s4", "13:00", 1, 2, 300))
    assert r.status_code == 201  # s1 ends at 13:00: back to back is not at once
    r = alice.post("/api/v1/slices", json=_doc("s5", "13:30", 1, 1))
    assert r.status_code == 201  # 2 (s4) + 1: exactly the node quota again
    before = table_dump(core4)
    r = alice.post("/api/v1/slices", json=_doc("s6", "16:00", 1, 2, 600))
    assert r.status_code == 409 and r.get_json()["quota"] == "bandwidth"
    assert r.get_json()["errors"][0]["field"] == "project"
    assert table_dump(core4) == before


def test_accounting_totals_match_the_reservations(
    core4: Context, app: Flask, client: FlaskClient
) -> None:
    alice = client_as(app, make_user(core4, "alice", projects=["alpha"]))
    bob = client_as(app, make_user(core4, "bob", projects=["beta"]))
    for who, doc in (
        (alice, _doc("a1", "08:00", 3, 2, 100)),
        (alice, _doc("a2", "12:00", 2, 3, 50)),
        (bob, _doc("b1", "09:30", 5, 2, 200)),
    ):
        assert who.post("/api/v1/slices", json=doc).status_code == 201
    month = DAY[:7]
    rep = client.get(f"/api/v1/accounting?month={month}").get_json()
    with transaction(core4.read_sessions) as s:  # independently, in plain SQL
        rows = s.execute(text(
            "SELECT s.project, r.kind, r.vcpu, r.bandwidth_mbps, r.start, r.\"end\" "
            "FROM reservations r JOIN slices s ON s.id = r.slice_id"
        )).all()  # fmt: skip
    expected: dict[str, dict[str, float]] = {}
    for project, kind, vcpu, mbps, start, end in rows:
        hours = (_aware(end) - _aware(start)).total_seconds() / 3600
        e = expected.setdefault(project, {"vcpu_hours": 0.0, "link_mbps_hours": 0.0})
        if kind == "compute":
            e["vcpu_hours"] += vcpu * hours
        else:
            e["link_mbps_hours"] += mbps * hours  # each hop's row holds its Mb/s
    totals = rep["projects"]
    for project in ("alpha", "beta"):
        for unit in ("vcpu_hours", "link_mbps_hours"):
            assert totals[project][unit] == pytest.approx(expected[project][unit], abs=0.01)
    assert totals["alpha"]["node_hours"] == pytest.approx(2 * 3 + 3 * 2)
    assert totals["beta"]["node_hours"] == pytest.approx(2 * 5)
    assert totals["alpha"]["vcpu_hours"] == pytest.approx(12)
    # Alice sees her project only; CSV has one row per slice.
    mine = alice.get(f"/api/v1/accounting?month={month}").get_json()
    assert set(mine["projects"]) == {"alpha"}
    csv = alice.get(f"/api/v1/accounting?month={month}&format=csv")
    assert csv.content_type.startswith("text/csv")
    lines = csv.get_data(as_text=True).splitlines()
    assert lines[0].startswith("slice_id,slice,project") and len(lines) == 3
    # Released early: only what was held counts (a1 released before it starts: nothing).
    assert client.post("/api/v1/slices/a1/release").status_code == 200
    after = client.get(f"/api/v1/accounting?month={month}").get_json()["projects"]
    assert after["alpha"]["node_hours"] == pytest.approx(3 * 2)
    r = client.get("/api/v1/accounting?month=2026-13")
    assert r.status_code == 422 and "month" in r.get_json()["detail"]


def _aware(t: Any) -> dt.datetime:
    if isinstance(t, str):
        t = dt.datetime.fromisoformat(t)
    assert isinstance(t, dt.datetime)
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def test_who_held_a_vlan_on_a_link_at_a_time(
    core4: Context, app: Flask, client: FlaskClient
) -> None:
    alice = client_as(app, make_user(core4, "alice", projects=["alpha"]))
    bob = client_as(app, make_user(core4, "bob", projects=["beta"]))
    first = alice.post("/api/v1/slices", json=_doc("a1", "08:00", 3, 2, 100)).get_json()["slice"]
    second = bob.post("/api/v1/slices", json=_doc("b1", "12:00", 3, 2, 100)).get_json()["slice"]
    hop = next(h for h in first["circuits"][0]["hops"] if h["link"])
    link, vlan = hop["link"], hop["vlan"]
    reversed_name = "-".join(reversed(link.split("-", 1)))

    def held(at: str, **place: str) -> Any:
        query = "&".join(f"{k}={v}" for k, v in place.items())
        r = client.get(f"/api/v1/audit/held?vlan={vlan}&{query}&at={DAY}T{at}:00Z")
        assert r.status_code == 200, r.get_json()
        return r.get_json()["held_by"]

    at_nine = held("09:00", link=reversed_name)
    assert [(h["slice"], h["user"], h["project"]) for h in at_nine] == [("a1", "alice", "alpha")]
    assert held("11:30", link=link) == []  # a1 ended at 11:00
    device, port = hop["device"], hop["port"]
    assert [h["slice"] for h in held("09:00", port=f"{device}:{port}")] == ["a1"]
    later = [h["slice"] for h in held("13:00", link=link)]
    same_tag = any(h["link"] == link and h["vlan"] == vlan
                   for c in second["circuits"] for h in c["hops"])  # fmt: skip
    assert later == (["b1"] if same_tag else [])
    # The audit log of that VLAN's holders: who booked it, from where.
    log = client.get(f"/api/v1/audit?vlan={vlan}&link={link}").get_json()
    assert {e["actor"] for e in log} >= {"alice"}
    assert all(e["slice_id"] in {first["id"], second["id"]} for e in log)
    booking = next(e for e in log if e["slice_id"] == first["id"])
    assert booking["action"] == "slice.create" and booking["result"] == "ok"
    assert booking["address"] == "127.0.0.1" and booking["via"] == "api"
    r = client.get("/api/v1/audit/held?vlan=0&link=x")
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "vlan"
    r = client.get(f"/api/v1/audit/held?vlan={vlan}&link=nope")
    assert r.status_code == 404 and "no link 'nope'" in r.get_json()["detail"]


def test_refused_actions_are_audited_and_the_log_is_append_only(
    core4: Context, app: Flask, anon_client: FlaskClient, client: FlaskClient
) -> None:
    ensure_project(core4, "alpha")
    bob = client_as(app, make_user(core4, "bob", projects=["beta"]))
    assert anon_client.post("/api/v1/slices", json={}).status_code == 401
    assert (
        bob.post("/api/v1/slices", json=_doc("x", "08:00", 1, 1, project="alpha")).status_code
        == 403
    )
    log = client.get("/api/v1/audit?action=slice.create").get_json()
    assert [(e["actor"], e["result"], e["status"]) for e in log] == [("bob", "refused", 403)]
    # The anonymous attempt is counted, not recorded one by one.
    with transaction(core4.read_sessions) as s:
        counted = [
            (r.method, r.route, r.status, r.count) for r in s.scalars(select(AnonymousRequest))
        ]
    assert counted == [("POST", "api.create_slice", 401, 1)]
    assert "not a member of project 'alpha'" in log[0]["detail"]["problem"]
    with pytest.raises(DBAPIError, match="append-only"), core4.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'someone else'"))
    with pytest.raises(DBAPIError, match="append-only"), core4.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
    assert len(client.get("/api/v1/audit").get_json()) >= 1


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("POST", "/api/v1/auth/login", {"username": 7, "password": "x"}, 422, "username"),
        ("POST", "/api/v1/auth/login", {"username": "a", "password": "b", "x": 1}, 422, "x"),
        ("POST", "/api/v1/tokens", {"scopes": 5}, 422, "scopes"),
        ("POST", "/api/v1/tokens", {"scopes": ["root"]}, 422, "scopes[0]"),
        ("POST", "/api/v1/tokens", {"expires_in_days": 1e308}, 422, "expires_in_days"),
        ("POST", "/api/v1/tokens", {"expires_in_days": 400}, 422, "expires_in_days"),
        ("POST", "/api/v1/tokens", {"expires_in_days": "soon"}, 422, "expires_in_days"),
        ("POST", "/api/v1/tokens", {"name": {"a": 1}}, 422, "name"),
        ("POST", "/api/v1/tokens", {"name": "n" * 65}, 422, "name"),
        ("POST", "/api/v1/users", {"username": "ok", "password": "short"}, 422, "password"),
        ("POST", "/api/v1/users", {"username": "ok", "email": "nope"}, 422, "email"),
        ("POST", "/api/v1/users", {"username": "ok", "display_name": 3}, 422, "display_name"),
        ("PATCH", "/api/v1/users/admin", {"active": "yes"}, 422, "active"),
        ("PATCH", "/api/v1/users/admin", {"role": "god"}, 422, "role"),
        ("POST", "/api/v1/projects", {"name": "-bad"}, 422, "name"),
        ("POST", "/api/v1/projects", {"name": "p", "lead": "nobody"}, 404, None),
        ("PUT", "/api/v1/projects/alpha/members/admin", {"role": "boss"}, 422, "role"),
        ("PUT", "/api/v1/quotas/alpha", {"max_bandwidth_mbps": -1}, 422, "max_bandwidth_mbps"),
        ("GET", "/api/v1/accounting?month=2026-13", None, 422, "month"),
        ("GET", "/api/v1/accounting?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", None,
         422, "to"),
        ("GET", "/api/v1/audit?vlan=x", None, 422, "vlan"),
        ("GET", "/api/v1/audit?since=yesterday", None, 422, "since"),
        ("GET", "/api/v1/audit/held?vlan=5000&link=prg-mil", None, 422, "vlan"),
        ("GET", "/api/v1/audit/held?vlan=5&link=prg-mil&port=x:y", None, 422, "port"),
        ("GET", "/api/v1/audit/held?vlan=5&port=nope", None, 404, None),
        ("GET", "/api/v1/audit/held?vlan=5&link=prg-mil&at=2026-12-01T10:00:00", None, 422, "at"),
    ],
)  # fmt: skip
def test_bad_input_to_the_new_endpoints_is_named_and_changes_nothing(
    core4: Context,
    client: FlaskClient,
    method: str,
    path: str,
    body: Any,
    status: int,
    field: str | None,
) -> None:
    ensure_project(core4, "alpha")
    before, (rows, counted) = table_dump(core4), records(core4)
    r = client.open(path, method=method, json=body)
    assert r.status_code == status, r.get_json()
    assert r.content_type == PROBLEM and r.get_json()["detail"]
    if field is not None:
        assert r.get_json()["errors"][0]["field"] == field
    assert table_dump(core4) == before
    assert records(core4) == (rows + 1, counted)  # exactly one audit row
