"""The portal's pages on Flask's test client and a real database: signing in and out,
the editor (dry run, find-slot, booking, every kind of bad input shown at its field and
nothing written), the slice page's actions, substrate, projects and tokens."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from flask import Flask
from sqlalchemy import select

from federica.aaa.models import AuditEntry
from federica.context import Context
from federica.db import transaction
from federica.slices import quota
from tests.accounts import client_as, make_user
from tests.conftest import EXAMPLES
from tests.helpers import load_file, records, table_dump
from tests.service.portal.browser import Browser

PASSWORD = "a long enough passphrase"


@pytest.fixture
def core4(db: Context) -> Context:
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    return db


@pytest.fixture
def alice(app: Flask, core4: Context) -> Browser:
    make_user(core4, "alice", projects=["alpha"], password=PASSWORD)
    browser = Browser(app)
    browser.sign_in("alice", PASSWORD)
    return browser


def tri(**extra: str) -> dict[str, str]:
    """The editor's form for three hosts in a line (what a browser posts)."""
    form = {
        "name": "tri", "project": "alpha", "start_mode": "now", "duration": "2h",
        "mode": "form", "action": "dry-run",
        "nodes-0-name": "a", "nodes-0-kind": "host", "nodes-0-vcpu": "1",
        "nodes-0-ram_mb": "256", "nodes-0-pop": "PRG",
        "nodes-1-name": "b", "nodes-1-kind": "host", "nodes-1-vcpu": "1",
        "nodes-1-ram_mb": "256", "nodes-1-pop": "MIL",
        "nodes-2-name": "c", "nodes-2-kind": "router", "nodes-2-vcpu": "1",
        "nodes-2-ram_mb": "256", "nodes-2-pop": "",
        "circuits-0-name": "ab", "circuits-0-endpoints": "a, b", "circuits-0-bandwidth_mbps": "100",
        "circuits-1-name": "bc", "circuits-1-endpoints": "b, c", "circuits-1-bandwidth_mbps": "100",
    }  # fmt: skip
    return form | extra


def errors_at(page_text: str) -> dict[str, str]:
    """Field id → the error text shown under it."""
    return {
        m.group(1): html.unescape(re.sub(r"<[^>]+>", " ", m.group(2))).strip()
        for m in re.finditer(r'id="([^"]+)-error" role="alert">(.*?)</div>', page_text, re.S)
    }


