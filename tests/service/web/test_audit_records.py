"""The audit log under hostile input, on both databases: every refused request of a
signed-in caller leaves exactly one row whatever it carried (fields cut to their
columns, control characters escaped, the detail bounded) and changes nothing else;
anonymous requests that would change something are counted per day, method, route and
status, never recorded one by one."""

from __future__ import annotations

import json

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from federica.aaa.models import AnonymousRequest, AuditEntry
from federica.context import Context
from federica.db import transaction
from tests.accounts import client_as, ensure_project, make_user
from tests.helpers import records, table_dump

HUGE = "p" * 300_000


def _last_entry(db: Context) -> AuditEntry:
    with transaction(db.read_sessions) as s:
        entry = s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert entry is not None
    return entry


MEMBERS = "/api/v1/projects/{}/members/{}"


@pytest.mark.parametrize(
    ("who", "method", "path", "status"),
    [
        # The reproductions: a name one character over the column (a 500 and no
        # row on PostgreSQL), and one of 300,000 characters (stored whole on SQLite).
        ("admin", "PUT", MEMBERS.format("x" * 65, "bob"), 404),
        ("admin", "PUT", MEMBERS.format(HUGE, "bob"), 404),
        ("admin", "DELETE", MEMBERS.format(HUGE, "bob"), 404),
        ("lead", "PUT", MEMBERS.format(HUGE, "bob"), 404),
        ("lead", "PUT", MEMBERS.format("alpha", HUGE), 404),
        # NUL and other control characters (PostgreSQL refuses NUL in text), bytes that
        # are not UTF-8.
        ("admin", "PUT", MEMBERS.format("a%00b%1b%7f", "bob"), 404),
        ("lead", "DELETE", MEMBERS.format("alpha", "b%00b"), 404),
        ("admin", "POST", "/api/v1/slices/%00%ff%fe/release", 404),
        ("member", "POST", "/api/v1/slices/%ed%b3%bf%00/extend", 404),
        ("lead", "PUT", MEMBERS.format("beta", "bob"), 404),  # not theirs: as if missing
        ("member", "PUT", MEMBERS.format("alpha", "bob"), 403),  # theirs, but not a lead
        # A name no account can have: the strict input layer answers 404 before any view.
        ("member", "PUT", MEMBERS.format("alpha", "b%00" * 20_000), 404),
        ("member", "DELETE", "/api/v1/tokens/" + "9" * 40, 404),
    ],
)  # fmt: skip
def test_a_refused_request_leaves_one_bounded_row_and_nothing_else(
    db: Context,
    app: Flask,
    client: FlaskClient,
    who: str,
    method: str,
    path: str,
    status: int,
) -> None:
    ensure_project(db, "beta")
    make_user(db, "bob")
    callers = {
        "admin": client,
        "lead": client_as(app, make_user(db, "lena", leads=["alpha"])),
        "member": client_as(app, make_user(db, "mo", projects=["alpha"])),
    }
    before, (rows, counted) = table_dump(db), records(db)
    body = (
        {"role": "member"} if "/members/" in path else {"by": "1h"} if "/slices/" in path else None
    )
    r = callers[who].open(path, method=method, json=body)
    assert r.status_code == status, r.get_json()
    assert r.content_type == "application/problem+json" and len(r.get_json()["detail"]) < 200
    assert records(db) == (rows + 1, counted)
    assert table_dump(db) == before
    entry = _last_entry(db)
    assert entry.result == "refused" and entry.status == status
    assert len(entry.target) <= 200 and entry.target.isprintable()
    assert entry.project is None or (len(entry.project) <= 64 and entry.project.isprintable())
    assert len(entry.detail) <= 8000 and json.loads(entry.detail)["method"] == method


def test_a_member_is_told_only_leads_manage_members(db: Context, app: Flask) -> None:
    mo = client_as(app, make_user(db, "mo", projects=["alpha"]))
    r = mo.put("/api/v1/projects/alpha/members/mo", json={"role": "lead"})
    assert r.status_code == 403
    assert r.get_json()["detail"] == "only the leads of project 'alpha' may change its members"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_anonymous_misses_are_counted_not_recorded(
    db: Context, anon_client: FlaskClient, method: str
) -> None:
    before, (rows, counted) = table_dump(db), records(db)
    paths = [f"/api/v1/nowhere/{i}" for i in range(40)] + [f"/{HUGE[:5000]}", "/x%00y"]
    for path in paths:
        assert anon_client.open(path, method=method).status_code == 404
    for _ in range(3):  # a known route without a credential
        assert anon_client.open("/api/v1/slices/1", method=method).status_code in (401, 405)
    assert records(db) == (rows, counted + len(paths) + 3)
    assert table_dump(db) == before
    with transaction(db.read_sessions) as s:
        kinds = {
            (r.method, r.route, r.status): r.count for r in s.scalars(select(AnonymousRequest))
        }
    # One row per kind of miss, however many there were and whatever they carried.
    assert kinds[(method, "unknown", 404)] == len(paths)
    assert sum(kinds.values()) == len(paths) + 3 and len(kinds) == 2


def test_sign_in_attempts_are_still_recorded_one_by_one(
    db: Context, anon_client: FlaskClient
) -> None:
    rows, counted = records(db)
    r = anon_client.post("/api/v1/auth/login", json={"username": "x" * 5000, "password": "y"})
    assert r.status_code == 401
    assert records(db) == (rows + 1, counted)
    entry = _last_entry(db)
    assert entry.actor == "anonymous" and entry.action == "api.login"
    assert len(json.loads(entry.detail)["username"]) <= 64 and "y" not in entry.detail.split('"')


def test_malformed_and_rate_limited_sign_ins_are_only_counted(
    db: Context, anon_client: FlaskClient
) -> None:
    rows, counted = records(db)
    for _ in range(10):
        assert anon_client.post("/api/v1/auth/login", json={}).status_code == 422
    for _ in range(5):  # the limit per username: audited, one by one
        r = anon_client.post("/api/v1/auth/login", json={"username": "z", "password": "y"})
        assert r.status_code == 401
    for _ in range(10):
        r = anon_client.post("/api/v1/auth/login", json={"username": "z", "password": "y"})
        assert r.status_code == 429
    assert records(db) == (rows + 5, counted + 20)
