"""A researcher at alpha books a slice with nodes at beta's PoPs (`pop: beta/TYO`)
through alpha's REST API: alpha holds at beta over mutual TLS with a signed assertion of
who she is, books its own part, and commits at beta. Two real controller processes, each
with its own database, data directory and ports."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from federica.aaa.models import AuditEntry
from federica.alarms.models import Alarm
from federica.config import Settings
from federica.context import make_context
from federica.db import transaction
from federica.federation import assertion, identity
from federica.federation.client import PeerClient, PeerError
from federica.federation.models import GuestBooking, RemotePart
from federica.slices.models import Slice
from tests.accounts import make_user
from tests.conftest import REPO
from tests.integration.federation.test_two_facilities import Controller, controllers

pytestmark = [pytest.mark.integration]
__all__ = ["controllers"]  # the fixture, shared
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice"


def token_at(c: Controller, username: str, project: str) -> str:
    settings = Settings(data_dir=c.data_dir)
    context = make_context(settings)
    try:
        return make_user(context, username, projects=[project])
    finally:
        context.engine.dispose()


def post(c: Controller, path: str, body: dict[str, Any], token: str) -> tuple[int, Any]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{c.port}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=120) as r:  # noqa: S310
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def get(c: Controller, path: str, token: str) -> tuple[int, Any]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{c.port}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as r:  # noqa: S310
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def slice_doc(name: str, day: int) -> dict[str, Any]:
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=day)).replace(microsecond=0)
    return {
        "name": name,
        "window": {"start": start.isoformat(), "duration": "2h"},
        "nodes": [
            {"name": "home", "pop": "PRG"},
            {"name": "tokyo", "pop": "beta/TYO"},
            {"name": "osaka", "pop": "beta/OSA"},
        ],
        "circuits": [{"name": "jp", "endpoints": ["tokyo", "osaka"], "bandwidth_mbps": 100}],
        "ssh_keys": [KEY],
    }


def rows(c: Controller, model: Any, *where: Any) -> int:
    context = make_context(Settings(data_dir=c.data_dir))
    try:
        with context.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)
    finally:
        context.engine.dispose()


def audit_of(c: Controller, action: str) -> list[tuple[str, dict[str, Any]]]:
    context = make_context(Settings(data_dir=c.data_dir))
    try:
        with context.sessions() as s:
            found = s.scalars(select(AuditEntry).where(AuditEntry.action == action))
            return [(a.actor, json.loads(a.detail)) for a in found]
    finally:
        context.engine.dispose()


@pytest.fixture
def federated(controllers: tuple[Controller, Controller]) -> tuple[Controller, Controller, str]:
    alpha, beta = controllers
    alpha.cli("substrate", "load", str(REPO / "examples" / "topologies" / "core4.yaml"))
    beta.cli("peer", "update", "alpha", "--form", "integrated")
    alpha.cli("peer", "update", "beta", "--form", "integrated")
    return alpha, beta, token_at(alpha, "alice", "optics")


def test_alice_books_nodes_at_beta_through_alpha(
    federated: tuple[Controller, Controller, str],
) -> None:
    alpha, beta, alice = federated
    # What beta has free, and where a request fits there, asked over mutual TLS.
    end = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)).isoformat()
    free = json.loads(alpha.cli("peer", "show-availability", "beta", "--start", "now",
                                "--end", end).stdout)  # fmt: skip
    assert [p["name"] for p in free["pops"]] == ["OSA", "TYO"]
    assert [p["cpu_free"] for p in free["pops"]] == [12, 8]
    probe = alpha.data_dir / "probe.json"
    probe.write_text(json.dumps({"name": "probe", "window": {"duration": "2h"},
                                 "nodes": [{"name": "t", "pop": "TYO", "vcpu": 8}]}))  # fmt: skip
    slot = json.loads(alpha.cli("peer", "find-slot", "beta", str(probe)).stdout)
    assert slot["peer"] == "alpha"

    status, body = post(alpha, "/api/v1/slices", slice_doc("jp-lab", 1), alice)
    assert status == 201, body
    assert [n["pop"] for n in body["slice"]["nodes"]] == ["PRG"]
    (part,) = body["remote"]
    assert (part["peer"], part["state"]) == ("beta", "committed")
    assert part["user"] == "urn:publicid:IDN+alpha.example+user+alice"
    there = part["slice"]
    assert (there["project"], there["name"], there["status"]) == (
        "guest-alpha", "alpha-jp-lab", "scheduled"
    )  # fmt: skip
    assert sorted(n["pop"] for n in there["nodes"]) == ["OSA", "TYO"]
    assert there["start"] == body["slice"]["start"] and there["end"] == body["slice"]["end"]

    # Beta's audit names the user and her home facility.
    (hold,) = audit_of(beta, "federation.hold")
    assert hold[0] == "alice@alpha"
    assert (hold[1]["user"], hold[1]["home"]) == (part["user"], "alpha")
    assert hold[1]["home_projects"] == ["optics"]
    assert rows(alpha, RemotePart, RemotePart.state == "committed") == 1

    # What beta says of it now (here: still scheduled; once built, how to log in).
    status, now = get(alpha, f"/api/v1/slices/{body['slice']['id']}/remote", alice)
    assert status == 200, now
    assert [(p["peer"], p["state"], p["slice"]["status"]) for p in now["remote"]] == [
        ("beta", "committed", "scheduled")
    ]

    # A fault at beta on a link its part uses appears at alpha, naming alpha's slice.
    context = make_context(Settings(data_dir=beta.data_dir))
    try:
        with transaction(context.sessions) as s:
            s.add(Alarm(kind="link-down", subject="tyo-osa", link="tyo-osa",
                        raised_at=dt.datetime.now(dt.UTC),
                        slices=json.dumps([{"id": there["id"], "name": there["name"],
                                            "project": "guest-alpha"}])))  # fmt: skip
    finally:
        context.engine.dispose()
    (alarm,) = json.loads(alpha.cli("peer", "alarms", "beta").stdout)["alarms"]
    assert (alarm["subject"], alarm["local_slices"]) == ("tyo-osa", ["jp-lab"])

    # A circuit across the border is refused here, naming it; nothing is booked anywhere.
    doc = slice_doc("across", 2)
    doc["circuits"] = [{"name": "x", "endpoints": ["home", "tokyo"]}]
    status, problem = post(alpha, "/api/v1/slices", doc, alice)
    assert status == 422, problem
    assert problem["errors"][0]["field"] == "circuits[0].endpoints"

    # Bad messages from alpha's own certificate: 4xx naming why, nothing changed, audited.
    client = PeerClient(beta.peer_url, (beta.files / "ca.pem").read_text(),
                        alpha.files / "client.pem", alpha.files / "client.key")  # fmt: skip
    home = identity.load(alpha.data_dir)
    at = dt.datetime.now(dt.UTC)
    beta_urn = "urn:publicid:IDN+beta.example+authority+am"

    def signed(when: dt.datetime, **kw: Any) -> str:
        return assertion.sign(home, username="alice", projects=["optics"], attributes={},
                              audience=kw.pop("audience", beta_urn), now=when, **kw)  # fmt: skip

    good = signed(at)
    client.check_identity(good)
    head, _payload, sig = good.split(".")
    forged = ".".join([head, "eyJzdWIiOiAibWFsbG9yeSJ9", sig])
    refused = {
        "replayed": good,
        "expired at": signed(at - dt.timedelta(minutes=10)),
        "bad signature": forged,
        "its audience is not this facility": signed(at, audience=home.urn),
        "larger than 8192 bytes": "x" * 9000,
    }
    before = rows(beta, Slice)
    for why, token in refused.items():
        with pytest.raises(PeerError, match=r"\(401\)") as exc:
            client.hold("req-refused-01", token, {"name": "x", "nodes": [{"name": "a",
                        "pop": "TYO"}]}, 60)  # fmt: skip
        assert why in str(exc.value)
    with pytest.raises(PeerError, match=r"\(422\).*request_id"):
        client.post("/federation/v1/bookings", {"request_id": "?", "request": {}})
    assert rows(beta, Slice) == before
    reasons = [d["reason"] for _actor, d in audit_of(beta, "federation.refused")]
    for why in refused:
        assert any(why in r for r in reasons), (why, reasons)

    # Released at alpha: released at beta too.
    status, released = post(alpha, f"/api/v1/slices/{body['slice']['id']}/release", {}, alice)
    assert status == 200, released
    assert released["remote"][0]["state"] == "aborted"
    assert rows(beta, Slice, Slice.name == "alpha-jp-lab", Slice.status == "ended") == 1


def test_betas_guest_quota_for_alpha_holds_under_concurrent_bookings(
    federated: tuple[Controller, Controller, str],
) -> None:
    alpha, beta, alice = federated

    def book(i: int) -> tuple[int, Any]:
        # A day each: neither facility runs out of room, only beta's guest quota (10).
        return post(alpha, "/api/v1/slices", slice_doc(f"lab{i}", 1 + i), alice)

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(book, range(12)))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] * 10 + [409] * 2, answers
    for status, problem in answers:
        if status == 409:
            assert "guest quota" in problem["detail"], problem
    assert rows(beta, GuestBooking, GuestBooking.state == "committed") == 10
    assert rows(beta, Slice) == 10
    assert rows(alpha, Slice) == 10  # the refused ones left nothing behind
    assert rows(alpha, RemotePart) == 10
