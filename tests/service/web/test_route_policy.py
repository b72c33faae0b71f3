"""Every route of the API and the portal is protected: the test walks the URL map itself,
so a route added later without a decision here fails it.

For each route: an anonymous caller is refused (API: 401; portal: sent to sign in) unless
the route is one of the few public ones; every state-changing route refuses a signed-in
researcher of another project (403, or 404 where the target is one they may not see)
unless it only touches the caller's own things; a portal form without its CSRF token is
refused; the refusals change nothing, and each leaves one audit row (an anonymous one
is only counted)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from federica.aaa.models import ApiToken, User
from federica.context import Context
from federica.db import transaction
from federica.slices.models import Slice
from federica.web.auth import GUARD_ATTR
from tests.accounts import client_as, make_user
from tests.conftest import EXAMPLES
from tests.helpers import load_file, records, table_dump
from tests.service.portal.browser import Browser

BOB_PASSWORD = "bob's long passphrase"
SOON = (dt.datetime.now(dt.UTC) + dt.timedelta(days=10)).replace(microsecond=0)
LATER = SOON + dt.timedelta(days=10)
PUBLIC = {
    "api.openapi_json", "api.login", "api.oidc_login", "api.oidc_callback",
    "portal.home", "portal.login", "portal.login_oidc", "portal.logout",
}  # fmt: skip
# State-changing routes a signed-in outsider may use, because they act on the caller's
# own things (their own token) or change nothing (find-slot only computes).
OWN_OR_READ_ONLY = {
    ("POST", "api.create_token"), ("POST", "api.find_slot"), ("POST", "portal.create_token"),
}  # fmt: skip
# Routes on another project's slice or project, or another person's token: answered as
# if it did not exist (404), so an outsider cannot tell the two apart.
HIDDEN = {
    "api.release_slice", "api.extend_slice", "api.revoke_token", "api.put_member",
    "api.delete_member", "portal.set_member", "portal.remove_member", "portal.extend",
    "portal.release", "portal.revoke_token", "api.put_webhook", "api.delete_webhook",
}  # fmt: skip
BODIES = {
    "api.create_slice": {"name": "intruder", "project": "alpha", "nodes": [{"name": "a"}]},
    "api.extend_slice": {"by": "1h"},
    "api.create_maintenance": {
        "target_kind": "pop",
        "target": "PRG",
        "end": LATER.isoformat(),
        "reason": "x",
    },
    "api.set_quota": {"max_nodes": 0},
    "api.create_user": {"username": "mallory", "role": "admin"},
    "api.update_user": {"role": "admin"},
    "api.create_project": {"name": "gamma"},
    "api.put_member": {"role": "lead"},
    "api.put_webhook": {"url": "https://receiver.example/hook"},
    "api.find_slot": {"name": "probe", "nodes": [{"name": "a"}]},
    # The portal's forms.
    "portal.submit_slice": {
        "action": "book", "name": "intruder", "project": "alpha", "nodes-0-name": "a",
        "duration": "1h",
    },
    "portal.extend": {"by": "1h"},
    "portal.set_member": {"username": "bob", "role": "lead"},
}  # fmt: skip


@pytest.fixture
def world(db: Context, app: Flask) -> dict[str, object]:
    """alice (project alpha) owns a slice, a maintenance window exists; bob is in beta."""
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    alice = client_as(app, make_user(db, "alice", projects=["alpha"]))
    bob = client_as(app, make_user(db, "bob", projects=["beta"], password=BOB_PASSWORD))
    admin = client_as(app, make_user(db, "root", "admin"))
    r = alice.post(
        "/api/v1/slices",
        json={"name": "a-lab", "window": {"start": SOON.isoformat(), "duration": "2h"},
              "nodes": [{"name": "a", "pop": "PRG"}]},
    )  # fmt: skip
    assert r.status_code == 201, r.get_json()
    r = admin.post(
        "/api/v1/maintenance",
        json={"target_kind": "pop", "target": "MIL", "start": LATER.isoformat(),
              "end": (LATER + dt.timedelta(days=1)).isoformat(), "reason": "fibre"},
    )  # fmt: skip
    assert r.status_code == 201, r.get_json()
    with transaction(db.read_sessions) as s:
        alice_id = s.scalar(select(User.id).where(User.username == "alice"))
        token_id = s.scalar(select(ApiToken.id).where(ApiToken.user_id == alice_id))
    return {
        "bob": bob,
        "args": {
            "ref": "a-lab",
            "window_id": str(r.get_json()["id"]),
            "project": "alpha",
            "name": "alpha",
            "username": "alice",
            "token_id": str(token_id),
            "alarm_id": "1",
        },
    }


def _url(rule: str, endpoint: str, args: dict[str, str]) -> str:
    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        if endpoint in {"api.show_user", "api.update_user"} and name == "name":
            return args["username"]
        if endpoint == "portal.calendar":
            return {"kind": "link", "name": "prg-mil"}[name]
        if endpoint.endswith(("_one",)) and name == "name":
            return "PRG"
        if endpoint in {"api.link_calendar"}:
            return "prg-mil"
        if endpoint in {"api.host_calendar"}:
            return "prg-v1"
        return args[name]

    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", value, rule)


def _routes(app: Flask) -> list[tuple[str, str, str]]:
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out.append((method, rule.endpoint, rule.rule))
    return out


def test_every_view_has_a_policy_and_only_the_login_routes_are_public(app: Flask) -> None:
    marks = {name: getattr(view, GUARD_ATTR, None) for name, view in app.view_functions.items()}
    assert all(m is not None for n, m in marks.items() if not n.endswith("static"))
    public = {n for n, m in marks.items() if m is not None and m.action is None}
    assert public == PUBLIC


def test_anonymous_callers_are_refused_everywhere_but_the_public_routes(
    app: Flask, anon_client: FlaskClient, world: dict[str, object], db: Context
) -> None:
    args = world["args"]
    assert isinstance(args, dict)
    before = table_dump(db)
    checked = 0
    for method, endpoint, rule in _routes(app):
        if endpoint in PUBLIC or not endpoint.startswith(("api.", "metrics.")):
            continue
        url = _url(rule, endpoint, args)
        rows, counted = records(db)
        r = anon_client.open(url, method=method, json=BODIES.get(endpoint))
        assert r.status_code == 401, (method, url, r.get_json())
        # Counted if it would have changed something, never an audit row: anonymous
        # callers cannot grow the append-only log.
        assert records(db) == (rows, counted + (method != "GET")), (method, url)
        assert r.content_type == "application/problem+json"
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        checked += 1
    assert checked >= 30
    assert table_dump(db) == before


def test_state_changing_routes_refuse_a_researcher_of_another_project(
    app: Flask, world: dict[str, object], db: Context
) -> None:
    bob, args = world["bob"], world["args"]
    assert isinstance(bob, FlaskClient) and isinstance(args, dict)
    before = table_dump(db)
    changing = [
        (m, e, r)
        for m, e, r in _routes(app)
        if m in {"POST", "PUT", "PATCH", "DELETE"} and e not in PUBLIC and e.startswith("api.")
    ]
    for method, endpoint, rule in changing:
        url = _url(rule, endpoint, args)
        rows, counted = records(db)
        r = bob.open(url, method=method, json=BODIES.get(endpoint))
        if (method, endpoint) in OWN_OR_READ_ONLY:
            assert r.status_code < 500, (method, url, r.get_json())
            continue
        assert records(db) == (rows + 1, counted), (method, url)  # one audit row each
        expected = 404 if endpoint in HIDDEN else 403
        assert r.status_code == expected, (method, url, r.status_code, r.get_json())
        assert r.get_json()["detail"], url
    # Only bob's own new token was written.
    after = table_dump(db)
    assert after == before
    assert len(changing) >= 12


def test_researchers_see_only_their_projects(world: dict[str, object], db: Context) -> None:
    bob = world["bob"]
    assert isinstance(bob, FlaskClient)
    with transaction(db.read_sessions) as s:
        slice_id = s.scalar(select(Slice.id).where(Slice.name == "a-lab")) or 0
    assert bob.get("/api/v1/slices").get_json() == []
    assert bob.get("/api/v1/projects").get_json()[0]["name"] == "beta"
    assert bob.get("/api/v1/audit").status_code == 403
    assert bob.get("/api/v1/users").status_code == 403
    assert bob.get("/api/v1/users/bob").status_code == 200
    assert bob.get("/api/v1/accounting").get_json()["slices"] == []
    # Another project's things answer exactly as things that do not exist.
    for real, unknown in [
        ("/api/v1/slices/a-lab", "/api/v1/slices/no-lab"),
        ("/api/v1/projects/alpha", "/api/v1/projects/delta"),
        ("/api/v1/quotas/alpha", "/api/v1/quotas/delta"),
        ("/api/v1/accounting?project=alpha", "/api/v1/accounting?project=delta"),
        ("/api/v1/users/alice", "/api/v1/users/nobody"),
        (f"/api/v1/slices/{slice_id}", f"/api/v1/slices/{slice_id + 1000}"),
        (f"/api/v1/slices/{slice_id}/extent", f"/api/v1/slices/{slice_id + 1000}/extent"),
    ]:
        a, b = bob.get(real), bob.get(unknown)
        assert a.status_code == b.status_code == 404, (real, a.status_code, b.status_code)
        assert _neutral(a.get_json(), real) == _neutral(b.get_json(), unknown), real


def _neutral(problem: dict[str, object], url: str) -> dict[str, object]:
    """A problem with the name it was asked about (and the URL) taken out."""
    path = url.split("?")[0].removesuffix("/extent")
    name = path.rsplit("/", 1)[-1] if "project=" not in url else url.split("=")[-1]
    # Only the words: a slice id such as 4 must not be taken out of a status of 404.
    return {
        k: str(v).replace(name, "X") if k in ("detail", "title") else v
        for k, v in problem.items()
        if k != "instance"
    }


def test_anonymous_browsers_are_sent_to_sign_in_everywhere_in_the_portal(
    app: Flask, world: dict[str, object], db: Context
) -> None:
    args = world["args"]
    assert isinstance(args, dict)
    before = table_dump(db)
    browser = Browser(app)
    browser.get("/login")  # a CSRF token, as any visitor has
    checked = 0
    for method, endpoint, rule in _routes(app):
        if endpoint in PUBLIC or not endpoint.startswith(("portal.", "noc.")):
            continue
        url = _url(rule, endpoint, args)
        rows, counted = records(db)
        r = browser.get(url) if method == "GET" else browser.post(url, BODIES.get(endpoint))
        assert records(db) == (rows, counted + (method != "GET")), url
        if url.endswith(".json"):
            assert r.status_code == 401, url
        else:
            assert r.status_code == 303, (method, url, r.status_code)
            assert r.headers["Location"].startswith("/login?next="), url
        checked += 1
    assert checked >= 15
    assert table_dump(db) == before


def test_portal_forms_refuse_a_researcher_of_another_project_and_forged_posts(
    app: Flask, world: dict[str, object], db: Context
) -> None:
    args = world["args"]
    assert isinstance(args, dict)
    bob = Browser(app)
    bob.sign_in("bob", BOB_PASSWORD)
    before = table_dump(db)
    changing = [
        (m, e, r)
        for m, e, r in _routes(app)
        if m == "POST" and e.startswith(("portal.", "noc.")) and e not in PUBLIC
    ]
    for _, endpoint, rule in changing:
        url = _url(rule, endpoint, args)
        rows, counted = records(db)
        forged = bob.client.post(url, data=BODIES.get(endpoint, {}))  # no CSRF token
        assert forged.status_code == 403, url
        assert "did not come from this portal" in forged.text
        assert records(db) == (rows + 1, counted), url
        r = bob.post(url, BODIES.get(endpoint))
        if ("POST", endpoint) in OWN_OR_READ_ONLY:
            assert r.status_code < 500, (url, r.status_code)
            continue
        assert records(db) == (rows + 2, counted), url
        expected = 404 if endpoint in HIDDEN else 403
        assert r.status_code == expected, (url, r.status_code, r.text[-800:])
    cross_site = bob.client.post(
        "/slices/a-lab/release",
        data={"csrf_token": bob.csrf},
        headers={"Origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403
    assert table_dump(db) == before  # bob's own new token aside (not in the dump)
    assert len(changing) >= 7
