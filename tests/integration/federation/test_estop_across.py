"""An emergency stop of a federated slice at either facility shuts its part at the other,
audited at both; a peer that cannot be reached at the moment is told later (the leading
worker retries) while the local stop stands at once; a peer may stop only its own guests'
bookings. And a peer's alarm on its border link appears at the home facility on its own
(the leading worker asks), naming the slices it affects, and clears when the peer's does.

Two real controller processes (and a real worker process at alpha), each with its own
database, data directory and ports, over mutual TLS. The slices are booked for later, so
nothing is built (tests/integration/federation/test_estop_emulated.py stops built ones)."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from federica.aaa.models import AuditEntry, Role
from federica.alarms.models import Alarm
from federica.config import Settings
from federica.context import make_context
from federica.db import transaction
from federica.federation.client import PeerClient, PeerError
from federica.federation.models import RemotePart
from federica.federation.relay_models import EStopRelay
from federica.slices.models import Slice
from tests.accounts import make_user
from tests.conftest import REPO
from tests.integration.federation.test_booking_at_a_peer import (
    federated,
    get,
    post,
    slice_doc,
)
from tests.integration.federation.test_two_facilities import Controller, controllers, start

pytestmark = [pytest.mark.integration]
__all__ = ["controllers", "federated"]  # the fixtures, shared
WITHIN_S = 180.0


def user_at(c: Controller, username: str, role: Role, projects: tuple[str, ...] = ()) -> str:
    context = make_context(Settings(data_dir=c.data_dir))
    try:
        return make_user(context, username, role, projects=projects)
    finally:
        context.engine.dispose()


def query(c: Controller, fn: Callable[[Any], Any]) -> Any:
    context = make_context(Settings(data_dir=c.data_dir))
    try:
        with transaction(context.read_sessions) as s:
            return fn(s)
    finally:
        context.engine.dispose()


def status_of(c: Controller, name: str) -> str | None:
    sl = query(c, lambda s: s.scalar(select(Slice.status).where(Slice.name == name)))
    return sl.value if sl is not None else None


def audit_rows(c: Controller, action: str) -> list[tuple[str, int, dict[str, Any]]]:
    found: list[tuple[str, int, dict[str, Any]]] = query(c, lambda s: [
        (a.actor, a.status, json.loads(a.detail))
        for a in s.scalars(select(AuditEntry).where(AuditEntry.action == action)
                           .order_by(AuditEntry.id))
    ])  # fmt: skip
    return found


def relays(c: Controller) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = query(c, lambda s: [
        {"peer": r.peer, "state": r.state.value, "attempts": r.attempts,
         "error": r.last_error, "direction": r.direction.value}
        for r in s.scalars(select(EStopRelay).order_by(EStopRelay.id))
    ])  # fmt: skip
    return found


def wait_for(what: str, check: Callable[[], Any], within: float = WITHIN_S) -> Any:
    deadline = time.monotonic() + within
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.5)


@pytest.fixture
def worker_at(tmp_path: Path) -> Iterator[Callable[[Controller], None]]:
    """Starts `federica worker` for a controller (its duties every second)."""
    procs: list[subprocess.Popen[bytes]] = []

    def run(c: Controller) -> None:
        env = os.environ | {
            "FEDERICA_DATA_DIR": str(c.data_dir),
            "FEDERICA_ESTOP_RELAY_EVERY_S": "1",
            "FEDERICA_PEER_ALARMS_EVERY_S": "1",
            "FEDERICA_LEADER_LEASE_S": "3",
        }
        env.pop("FEDERICA_DATABASE_URL", None)
        with open(tmp_path / f"{c.name}-worker.log", "w") as out:
            argv = [sys.executable, "-m", "federica", "worker"]
            procs.append(
                subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
            )

    yield run
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def book(alpha: Controller, alice: str, name: str, day: int) -> dict[str, Any]:
    status, body = post(alpha, "/api/v1/slices", slice_doc(name, day), alice)
    assert status == 201, body
    assert isinstance(body, dict)
    return body


def test_an_estop_at_alpha_stops_the_part_at_beta_audited_at_both(
    federated: tuple[Controller, Controller, str],
) -> None:
    alpha, beta, alice = federated
    oscar = user_at(alpha, "oscar", Role.OPERATOR)
    body = book(alpha, alice, "jp-lab", 1)
    (part,) = body["remote"]
    sid = body["slice"]["id"]

    status, stopped = post(alpha, f"/api/v1/slices/{sid}/estop",
                           {"reason": "floods the border", "ticket": "NOC-7"}, oscar)  # fmt: skip
    assert status == 200, stopped
    assert status_of(alpha, "jp-lab") == "shutdown"

    wait_for("beta stopped alpha-jp-lab", lambda: status_of(beta, "alpha-jp-lab") == "shutdown")
    # Beta's audit: the stop itself, by alpha, and the peer call naming alpha and the request.
    wait_for("beta audited the stop", lambda: audit_rows(beta, "estop"))
    ((actor, code, detail),) = audit_rows(beta, "estop")
    assert (actor, code) == ("peer:alpha", 200)
    assert "emergency stop at peer alpha by oscar: floods the border" in detail["reason"]
    ((actor, code, detail),) = audit_rows(beta, "federation.estop")
    assert (actor, code, detail["home"]) == ("peer:alpha", 200, "alpha")
    assert (detail["request_id"], detail["stopped"]) == (part["request_id"], True)
    # Alpha's audit: the operator's stop, and its relay to beta.
    ((actor, _, _),) = audit_rows(alpha, "estop")
    assert actor == "oscar"
    ((_, code, detail),) = wait_for(
        "alpha audited the relay", lambda: audit_rows(alpha, "federation.estop.relay")
    )
    assert (code, detail["peer"], detail["state"]) == (200, "beta", "delivered")
    assert detail["remote_status"] == "shutdown"
    # What alpha's researcher sees of her slice's part at beta.
    status, now = get(alpha, f"/api/v1/slices/{sid}/remote", alice)
    assert status == 200, now
    (seen,) = now["remote"]
    assert (seen["slice"]["status"], seen["estop"]["state"]) == ("shutdown", "delivered")
    # Beta stopped it on alpha's word: it does not tell alpha back.
    assert [r["direction"] for r in relays(alpha)] == ["to-visited"]
    assert relays(beta) == []

    # Stopping again is refused at alpha (already shut down); nothing more is relayed.
    status, again = post(alpha, f"/api/v1/slices/{sid}/estop", {"reason": "again"}, oscar)
    assert status == 409, again
    assert len(relays(alpha)) == 1


def test_a_peer_out_of_reach_is_told_later_and_the_local_stop_stands_at_once(
    federated: tuple[Controller, Controller, str],
    worker_at: Callable[[Controller], None],
    tmp_path: Path,
) -> None:
    alpha, beta, alice = federated
    oscar = user_at(alpha, "oscar", Role.OPERATOR)
    body = book(alpha, alice, "lab2", 2)
    sid = body["slice"]["id"]
    assert beta.proc is not None
    beta.proc.send_signal(signal.SIGTERM)
    beta.proc.wait(timeout=60)

    status, stopped = post(alpha, f"/api/v1/slices/{sid}/estop", {"reason": "smoke"}, oscar)
    assert status == 200, stopped
    assert status_of(alpha, "lab2") == "shutdown"
    (relay,) = wait_for("the relay failed once", lambda: [r for r in relays(alpha)
                                                           if r["attempts"] >= 1])  # fmt: skip
    assert relay["state"] == "pending" and "unreachable" in relay["error"], relay
    # Visible: an alarm naming the slice, and the part's e-stop state.
    status, open_alarms = get(alpha, "/api/v1/monitoring/alarms", oscar)
    assert status == 200, open_alarms
    (alarm,) = [a for a in open_alarms if a["kind"] == "peer-estop-undelivered"]
    assert [s["name"] for s in alarm["slices"]] == ["lab2"]
    assert "has not reached peer 'beta'" in alarm["detail"]
    status, now = get(alpha, f"/api/v1/slices/{sid}/remote", alice)
    assert now["remote"][0]["estop"]["state"] == "pending", now
    assert now["remote"][0]["error"], now  # beta could not be asked

    # Beta is back; alpha's leading worker tells it.
    beta.proc = start(beta, tmp_path / "beta-again.log")
    worker_at(alpha)
    wait_for("beta stopped alpha-lab2", lambda: status_of(beta, "alpha-lab2") == "shutdown")
    wait_for("the relay delivered", lambda: relays(alpha)[0]["state"] == "delivered")
    cleared = query(alpha, lambda s: s.scalar(
        select(Alarm.cleared_at).where(Alarm.kind == "peer-estop-undelivered")))  # fmt: skip
    assert cleared is not None
    assert [d["state"] for _, _, d in audit_rows(alpha, "federation.estop.relay")] == [
        "pending",
        "delivered",
    ]


def test_an_estop_at_beta_of_alphas_guest_slice_stops_it_at_alpha(
    federated: tuple[Controller, Controller, str],
) -> None:
    alpha, beta, alice = federated
    bea = user_at(beta, "bea", Role.OPERATOR)
    body = book(alpha, alice, "lab3", 3)
    there = body["remote"][0]["slice"]

    status, stopped = post(beta, f"/api/v1/slices/{there['id']}/estop",
                           {"reason": "its node attacks Osaka"}, bea)  # fmt: skip
    assert status == 200, stopped
    assert status_of(beta, "alpha-lab3") == "shutdown"

    wait_for("alpha stopped lab3", lambda: status_of(alpha, "lab3") == "shutdown")
    ((actor, code, detail),) = wait_for("alpha audited", lambda: audit_rows(alpha, "estop"))
    assert (actor, code) == ("peer:beta", 200)
    assert "its part at peer beta was emergency-stopped by bea" in detail["reason"]
    ((actor, _, detail),) = audit_rows(alpha, "federation.estop")
    assert (actor, detail["home"], detail["stopped"]) == ("peer:beta", "beta", True)
    ((_, code, detail),) = wait_for(
        "beta audited its relay", lambda: audit_rows(beta, "federation.estop.relay")
    )
    assert (code, detail["peer"], detail["direction"]) == (200, "alpha", "to-home")
    answer = query(alpha, lambda s: json.loads(s.scalar(select(RemotePart.answer))))
    assert answer["slice"]["status"] == "shutdown" and answer["estop"]["by"] == "bea"
    assert relays(alpha) == []  # not told back to beta


def test_a_peer_may_stop_only_its_own_guests_bookings(
    federated: tuple[Controller, Controller, str],
) -> None:
    alpha, beta, alice = federated
    body = book(alpha, alice, "lab4", 4)
    request_id = body["remote"][0]["request_id"]
    client = PeerClient(beta.peer_url, (beta.files / "ca.pem").read_text(),
                        alpha.files / "client.pem", alpha.files / "client.key")  # fmt: skip
    cases = {
        # not alpha's booking (no such request id from alpha)
        ("/federation/v1/bookings/beta-not-yours-000/estop", "404"): {"reason": "x", "by": "o"},
        # no part of a beta slice at alpha has this id
        (f"/federation/v1/parts/{request_id}/estop", "404"): {"reason": "x", "by": "o"},
        # malformed
        (f"/federation/v1/bookings/{request_id}/estop", "422"): {"reason": "", "by": "o", "x": 1},
    }
    for (path, code), message in cases.items():
        with pytest.raises(PeerError, match=rf"\({code}\)") as exc:
            client.post(path, message)
        if code == "422":
            for field in ("reason", "x"):
                assert field in str(exc.value)
    # An agreement without estop: 403 naming it.
    allow = ["advertisement", "monitoring", "availability", "identity", "booking"]
    beta.cli("peer", "update", "alpha", *[a for op in allow for a in ("--allow", op)])
    with pytest.raises(PeerError, match=r"\(403\).*estop"):
        client.post(f"/federation/v1/bookings/{request_id}/estop", {"reason": "x", "by": "o"})
    assert status_of(beta, "alpha-lab4") == "scheduled"  # nothing changed
    refused = [(d["reason"], code) for _, code, d in audit_rows(beta, "federation.refused")]
    assert sorted(code for _, code in refused) == [403, 404, 404, 422], refused


def test_a_border_alarm_at_beta_appears_at_alpha_naming_the_slices_and_clears(
    federated: tuple[Controller, Controller, str],
    worker_at: Callable[[Controller], None],
) -> None:
    alpha, beta, alice = federated
    book(alpha, alice, "jp-lab", 1)
    worker_at(alpha)
    # Beta's border port facing alpha goes down (as its monitor records it).
    context = make_context(Settings(data_dir=beta.data_dir))
    try:
        with transaction(context.sessions) as s:
            s.add(Alarm(kind="port-down", subject="tyo-sw:xe-2/0/0", device="tyo-sw",
                        raised_at=dt.datetime.now(dt.UTC), detail="oper-down while admin-up",
                        slices="[]"))  # fmt: skip
    finally:
        context.engine.dispose()

    def peer_alarms() -> list[dict[str, Any]]:
        status, found = get(alpha, "/api/v1/monitoring/alarms", alice)
        assert status == 200, found
        return [a for a in found if a["kind"] == "peer-alarm"]

    (alarm,) = wait_for("the alarm at alpha", peer_alarms)
    assert alarm["subject"] == "beta:port-down:tyo-sw:xe-2/0/0"
    assert (
        "at peer beta: port-down on its border port facing us tyo-sw:xe-2/0/0" in (alarm["detail"])
    )
    assert [s["name"] for s in alarm["slices"]] == ["jp-lab"]

    context = make_context(Settings(data_dir=beta.data_dir))
    try:
        with transaction(context.sessions) as s:
            for row in s.scalars(select(Alarm)):
                row.cleared_at = dt.datetime.now(dt.UTC)
    finally:
        context.engine.dispose()
    wait_for("the alarm at alpha cleared", lambda: not peer_alarms())
