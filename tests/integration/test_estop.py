"""The emergency stop on the emulated core4 facility, all real: NETCONF to netconfd,
packets through namespaces, nodes frozen in their cgroups, the gateway's sshd. A slice is
stopped (pings between its nodes fail, its routers' processes are frozen and still
there, its gateway refuses logins, its owner's release/extend/lift refused, audit rows
with who/why/ticket), then lifted (pings, logins and processes back). With one device's
netconfd SIGSTOPped, the stop still isolates the slice through the fallback and raises
an alarm naming the device. And `federica estop drill` passes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

import federica.cli.estop  # noqa: F401  (registers the estop commands)
from federica.aaa.models import AuditEntry
from federica.alarms.models import Alarm
from federica.app import create_app
from federica.cli import cli
from federica.db import transaction
from federica.substrate.drivers.compute.netns import for_emulated_host
from federica.substrate.emulator import processes
from federica.worker import Worker
from tests.accounts import client_as, make_user
from tests.integration.conftest import Facility, needs_root
from tests.integration.slice_helpers import (
    address_of,
    book,
    known_hosts_for,
    node_namespace,
    pings,
    run_until,
    show,
    slice_residue,
    ssh,
)

pytestmark = [pytest.mark.integration, needs_root]


@pytest.fixture(scope="module")
def app(emulated_core4: Facility) -> Flask:
    app = create_app(emulated_core4.settings, context=emulated_core4.context)
    app.config["TESTING"] = True
    return app


@pytest.fixture(scope="module")
def owner(app: Flask, emulated_core4: Facility) -> FlaskClient:
    token = make_user(emulated_core4.context, f"es-{uuid.uuid4().hex[:8]}", projects=["lab"])
    return client_as(app, token)


@pytest.fixture(scope="module")
def operator(app: Flask, emulated_core4: Facility) -> FlaskClient:
    token = make_user(emulated_core4.context, f"noc-{uuid.uuid4().hex[:8]}", "operator")
    return client_as(app, token)


@pytest.fixture
def worker(emulated_core4: Facility) -> Iterator[Worker]:
    w = Worker(emulated_core4.context, name="estop-test")
    yield w
    w.stop()


@pytest.fixture
def user_key(tmp_path: Path) -> Path:
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def routers(name: str, key: Path) -> dict[str, Any]:
    """Two BIRD routers at PRG and MIL over one circuit (through prg-mx, the core, mil-mx)."""
    return {
        "name": name,
        "window": {"start": "now", "duration": "1h"},
        "nodes": [
            {"name": "r1", "kind": "router", "image": "bird", "pop": "PRG"},
            {"name": "r2", "kind": "router", "image": "bird", "pop": "MIL"},
        ],
        "circuits": [{"name": "c", "endpoints": ["r1", "r2"], "bandwidth_mbps": 20}],
        "ssh_keys": [key.with_suffix(".pub").read_text()],
        "gateway": {"node": "r1"},
    }


def settle(client: FlaskClient, worker: Worker, slice_id: int) -> str:
    run_until(
        worker.run_once,
        lambda: show(client, slice_id)["status"] not in ("scheduled", "provisioning"),
        timeout_s=120,
    )
    return str(show(client, slice_id)["status"])


def release(client: FlaskClient, worker: Worker, slice_id: int) -> None:
    r = client.post(f"/api/v1/slices/{slice_id}/release")
    assert r.status_code in (200, 202), r.get_json()
    run_until(worker.run_once, lambda: show(client, slice_id)["status"] == "ended", 120)


def node_pids(fac: Facility, body: dict[str, Any]) -> dict[str, tuple[set[int], bool]]:
    """Per node: its processes' pids and whether the node is frozen (real cgroups)."""
    out = {}
    for n in body["nodes"]:
        driver = for_emulated_host(n["v_node"], fac.settings)
        node_id = f"s{body['id']}-{n['name']}"
        pids = {int(str(p["pid"])) for p in driver.processes(node_id)}
        out[n["name"]] = (pids, driver.is_frozen(node_id))
    return out