def test_signing_in_and_out(app: Flask, core4: Context) -> None:
    make_user(core4, "alice", projects=["alpha"], password=PASSWORD)
    browser = Browser(app)
    r = browser.client.get("/slices/new")
    assert r.status_code == 303 and r.headers["Location"] == "/login?next=/slices/new"
    browser.get("/login")
    wrong = browser.post("/login", {"username": "alice", "password": "nope"})
    unknown = browser.post("/login", {"username": "nobody", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert errors_text(wrong) == errors_text(unknown)  # no hint which one was wrong
    r = browser.post("/login", {"username": "alice", "password": PASSWORD, "next": "/tokens"})
    assert r.status_code == 303 and r.headers["Location"] == "/tokens"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = browser.get("/tokens")
    assert page.status_code == 200 and "(this browser)" in page.text
    stolen = browser.client.get_cookie("federica_session")
    assert stolen is not None
    assert browser.post("/logout").status_code == 303
    # The session's token is revoked: a copy of the cookie made before is worthless.
    replay = app.test_client()
    replay.set_cookie("federica_session", stolen.value)
    r = replay.get("/slices")
    assert r.status_code == 303 and "ended=1" in r.headers["Location"]
    # ... and the sign-in page itself is reachable again, saying why (no redirect loop).
    page = replay.get(r.headers["Location"])
    assert page.status_code == 200 and "Your session has ended" in page.text
    assert replay.get("/slices").headers["Location"] == "/login?next=/slices"  # forgotten


def errors_text(page: object) -> str:
    text = getattr(page, "text", "")
    m = re.search(r'id="login-error">(.*?)<', text)
    return m.group(1) if m else ""


def test_repeated_failures_are_slowed_down_with_the_same_message(
    app: Flask, core4: Context
) -> None:
    make_user(core4, "alice", password=PASSWORD)
    browser = Browser(app)
    browser.get("/login")
    codes = [browser.post("/login", {"username": "alice", "password": "x"}).status_code
             for _ in range(6)]  # fmt: skip
    assert codes == [401] * 5 + [429]
    right = browser.post("/login", {"username": "alice", "password": PASSWORD})
    assert right.status_code == 429  # even the right password waits now


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_no_open_redirect_after_sign_in(app: Flask, core4: Context, target: str) -> None:
    make_user(core4, "alice", password=PASSWORD)
    browser = Browser(app)
    browser.get("/login")
    r = browser.post("/login", {"username": "alice", "password": PASSWORD, "next": target})
    assert r.headers["Location"] == "/slices"


def test_pages_allow_no_other_host_and_no_framing(alice: Browser) -> None:
    for path in ("/slices", "/slices/new", "/substrate", "/projects", "/tokens", "/login"):
        r = alice.get(path)
        assert r.status_code == 200, path
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert r.headers["Cache-Control"] == "no-store"
        # Every asset the page names is on this server.
        for url in re.findall(r'(?:src|href)="([^"#]+)"', r.text):
            assert url.startswith("/"), (path, url)
    assert alice.get("/portal-static/portal.js").status_code == 200


def test_dry_run_and_find_slot_show_the_mapping_and_write_nothing(
    alice: Browser, core4: Context
) -> None:
    before = table_dump(core4)
    r = alice.post("/slices/new", tri())
    assert r.status_code == 200, errors_at(r.text)
    assert 'id="result"' in r.text and r.text.count('class="vlan"') >= 4
    assert r.text.count('<th scope="row">') >= 3  # three placements
    # The form comes back as typed (PoPs chosen stay chosen), ready to book.
    assert "<option selected>PRG</option>" in r.text and "<option selected>MIL</option>" in r.text
    r = alice.post("/slices/new", tri(action="find-slot"))
    assert r.status_code == 200 and "The earliest slot:" in r.text
    assert 'id="start-at" name="start_mode" value="at" checked' in r.text
    r = alice.post("/slices/new", tri(action="to-yaml"))
    assert "name: tri" in r.text and 'value="yaml" checked' in r.text
    assert table_dump(core4) == before


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"nodes-1-pop": "NOWHERE"}, "nodes-1-pop", "unknown PoP"),
        ({"circuits-1-endpoints": "b, zed"}, "circuits-1-endpoints", "no node named 'zed'"),
        ({"circuits-0-bandwidth_mbps": "5000"}, "circuits-0", "5000 Mb/s"),
        ({"nodes-1-name": "a"}, "nodes-1-name", "duplicate node name 'a'"),
        ({"duration": "90d"}, "duration", "longer"),
        ({"duration": "soon"}, "duration", ""),
        ({"start_mode": "at", "start_at": "yesterday"}, "start_at", "ISO 8601"),
        ({"nodes-0-vcpu": "lots"}, "nodes-0-vcpu", "integer"),
        ({"name": ""}, "name", ""),
        ({"project": "beta"}, "project", "beta"),
        ({"gateway_node": "nope"}, "gateway_node", "nope"),
        ({"ssh_keys": "not a key"}, "ssh_keys", ""),
    ],
)
def test_bad_requests_are_shown_at_their_field_and_change_nothing(
    alice: Browser, core4: Context, changes: dict[str, str], field: str, says: str
) -> None:
    before, (rows, counted) = table_dump(core4), records(core4)
    r = alice.post("/slices/new", tri(action="book", **changes))
    assert 400 <= r.status_code < 500, r.status_code
    assert records(core4) == (rows + 1, counted)  # exactly one audit row
    shown = errors_at(r.text)
    assert field in shown, shown
    assert says.lower() in shown[field].lower(), shown[field]
    assert f'href="#{field}"' in r.text  # the summary links to it
    assert table_dump(core4) == before


def test_pasted_yaml_errors_are_shown_at_the_text(alice: Browser, core4: Context) -> None:
    before = table_dump(core4)
    for text, says in [
        ("name: [unclosed", "line"),
        ("- just\n- a list", "mapping"),
        ("name: x\nnodes: [{name: a, pop: NOWHERE}]", "nodes[0].pop"),
        ("name: x\nnodes: [{name: a}]\nwindow: {start: '2026-12-02T00:00:00Z', "
         "end: '2026-12-01T00:00:00Z'}", "window"),
    ]:  # fmt: skip
        r = alice.post("/slices/new", {"mode": "yaml", "yaml_text": text, "action": "book"})
        assert r.status_code == 422, text
        assert says in errors_at(r.text)["yaml_text"], errors_at(r.text)
    big = "name: x\n# " + "x" * (11 * 1024 * 1024)
    r = alice.post("/slices/new", {"mode": "yaml", "yaml_text": big, "action": "book"})
    assert r.status_code == 413
    assert table_dump(core4) == before


def test_over_quota_is_shown_at_the_project(alice: Browser, core4: Context) -> None:
    with transaction(core4.sessions) as s:
        quota.set_limits(s, "alpha", quota.Limits(None, 2, None))
    before = table_dump(core4)
    r = alice.post("/slices/new", tri(action="book"))
    assert r.status_code == 409
    assert "nodes" in errors_at(r.text)["project"]
    assert table_dump(core4) == before


