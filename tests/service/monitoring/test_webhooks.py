"""Projects' alarm webhooks: set and checked over the API and the CLI, then alarms raised
and cleared on the real database are POSTed by the monitor loop's sender to a real HTTP
receiver on loopback, signed with the project's secret; failures are retried, bounded
by a timeout and a number of attempts, and recorded."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import logging
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from federica.alarms import webhooks
from federica.app import create_app
from federica.cli import cli
from federica.clock import MovableClock
from federica.context import Context, make_context
from federica.db import transaction
from tests.accounts import client_as, make_user
from tests.conftest import EXAMPLES
from tests.helpers import load_file, table_dump
from tests.service.monitoring.test_alarms import Facility
from tests.service.portal.browser import Browser
from tests.webhook_receiver import Receiver, receiving

TIMEOUT_S = 1.0
PASSWORD = "a long enough passphrase"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as rec:
        yield rec


@pytest.fixture
def world(db: Context) -> dict[str, Any]:
    """Project alpha (lead lee, member ann) has a slice across prg-erl; beta (bob) one
    across prg-mil."""
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    clock = MovableClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
    settings = dataclasses.replace(
        db.settings,
        alarm_unreachable_polls=3,
        webhook_private_addresses=True,  # the receiver is on loopback
        webhook_timeout_s=TIMEOUT_S,
        webhook_max_attempts=3,
        webhook_retry_first_s=60,
    )
    ctx = make_context(settings, engine=db.engine, clock=clock)
    app = create_app(settings, context=ctx)
    out: dict[str, Any] = {"ctx": ctx, "clock": clock, "fac": Facility(ctx)}
    out["lee"] = client_as(app, make_user(ctx, "lee", leads=["alpha"]))
    out["ann"] = client_as(app, make_user(ctx, "ann", projects=["alpha"]))
    out["bob"] = client_as(app, make_user(ctx, "bob", projects=["beta"]))
    out["admin"] = client_as(app, make_user(ctx, "root", "admin"))
    for who, project, pop in (("ann", "alpha", "ERL"), ("bob", "beta", "MIL")):
        r = out[who].post("/api/v1/slices", json={
            "name": f"{project}-{uuid.uuid4().hex[:6]}", "project": project,
            "window": {"start": "now", "duration": "2h"},
            "nodes": [{"name": "a", "pop": "PRG"}, {"name": "b", "pop": pop}],
            "circuits": [{"name": "ab", "endpoints": ["a", "b"], "bandwidth_mbps": 10}],
        })  # fmt: skip
        assert r.status_code == 201, r.get_json()
        out[f"{project}_slice"] = r.get_json()["slice"]["name"]
        out[f"{project}_slice_id"] = r.get_json()["slice"]["id"]
    return out


def set_hook(world: dict[str, Any], url: str) -> str:
    r = world["lee"].put("/api/v1/projects/alpha/webhook", json={"url": url})
    assert r.status_code == 200, r.get_json()
    return str(r.get_json()["secret"])


def signed(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliveries(world: dict[str, Any]) -> list[dict[str, Any]]:
    r = world["lee"].get("/api/v1/projects/alpha/webhook")
    assert r.status_code == 200, r.get_json()
    return list(reversed(r.get_json()["deliveries"]))  # oldest first


def test_raised_and_cleared_alarms_reach_the_projects_whose_slices_they_touch(
    world: dict[str, Any], receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = set_hook(world, receiver.url)
    shown = world["lee"].get("/api/v1/projects/alpha/webhook").get_json()
    assert shown["url"] == receiver.url and "secret" not in shown
    fac, ctx = world["fac"], world["ctx"]
    fac.poll()
    # prg-mil (beta's) goes down first: nothing for alpha; then prg-erl (alpha's).
    fac.poll(down={"prg-mx:ge-0/0/1"})
    assert webhooks.deliver_due(ctx) == 0
    fac.poll(down={"prg-mx:ge-0/0/1", "prg-mx:ge-0/0/0"})
    assert webhooks.deliver_due(ctx) == 1
    (call,) = receiver.wait_for(1)
    assert call.headers["X-Federica-Signature"] == signed(secret, call.body)
    assert call.headers["X-Federica-Event"] == "alarm.raised"
    assert call.headers["Content-Type"] == "application/json"
    body = json.loads(call.body)
    assert (body["event"], body["project"]) == ("alarm.raised", "alpha")
    assert (body["alarm"]["kind"], body["alarm"]["subject"]) == ("link-down", "prg-erl")
    # Only alpha's own slices are in what alpha is sent.
    assert [s["name"] for s in body["alarm"]["slices"]] == [world["alpha_slice"]]
    fac.poll(down={"prg-mx:ge-0/0/1"})
    assert webhooks.deliver_due(ctx) == 1
    cleared = receiver.wait_for(2)[1]
    assert json.loads(cleared.body)["event"] == "alarm.cleared"
    assert cleared.headers["X-Federica-Signature"] == signed(secret, cleared.body)
    assert [(d["event"], d["state"], d["attempts"]) for d in deliveries(world)] == [
        ("raised", "delivered", 1),
        ("cleared", "delivered", 1),
    ]
    assert webhooks.deliver_due(ctx) == 0  # nothing is sent twice
    assert secret not in caplog.text


def test_failures_are_retried_later_recorded_and_given_up_after_the_attempts(
    world: dict[str, Any], receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    secret = set_hook(world, receiver.url)
    fac, ctx, clock = world["fac"], world["ctx"], world["clock"]
    receiver.script = [500]
    fac.poll(down={"prg-mx:ge-0/0/0"})
    assert webhooks.deliver_due(ctx) == 1
    (d,) = deliveries(world)
    assert (d["state"], d["attempts"], d["last_status"]) == ("pending", 1, 500)
    assert "HTTP 500" in d["last_error"]
    assert webhooks.deliver_due(ctx) == 0  # not due before its wait
    clock.advance(dt.timedelta(seconds=61))
    assert webhooks.deliver_due(ctx) == 1
    first, again = receiver.wait_for(2)
    assert first.body == again.body  # the same event, the same bytes and signature
    assert again.headers["X-Federica-Signature"] == signed(secret, again.body)
    (d,) = deliveries(world)
    assert (d["state"], d["attempts"], d["last_status"]) == ("delivered", 2, 200)

    # A receiver that does not answer in time: each attempt bounded by the timeout.
    receiver.script = [("sleep", TIMEOUT_S * 3)] * 3
    fac.poll()  # cleared
    t0 = time.monotonic()
    for wait in (0, 61, 121):
        clock.advance(dt.timedelta(seconds=wait))
        assert webhooks.deliver_due(ctx) == 1
    assert time.monotonic() - t0 < 3 * (TIMEOUT_S + 1.5)
    cleared = deliveries(world)[-1]
    assert (cleared["event"], cleared["state"], cleared["attempts"]) == ("cleared", "failed", 3)
    assert "Timeout" in cleared["last_error"]
    clock.advance(dt.timedelta(days=1))
    assert webhooks.deliver_due(ctx) == 0  # given up
    assert "given up" in caplog.text and secret not in caplog.text


def test_a_receiver_that_is_gone_or_private_is_a_recorded_failure(
    world: dict[str, Any],
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    set_hook(world, f"http://127.0.0.1:{closed}/hook")
    fac, ctx = world["fac"], world["ctx"]
    fac.poll(down={"prg-mx:ge-0/0/0"})
    assert webhooks.deliver_due(ctx) == 1
    (d,) = deliveries(world)
    assert d["state"] == "pending" and "ConnectionError" in d["last_error"]
    # Where loopback is not allowed, a name resolving to it is refused before any call.
    strict = dataclasses.replace(ctx.settings, webhook_private_addresses=False)
    with transaction(ctx.sessions) as s:
        webhooks.set_webhook(
            s, "alpha", f"http://localhost:{closed}/x", "t", ctx.now(), ctx.settings
        )
    world["clock"].advance(dt.timedelta(seconds=61))
    assert webhooks.deliver_due(dataclasses.replace(ctx, settings=strict)) == 1
    (d,) = deliveries(world)
    assert "not a public address" in d["last_error"] and d["attempts"] == 2


def test_a_name_rebound_to_loopback_after_the_check_gets_nothing(
    world: dict[str, Any], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name is public when checked and loopback when connected to. The
    connected socket's own address is checked before a byte is sent. (The public address
    is only ever returned to the check: nothing connects to it.)"""
    real = socket.getaddrinfo
    asked: list[str] = []

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.example":
            return real(host, port, *args, **kwargs)
        asked.append(host)
        ip = "192.0.32.10" if len(asked) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    fac, ctx = world["fac"], world["ctx"]
    strict = dataclasses.replace(ctx.settings, webhook_private_addresses=False)
    with transaction(ctx.sessions) as s:
        webhooks.set_webhook(
            s, "alpha", f"http://rebind.example:{receiver.port}/hook", "t", ctx.now(), strict
        )
    fac.poll(down={"prg-mx:ge-0/0/0"})
    assert webhooks.deliver_due(dataclasses.replace(ctx, settings=strict)) == 1
    (d,) = deliveries(world)
    assert len(asked) == 2, "checked once, then resolved again to connect"
    assert d["state"] == "pending" and "127.0.0.1, not a public address" in d["last_error"]
    # The sender waits for the answer, which comes after the receiver recorded the call.
    assert receiver.received == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.org/x", "http:// or https://"),
        ("https://user:pw@example.org/x", "user name or password"),
        ("https:///x", "must name a host"),
        ("https://example.org:99999/x", "Port out of range"),
        ("http://[::1/x", "not a valid URL"),
        ("https://example.org/x#frag", "fragment"),
        ("http://10.1.2.3/x", "not a public address"),
        ("http://[::1]/x", "not a public address"),
        ("", "at least 1"),
    ],
)
def test_a_bad_url_is_refused_naming_the_field_and_changes_nothing(
    db: Context, url: str, reason: str
) -> None:
    app = create_app(db.settings, context=db)  # loopback and private not allowed here
    lee = client_as(app, make_user(db, "lee", leads=["alpha"]))
    before = table_dump(db)
    r = lee.put("/api/v1/projects/alpha/webhook", json={"url": url})
    assert r.status_code == 422, r.get_json()
    assert r.headers["Content-Type"].startswith("application/problem+json")
    (err,) = r.get_json()["errors"]
    assert err["field"] == "url" and reason in err["message"], err
    assert {k: v for k, v in table_dump(db).items() if k != "audit_log"} == {
        k: v for k, v in before.items() if k != "audit_log"
    }