def known_hosts(tmp: Path, access: dict[str, Any], fac: Facility, sid: int) -> Path:
    """The gateway's host key as it is now (the stop removes the gateway, the lift makes
    a new one)."""
    return known_hosts_for(tmp / "known_hosts", access["port"], fac.settings.gateway_dir, sid)


def login(key: Path, access: dict[str, Any], known: Path) -> bool:
    return ssh(key, access["port"], "r1", "true", known_hosts=known).returncode == 0


def test_stop_isolates_freezes_and_lift_restores(
    emulated_core4: Facility,
    owner: FlaskClient,
    operator: FlaskClient,
    worker: Worker,
    user_key: Path,
    tmp_path: Path,
) -> None:
    fac = emulated_core4
    fac.wipe()
    body = book(owner, routers("stopme", user_key))
    sid = body["id"]
    assert settle(owner, worker, sid) == "active", show(owner, sid)["history"]
    body = show(owner, sid)
    ns1 = node_namespace(fac, body, "r1")
    to_r2 = address_of(body, "r2", "c")
    assert pings(ns1, to_r2)
    access = body["access"]
    known = known_hosts(tmp_path, access, fac, sid)
    assert login(user_key, access, known)
    before = node_pids(fac, body)
    assert all(pids and not frozen for pids, frozen in before.values()), before

    r = operator.post(
        f"/api/v1/slices/{sid}/estop", json={"reason": "port scan from r1", "ticket": "GMOC-21"}
    )
    assert r.status_code == 200, r.get_json()
    report = r.get_json()["stopped"][0]["report"]
    assert report["isolated"] is True and report["unreached"] == [], report
    assert report["gateway"] == "closed"

    # Traffic stops: real pings between the nodes fail (sent from the node's network,
    # outside its frozen processes).
    assert not pings(ns1, to_r2, count=3)
    # Frozen, not killed: the same processes, every node frozen.
    during = node_pids(fac, body)
    assert {n: (p, True) for n, (p, _) in before.items()} == during
    # The gateway refuses logins; the owner's changes are refused; a researcher's lift 403.
    assert not login(user_key, access, known)
    assert owner.post(f"/api/v1/slices/{sid}/release").status_code == 409
    assert owner.post(f"/api/v1/slices/{sid}/extend", json={"by": "1h"}).status_code == 409
    lift = owner.post(f"/api/v1/slices/{sid}/estop/lift", json={"reason": "me"})
    assert lift.status_code == 403
    seen = show(owner, sid)
    assert seen["status"] == "shutdown"
    assert seen["emergency_stop"]["reason"] == "port scan from r1"
    # The forensic snapshot: the segments as configured, the processes, per device/node.
    record = operator.get(f"/api/v1/slices/{sid}/estop").get_json()
    devices = {h["device"] for h in body["circuits"][0]["hops"]}
    assert set(record["snapshot"]["segments"]) == devices
    assert {p["pid"] for p in record["snapshot"]["nodes"]["r1"]["processes"]} == before["r1"][0]
    # Reservations kept; the worker leaves it alone.
    worker.run_once()
    assert show(owner, sid)["status"] == "shutdown"

    r = operator.post(f"/api/v1/slices/{sid}/estop/lift", json={"reason": "cleared, GMOC-21"})
    assert r.status_code == 200, r.get_json()
    after = show(owner, sid)
    assert after["status"] == "active" and after["emergency_stop"] is None
    assert pings(ns1, to_r2)
    assert node_pids(fac, after) == {n: (p, False) for n, (p, _) in before.items()}
    assert login(user_key, after["access"], known_hosts(tmp_path, after["access"], fac, sid))

    with transaction(fac.context.read_sessions) as s:
        rows = s.scalars(
            select(AuditEntry).where(AuditEntry.slice_id == sid, AuditEntry.action.like("estop%"))
        ).all()
        by_action = {e.action: (e.actor, json.loads(e.detail)) for e in rows}
    actor, detail = by_action["estop"]
    assert actor.startswith("noc-") and detail["reason"] == "port scan from r1"
    assert detail["ticket"] == "GMOC-21"
    actor, detail = by_action["estop.lift"]
    assert actor.startswith("noc-") and detail["reason"] == "cleared, GMOC-21"

    release(owner, worker, sid)
    assert slice_residue(fac, after) == []