def test_book_watch_extend_release(alice: Browser, core4: Context, app: Flask) -> None:
    r = alice.post("/slices/new", tri(action="book"))
    assert r.status_code == 303 and r.headers["Location"] == "/slices/tri"
    page = alice.get("/slices/tri")
    assert page.status_code == 200 and "status-scheduled" in page.text
    assert page.text.count('class="vlan"') >= 4 and 'class="pop used"' in page.text
    assert "How far can I extend?" in page.text
    status = alice.get("/slices/tri/status.json").get_json()
    assert status["status"] == "scheduled" and set(status["nodes"]) == {"a", "b", "c"}
    listing = alice.get("/slices")
    assert 'data-slice="tri"' in listing.text
    r = alice.post("/slices/tri/extend", {"by": "1d"})
    assert r.status_code == 303
    assert alice.get("/slices/tri/status.json").get_json()["end"] != status["end"]
    bad = alice.post("/slices/tri/extend", {"by": "forever"})
    assert bad.status_code == 422 and "by" in errors_at(bad.text)
    too_far = alice.post("/slices/tri/extend", {"by": "900d"})
    assert too_far.status_code in (409, 422) and errors_at(too_far.text)["by"]
    assert alice.post("/slices/tri/release").status_code == 303
    assert alice.get("/slices/tri/status.json").get_json()["status"] == "ended"
    assert 'data-slice="tri"' not in alice.get("/slices").text  # current ones only
    assert 'data-slice="tri"' in alice.get("/slices?finished=on").text
    # The API sees the same slice, booked by alice.
    admin = client_as(app, make_user(core4, "root", "admin"))
    assert admin.get("/api/v1/slices/tri").get_json()["owner"] == "alice"
    # What changed something is in the audit log, from the portal; dry runs are not.
    with transaction(core4.read_sessions) as s:
        done = [
            (e.actor, e.via, e.action, e.status)
            for e in s.scalars(select(AuditEntry).where(AuditEntry.slice_id.is_not(None)))
        ]
    assert ("alice", "portal", "slice.create", 303) in done
    assert ("alice", "portal", "slice.change", 303) in done  # extend, release
    assert ("alice", "portal", "slice.change", 422) in done  # the refused extension


def test_other_projects_stay_closed(app: Flask, alice: Browser, core4: Context) -> None:
    assert alice.post("/slices/new", tri(action="book")).status_code == 303
    make_user(core4, "bob", projects=["beta"], password=PASSWORD)
    bob = Browser(app)
    bob.sign_in("bob", PASSWORD)
    # Answered as if they did not exist: the same as a name nobody uses.
    for real, unknown in [("/slices/tri", "/slices/trx"), ("/projects/alpha", "/projects/alphx")]:
        a, b = bob.get(real), bob.get(unknown)
        assert a.status_code == b.status_code == 404
        name_a, name_b = real.rsplit("/", 1)[1], unknown.rsplit("/", 1)[1]
        assert a.text.replace(name_a, "X") == b.text.replace(name_b, "X")
    assert bob.get("/slices/tri/status.json").status_code == 404
    assert 'data-slice="tri"' not in bob.get("/slices?finished=on").text
    assert "alpha" not in bob.get("/projects").text


def test_substrate_shows_what_a_booking_takes(alice: Browser, core4: Context) -> None:
    def free(text: str, link: str) -> int:
        row = re.search(rf'<tr data-link="{link}">.*?<td class="num">(\d+) of', text, re.S)
        assert row, link
        return int(row.group(1))

    before = alice.get("/substrate").text
    assert alice.post("/slices/new", tri(action="book")).status_code == 303
    page = alice.get("/slices/tri").text
    used = set(re.findall(r"<small>\(([a-z]+-[a-z]+)\)</small>", page))  # links crossed
    assert used
    after = alice.get("/substrate").text
    for link in used:
        assert free(before, link) - free(after, link) == 100
    cal = alice.get(f"/substrate/calendar/link/{sorted(used)[0]}")
    assert cal.status_code == 200 and "tri" in cal.text
    bad = alice.get("/substrate?at=tomorrow&hours=0")
    assert bad.status_code == 422 and set(errors_at(bad.text)) == {"at"}
    assert alice.get("/substrate/calendar/link/nowhere").status_code == 404