def test_only_the_projects_leads_and_admins_manage_it(
    world: dict[str, Any], receiver: Receiver
) -> None:
    ann, bob, admin = world["ann"], world["bob"], world["admin"]
    r = ann.put("/api/v1/projects/alpha/webhook", json={"url": receiver.url})
    assert r.status_code == 403 and "leads" in r.get_json()["detail"]
    assert ann.get("/api/v1/projects/alpha/webhook").status_code == 403
    for call in (bob.get, bob.delete):
        assert call("/api/v1/projects/alpha/webhook").status_code == 404
    assert bob.put("/api/v1/projects/alpha/webhook", json={"url": receiver.url}).status_code == 404
    assert world["lee"].get("/api/v1/projects/alpha/webhook").status_code == 404  # none yet
    r = admin.put("/api/v1/projects/alpha/webhook", json={"url": receiver.url})
    assert r.status_code == 200
    assert admin.delete("/api/v1/projects/alpha/webhook").get_json()["url"] == receiver.url
    assert admin.get("/api/v1/projects/alpha/webhook").status_code == 404


def test_researchers_see_alarms_of_their_slices_listing_only_their_slices(
    world: dict[str, Any],
) -> None:
    fac = world["fac"]
    # prg-mx unreachable touches both projects' slices (both cross its ports).
    for _ in range(3):
        fac.poll(away={"prg-mx"})
    (ann_view,) = world["ann"].get("/api/v1/monitoring/alarms").get_json()
    (bob_view,) = world["bob"].get("/api/v1/monitoring/alarms").get_json()
    assert ann_view["id"] == bob_view["id"] and ann_view["kind"] == "device-unreachable"
    assert [s["name"] for s in ann_view["slices"]] == [world["alpha_slice"]]
    assert [s["name"] for s in bob_view["slices"]] == [world["beta_slice"]]
    (staff_view,) = world["admin"].get("/api/v1/monitoring/alarms").get_json()
    assert sorted(s["name"] for s in staff_view["slices"]) == sorted(
        [world["alpha_slice"], world["beta_slice"]]
    )


