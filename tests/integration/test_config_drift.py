"""Chaos: a device's configuration edited behind the controller's back, on the emulated
core4 facility. A slice is booked and built by the real worker; one of its segments is
deleted on a device over raw NETCONF (its packets stop), an unknown segment is added in
the controller's VLAN range and an orphan node is left on a V-node; `federica
reconcile` (a real process) reports the drift with --dry-run and changes nothing, then
restores the segment at once (packets flow again) and removes the unknown segment and
the orphan only once their grace period is over; each repair is an open config-drift
alarm and an audit row, and the alarms clear on the next pass."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from federica.aaa.models import AuditEntry
from federica.alarms.models import Alarm
from federica.app import create_app
from federica.db import transaction
from federica.substrate.drivers.base import Attachment, Change, DeviceConfig, Segment
from federica.substrate.drivers.compute.base import NodeSpec, NodeState
from federica.substrate.drivers.compute.netns import for_emulated_host
from federica.substrate.drivers.netconf.federica_l2 import change_config, parse_config, to_xml
from federica.worker import Worker
from tests.accounts import client_as, make_user
from tests.conftest import REPO
from tests.integration.conftest import Facility, needs_root
from tests.integration.slice_helpers import (
    address_of,
    book,
    node_namespace,
    pings,
    run_until,
    show,
    slice_residue,
)

pytestmark = [pytest.mark.integration, needs_root]
ROGUE = "rogue-xc"
ROGUE_DEVICE, ROGUE_PORTS, ROGUE_VLAN = "prg-mx", ("ge-0/0/0", "ge-0/0/1"), 3990  # links' range
ORPHAN = "s999999-orphan"
SETTLING = ("scheduled", "provisioning")


@pytest.fixture(scope="module")
def app(emulated_core4: Facility) -> Flask:
    app = create_app(emulated_core4.settings, context=emulated_core4.context)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app: Flask, emulated_core4: Facility) -> FlaskClient:
    token = make_user(emulated_core4.context, f"drift-{uuid.uuid4().hex[:8]}", projects=["lab"])
    return client_as(app, token)


@pytest.fixture
def worker(emulated_core4: Facility) -> Iterator[Worker]:
    w = Worker(emulated_core4.context, name="drift-test")
    yield w
    w.stop()


def running(fac: Facility, device: str) -> DeviceConfig:
    m = fac.netconf(device)
    try:
        return parse_config(m.get_config(source="running").data_ele)
    finally:
        m.close_session()


def edit_behind_the_back(fac: Facility, device: str, change: Change) -> None:
    """Raw NETCONF, as an engineer at the device's console would: not the drivers."""
    m = fac.netconf(device)
    try:
        el = change_config(change, parse_config(m.get_config(source="running").data_ele))
        assert el is not None
        m.edit_config(target="candidate", config=to_xml(el))
        m.commit()
    finally:
        m.close_session()