def test_project_page_members_quota_and_accounting(app: Flask, core4: Context) -> None:
    make_user(core4, "lead", leads=["alpha"], password=PASSWORD)
    make_user(core4, "carol", projects=["beta"])
    lead = Browser(app)
    lead.sign_in("lead", PASSWORD)
    assert lead.post("/slices/new", tri(action="book")).status_code == 303
    page = lead.get("/projects/alpha")
    assert page.status_code == 200 and 'id="accounting"' in page.text and "tri" in page.text
    assert "vCPU-hours in" in page.text
    r = lead.post("/projects/alpha/members", {"username": "carol", "role": "member"})
    assert r.status_code == 303 and "carol" in lead.get("/projects/alpha").text
    bad = lead.post("/projects/alpha/members", {"username": "nobody"})
    assert bad.status_code == 404 and "username" in errors_at(bad.text)
    worse = lead.post("/projects/alpha/members", {"username": "carol", "role": "king"})
    assert worse.status_code == 422 and "role" in errors_at(worse.text)
    assert lead.post("/projects/alpha/members/carol/remove").status_code == 303
    assert "carol" not in lead.get("/projects/alpha").text
    month = lead.get("/projects/alpha?month=never")
    assert month.status_code == 422 and "month" in errors_at(month.text)


def test_tokens_made_in_the_portal_work_on_the_api(alice: Browser, app: Flask) -> None:
    # A token made in a session lives no longer than it (12 hours here).
    longer = alice.post("/tokens", {"name": "notebook", "expires_in_days": "7"})
    assert longer.status_code == 422 and "when the portal session" in errors_at(longer.text).get(
        "expires_in_days", ""
    )
    r = alice.post("/tokens", {"name": "notebook", "scopes": "read", "expires_in_days": "0.25"})
    assert r.status_code == 201
    secret = re.search(r'id="secret" readonly value="([^"]+)"', r.text)
    assert secret
    api = client_as(app, secret.group(1))
    assert api.get("/api/v1/me").get_json()["token_scopes"] == ["read"]
    assert api.post("/api/v1/slices", json={}).status_code == 403  # read only
    bad = alice.post("/tokens", {"name": "x", "expires_in_days": "9999"})
    assert bad.status_code == 422 and "expires_in_days" in errors_at(bad.text)
    worse = alice.post("/tokens", {"name": "x", "scopes": "admin"})
    assert worse.status_code == 422 and "scopes" in errors_at(worse.text)
    listing = alice.get("/tokens").text
    token_id = re.search(r'data-token="(\d+)"><th scope="row">notebook', listing)
    assert token_id
    assert alice.post(f"/tokens/{token_id.group(1)}/revoke").status_code == 303
    assert api.get("/api/v1/me").status_code == 401


def test_slices_of_the_same_name_each_keep_their_own_page(alice: Browser) -> None:
    """A name is free again once its slice has ended: the list links each by id."""
    assert alice.post("/slices/new", tri(action="book")).status_code == 303
    first = alice.get("/slices/tri/status.json").get_json()
    assert alice.post("/slices/tri/release").status_code == 303
    assert alice.post("/slices/new", tri(action="book")).status_code == 303
    listing = alice.get("/slices?finished=on").text
    ids = re.findall(r'<a href="/slices/(\d+)">tri</a>', listing)
    assert len(set(ids)) == 2
    states = {alice.get(f"/slices/{i}/status.json").get_json()["status"] for i in ids}
    assert states == {"ended", "scheduled"} and first["status"] == "scheduled"
    older = alice.get(f"/slices/{min(ids, key=int)}").text
    assert "Release now" not in older  # an ended slice offers nothing to do


def test_a_bad_filter_is_named(alice: Browser) -> None:
    r = alice.get("/slices?status=sleeping")
    assert r.status_code == 422 and "f-status" in errors_at(r.text)


def test_a_failed_slice_shows_why_and_can_be_released(alice: Browser, core4: Context) -> None:
    from federica.slices import events
    from federica.slices.provision import Provisioner
    from federica.worker import Worker

    assert alice.post("/slices/new", tri(action="book")).status_code == 303
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    for _ in range(5):  # its start's worker dies every time
        with transaction(core4.sessions) as s:
            assert events.claim(s, "dead", at, dt.timedelta(minutes=5))
        at += dt.timedelta(minutes=6)
    unused = Provisioner(lambda names: pytest.fail("no device"), lambda d, h: pytest.fail(h))
    assert Worker(core4, unused, name="w", now=lambda: at).run_once() == 1
    page = alice.get("/slices/tri")
    assert "status-failed" in page.text
    why = "could not start: its worker stopped 5 times while running it"
    assert f"Failed: {why}" in page.text
    row = re.search(r'<tr data-event="start">(.*?)</tr>', page.text, re.S)
    assert row is not None
    cells = [
        html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
        for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row[1], re.S)
    ]
    assert [cells[0], *cells[2:]] == ["start", "failed", "6", f"failed: {why}"]
    assert "Release now" in page.text and "/extend" not in page.text
    assert alice.post("/slices/tri/release").status_code == 303
    assert alice.get("/slices/tri/status.json").get_json()["status"] == "releasing"