def test_the_cli_sets_shows_and_removes_it(
    world: dict[str, Any], receiver: Receiver, cli_env: dict[str, str]
) -> None:
    import federica.cli.monitor  # noqa: F401  (registers the command)

    runner = CliRunner()
    env = {**cli_env, "FEDERICA_WEBHOOK_PRIVATE_ADDRESSES": "true"}
    r = runner.invoke(cli, ["project", "webhook", "alpha", "--url", receiver.url], env=env)
    assert r.exit_code == 0, r.output
    secret = r.output.split("secret (shown once; HMAC-SHA256 key): ")[1].strip()
    world["fac"].poll(down={"prg-mx:ge-0/0/0"})
    webhooks.deliver_due(world["ctx"])
    (call,) = receiver.wait_for(1)
    assert call.headers["X-Federica-Signature"] == signed(secret, call.body)
    shown = runner.invoke(cli, ["project", "webhook", "alpha"], env=env)
    assert shown.exit_code == 0 and receiver.url in shown.output and secret not in shown.output
    assert "raised" in shown.output and "delivered" in shown.output
    bad = runner.invoke(cli, ["project", "webhook", "alpha", "--url", "gopher://x"], env=env)
    assert bad.exit_code != 0 and "url" in bad.output
    gone = runner.invoke(cli, ["project", "webhook", "alpha", "--remove"], env=env)
    assert gone.exit_code == 0, gone.output
    assert runner.invoke(cli, ["project", "webhook", "alpha"], env=env).exit_code != 0