def reconcile(fac: Facility, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "FEDERICA_DATA_DIR": str(fac.settings.data_dir),
        "FEDERICA_DATABASE_URL": fac.settings.effective_database_url,
        "FEDERICA_EMULATOR_PREFIX": fac.settings.emulator_prefix,
        "FEDERICA_RECONCILE_GRACE_S": "3600",
    }
    return subprocess.run(
        [sys.executable, "-m", "federica", "reconcile", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def eventually(what: str, condition: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def drift_alarms(fac: Facility) -> dict[str, Alarm]:
    with transaction(fac.context.read_sessions) as s:
        rows = s.scalars(select(Alarm).where(Alarm.kind == "config-drift")).all()
        s.expunge_all()
        return {a.subject: a for a in rows}


def audit_rows(fac: Facility, action: str) -> list[AuditEntry]:
    with transaction(fac.context.read_sessions) as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()
        s.expunge_all()
        return list(rows)


def test_reconciliation_repairs_a_device_edited_behind_the_controllers_back(
    emulated_core4: Facility, client: FlaskClient, worker: Worker
) -> None:
    fac = emulated_core4
    fac.wipe()
    sl = book(
        client,
        {
            "name": "drift",
            "window": {"start": "now", "duration": "1h"},
            "nodes": [{"name": "h1", "kind": "host", "pop": "PRG"},
                      {"name": "h2", "kind": "host", "pop": "ERL"}],
            "circuits": [{"name": "c", "endpoints": ["h1", "h2"], "bandwidth_mbps": 20}],
        },
    )  # fmt: skip
    sid = sl["id"]
    run_until(worker.run_once, lambda: show(client, sid)["status"] not in SETTLING)
    body = show(client, sid)
    assert body["status"] == "active", body["history"]
    src, dst = node_namespace(fac, body, "h1"), address_of(body, "h2", "c")
    assert pings(src, dst)
    seg_name = f"fed{sid}-c"
    hops = {d.name: cfg.segments[seg_name] for d in fac.plan.devices
            if seg_name in (cfg := running(fac, d.name)).segments}  # fmt: skip
    assert hops, "the slice's segment is on no device"
    victim = sorted(hops)[0]
    intended = hops[victim]
    orphan_host = body["nodes"][0]["v_node"]
    compute = for_emulated_host(orphan_host, fac.settings)
    try:
        # Behind the controller's back: the slice's segment deleted on one hop, a segment
        # nobody booked added in the controller's range, a node no slice wants started.
        edit_behind_the_back(fac, victim, Change(remove=(seg_name,)))
        rogue = Segment(ROGUE, tuple(Attachment(p, ROGUE_VLAN) for p in ROGUE_PORTS))
        edit_behind_the_back(fac, ROGUE_DEVICE, Change(add=(rogue,)))
        compute.define(NodeSpec(ORPHAN, "none", "orphan", "host", 1, 256, "debian"))
        compute.boot(ORPHAN)
        assert compute.status(ORPHAN) is NodeState.RUNNING
        eventually("the slice's packets to stop", lambda: not pings(src, dst, count=1))

        # A dry run names the drift and changes nothing.
        dry = reconcile(fac, "--dry-run")
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert f"{victim}: missing-segment {seg_name}" in dry.stdout, dry.stdout
        assert f"{ROGUE_DEVICE}: unknown-segment {ROGUE}" in dry.stdout, dry.stdout
        assert f"{orphan_host}: orphan-node {ORPHAN}" in dry.stdout, dry.stdout
        assert seg_name not in running(fac, victim).segments
        assert ROGUE in running(fac, ROGUE_DEVICE).segments
        assert drift_alarms(fac) == {}

        # A pass: the missing segment is restored at once; the unknown ones wait out
        # their grace period (an hour here), alarmed meanwhile.
        first = reconcile(fac)
        assert first.returncode == 0, first.stdout + first.stderr
        assert running(fac, victim).segments.get(seg_name) == intended
        assert ROGUE in running(fac, ROGUE_DEVICE).segments
        assert compute.status(ORPHAN) is NodeState.RUNNING
        eventually("the slice's packets to flow again", lambda: pings(src, dst))
        alarms = drift_alarms(fac)
        subject = f"{victim} segment {seg_name}"
        assert alarms[subject].cleared_at is None and "restored" in alarms[subject].detail
        assert alarms[f"{ROGUE_DEVICE} segment {ROGUE}"].cleared_at is None
        assert alarms[f"{orphan_host} node {ORPHAN}"].cleared_at is None
        (restored,) = [r for r in audit_rows(fac, "reconcile.restore") if r.slice_id == sid]
        assert restored.target == subject and restored.slice_id == sid
        assert f"missing-segment {seg_name}" in restored.detail and victim in restored.detail
        removals_before = len(audit_rows(fac, "reconcile.remove"))

        # With no grace left: the unknown segment and the orphan node are removed.
        second = reconcile(fac, "--grace", "0")
        assert second.returncode == 0, second.stdout + second.stderr
        assert ROGUE not in running(fac, ROGUE_DEVICE).segments
        assert compute.status(ORPHAN) is NodeState.ABSENT
        assert not any(ORPHAN in ns for ns in os.listdir("/run/netns"))
        removed = {r.target for r in audit_rows(fac, "reconcile.remove")[removals_before:]}
        assert removed == {f"{ROGUE_DEVICE} segment {ROGUE}", f"{orphan_host} node {ORPHAN}"}
        assert running(fac, victim).segments.get(seg_name) == intended  # untouched
        assert pings(src, dst)

        # The next pass finds no drift, and clears the alarms.
        third = reconcile(fac)
        assert third.returncode == 0, third.stdout + third.stderr
        assert "0 drift(s)" in third.stdout, third.stdout
        assert all(a.cleared_at is not None for a in drift_alarms(fac).values())
    finally:
        compute.destroy(ORPHAN)
        fac.wipe([ROGUE_DEVICE])
        r = client.post(f"/api/v1/slices/{sid}/release")
        assert r.status_code in (200, 202), r.get_json()
        run_until(worker.run_once, lambda: show(client, sid)["status"] == "ended")
    assert slice_residue(fac, body) == []


def test_reconciliation_leaves_a_slice_in_flight_alone(
    emulated_core4: Facility, client: FlaskClient, worker: Worker
) -> None:
    """A slice that is being released has its segments taken away by the worker: that
    is no drift, and reconciliation neither restores them nor raises anything."""
    fac = emulated_core4
    fac.wipe()
    sl = book(
        client,
        {
            "name": "inflight",
            "window": {"start": "now", "duration": "1h"},
            "nodes": [{"name": "h1", "kind": "host", "pop": "PRG"},
                      {"name": "h2", "kind": "host", "pop": "ERL"}],
            "circuits": [{"name": "c", "endpoints": ["h1", "h2"], "bandwidth_mbps": 20}],
        },
    )  # fmt: skip
    sid = sl["id"]
    run_until(worker.run_once, lambda: show(client, sid)["status"] not in SETTLING)
    body: dict[str, Any] = show(client, sid)
    assert body["status"] == "active", body["history"]
    seg_name = f"fed{sid}-c"
    victim = next(d.name for d in fac.plan.devices if seg_name in running(fac, d.name).segments)
    # Released (RELEASING, its end event not run yet) and its segment gone from one hop,
    # as the worker's teardown would have it half-way.
    r = client.post(f"/api/v1/slices/{sid}/release")
    assert r.status_code in (200, 202), r.get_json()
    assert show(client, sid)["status"] == "releasing"
    edit_behind_the_back(fac, victim, Change(remove=(seg_name,)))
    out = reconcile(fac, "--grace", "0")
    assert out.returncode == 0, out.stdout + out.stderr
    assert seg_name not in out.stdout, out.stdout
    assert seg_name not in running(fac, victim).segments
    assert not any(seg_name in subject for subject in drift_alarms(fac))
    run_until(worker.run_once, lambda: show(client, sid)["status"] == "ended")
    assert slice_residue(fac, body) == []