def netconfd_of(fac: Facility, device: str) -> processes.Tracked:
    state = fac.emulator.load_state()
    assert state is not None
    (t,) = [t for t in state.processes if t.name == f"netconfd {device}"]
    return t


def test_a_device_that_does_not_answer_is_isolated_around_and_alarmed(
    emulated_core4: Facility,
    owner: FlaskClient,
    operator: FlaskClient,
    worker: Worker,
    user_key: Path,
) -> None:
    fac = emulated_core4
    fac.wipe()
    body = book(owner, routers("around", user_key))
    sid = body["id"]
    assert settle(owner, worker, sid) == "active", show(owner, sid)["history"]
    body = show(owner, sid)
    ns1 = node_namespace(fac, body, "r1")
    to_r2 = address_of(body, "r2", "c")
    assert pings(ns1, to_r2)
    # r1's V-node hangs off the circuit's first device: freeze that device's NETCONF.
    victim = body["circuits"][0]["hops"][0]["device"]
    netconfd = netconfd_of(fac, victim)
    os.kill(netconfd.pid, signal.SIGSTOP)
    try:
        r = operator.post(f"/api/v1/slices/{sid}/estop", json={"reason": "abuse"})
        assert r.status_code == 200, r.get_json()
        report = r.get_json()["stopped"][0]["report"]
        assert report["unreached"] == [victim], report
        assert report["isolated"] is True, report
        assert any(f["how"].startswith("the slice's node links") for f in report["fallbacks"])
        assert report["collateral"] == []
        assert not pings(ns1, to_r2, count=3)
        with transaction(fac.context.read_sessions) as s:
            alarm = s.scalars(
                select(Alarm).where(Alarm.kind == "estop-device", Alarm.cleared_at.is_(None))
            ).one()
        assert alarm.subject == victim and victim in alarm.detail
        assert f"slice around ({sid})" in alarm.detail
    finally:
        os.kill(netconfd.pid, signal.SIGCONT)
    r = operator.post(f"/api/v1/slices/{sid}/estop/lift", json={"reason": "device back"})
    assert r.status_code == 200, r.get_json()
    assert pings(ns1, to_r2)
    with transaction(fac.context.read_sessions) as s:
        alarm = s.scalars(select(Alarm).where(Alarm.kind == "estop-device")).one()
    assert alarm.cleared_at is not None
    release(owner, worker, sid)
    assert slice_residue(fac, show(owner, sid)) == []


def test_the_drill_passes(emulated_core4: Facility) -> None:
    fac = emulated_core4
    fac.wipe()
    env = {
        "FEDERICA_DATA_DIR": str(fac.settings.data_dir),
        "FEDERICA_DATABASE_URL": fac.settings.effective_database_url,
        "FEDERICA_EMULATOR_PREFIX": fac.settings.emulator_prefix,
    }
    out = CliRunner().invoke(cli, ["estop", "drill"], env=env)
    print(out.output)  # the drill's timings, for whoever runs this with -s
    assert out.exit_code == 0, out.output
    for check in (
        "no packet crosses after the stop",
        "every node is frozen",
        "the nodes' processes are still there",
        "the gateway refuses logins",
        "traffic resumes after the lift",
    ):
        line = next(x for x in out.output.splitlines() if x.startswith(check))
        assert " ok" in line and "FAIL" not in line, out.output
    assert "traffic stopped" in out.output and "nodes frozen" in out.output
    assert "drill passed" in out.output
    assert "drill slice" in out.output and ": ended" in out.output