def test_the_portal_shows_a_slice_the_alarms_touching_it(world: dict[str, Any]) -> None:
    ctx = world["ctx"]
    app = create_app(ctx.settings, context=ctx)
    make_user(ctx, "cat", projects=["alpha"], password=PASSWORD)
    make_user(ctx, "dan", projects=["beta"], password=PASSWORD)
    world["fac"].poll(down={"prg-mx:ge-0/0/0"})  # prg-erl: alpha's slice, not beta's
    cat, dan = Browser(app), Browser(app)
    cat.sign_in("cat", PASSWORD)
    dan.sign_in("dan", PASSWORD)
    page = cat.get(f"/slices/{world['alpha_slice_id']}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="alarms"' in html and "link-down" in html and "prg-erl" in html
    other = dan.get(f"/slices/{world['beta_slice_id']}").get_data(as_text=True)
    assert 'id="alarms"' not in other and "prg-erl" not in other.split('id="map-h"')[0]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"webhook_timeout_s": 0.0}, "FEDERICA_WEBHOOK_TIMEOUT_S"),
        ({"webhook_max_attempts": 0}, "FEDERICA_WEBHOOK_MAX_ATTEMPTS"),
        ({"webhook_retry_first_s": -1.0}, "FEDERICA_WEBHOOK_RETRY_FIRST_S"),
    ],
)
def test_impossible_webhook_settings_stop_the_monitor_naming_the_setting(
    db: Context, change: dict[str, Any], named: str
) -> None:
    from federica.alarms.service import make_poller
    from federica.config import SettingsError

    bad = make_context(dataclasses.replace(db.settings, **change), engine=db.engine)
    with pytest.raises(SettingsError, match=named):
        make_poller(bad)
