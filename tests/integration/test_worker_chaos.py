"""Chaos: two real `federica worker` processes on a throwaway PostgreSQL database, driving
the emulated core4 facility.

The moment is made deterministic with a real component: the NETCONF server of one of the
slice's devices is frozen (SIGSTOP) before the slice starts, so the worker that claims
the start builds the nodes (they start alongside the network configuration) and then
waits on that device: it is mid-provisioning for as long as the test likes, which the
test observes (the event claimed, the slice provisioning, every node's namespace there,
no segment on any device).

* SIGKILL that worker: the other takes the event over once its lease runs out (the
  killed one no longer renews it), removes what the first built and builds the slice
  again: ACTIVE, every hop configured (get-config), one namespace per node, packets
  flow; never half-built.
* SIGTERM it instead: it keeps the event (renewing its lease while it shuts down),
  finishes it once the device answers, and exits 0; the other never takes it.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from federica.app import create_app
from federica.config import Settings
from federica.context import Context, make_context
from federica.db import make_engine, transaction
from federica.migrate import upgrade
from federica.slices.lifecycle import EventKind
from federica.slices.models import Slice, SliceEvent
from federica.substrate.emulator import iproute
from federica.substrate.inventory import apply_topology, current_topology, record_host_key
from tests.accounts import client_as, make_user
from tests.conftest import POSTGRES_ADMIN_URL
from tests.integration.conftest import Facility, needs_root
from tests.integration.slice_helpers import address_of, node_namespace, pings, slice_residue
from tests.integration.test_device_stops_answering import netconfd_of, pair, runnings
from tests.integration.test_worker_leader import WorkerProcess, wait_for

pytestmark = [pytest.mark.integration, needs_root]
LEASE_S = 6  # FEDERICA_WORKER_LEASE_S: how soon a dead worker's event is taken over
FROZEN = "erl-mx"  # on the pair's path (PRG - ERL)
API = "/api/v1"


@dataclass
class Controller:
    """The facility's devices and V-nodes, with their intent in a PostgreSQL database."""

    fac: Facility
    context: Context
    settings: Settings
    client: FlaskClient
    env: dict[str, str]

    def slice_row(self, sid: int) -> tuple[str, list[SliceEvent]]:
        with transaction(self.context.read_sessions) as s:
            sl = s.get(Slice, sid)
            assert sl is not None
            evs = list(
                s.scalars(
                    select(SliceEvent).where(SliceEvent.slice_id == sid).order_by(SliceEvent.id)
                )
            )
            s.expunge_all()
            return sl.status.value, evs

    def start_event(self, sid: int) -> SliceEvent:
        return next(e for e in self.slice_row(sid)[1] if e.kind is EventKind.START)

    def show(self, sid: int) -> dict[str, Any]:
        r = self.client.get(f"{API}/slices/{sid}")
        assert r.status_code == 200, r.get_json()
        body: dict[str, Any] = r.get_json()
        return body


@pytest.fixture
def controller(emulated_core4: Facility) -> Iterator[Controller]:
    """A throwaway PostgreSQL database holding the emulated facility's inventory."""
    fac = emulated_core4
    name = f"federica_chaos_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    settings = replace(fac.settings, database_url=url)
    engine = make_engine(url)
    try:
        upgrade(engine)
        ctx = make_context(settings, engine=engine)
        with transaction(fac.context.read_sessions) as s:
            topo = current_topology(s)
        with transaction(ctx.sessions) as s:
            apply_topology(s, topo)
            for device, info in fac.state.devices.items():
                record_host_key(s, device, info["fingerprint"])
        app = create_app(settings, context=ctx)
        app.config["TESTING"] = True
        token = make_user(ctx, f"chaos-{uuid.uuid4().hex[:6]}", projects=["lab"])
        env = os.environ | {
            "FEDERICA_DATABASE_URL": url,
            "FEDERICA_DATA_DIR": str(fac.settings.data_dir),
            "FEDERICA_EMULATOR_PREFIX": fac.settings.emulator_prefix,
            "FEDERICA_WORKER_POLL_S": "0.2",
            "FEDERICA_WORKER_LEASE_S": str(LEASE_S),
            "FEDERICA_LEADER_LEASE_S": "6",
            # The claimant waits on the frozen device as long as the test needs.
            "FEDERICA_NETCONF_RPC_TIMEOUT_S": "600",
            # The leader reconciles when it starts (nothing to repair: it must not fight
            # the provisioning either), not again during the test.
            "FEDERICA_RECONCILE_EVERY_S": "3600",
        }
        yield Controller(fac, ctx, settings, client_as(app, token), env)
    finally:
        engine.dispose()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def frozen(emulated_core4: Facility) -> Iterator[int]:
    """The pid of FROZEN's netconfd, thawed (SIGCONT) whatever happens."""
    pid = netconfd_of(emulated_core4, FROZEN).pid
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.fixture
def workers(controller: Controller, tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    started = [WorkerProcess(controller.env, tmp_path / f"worker{i}.log") for i in range(2)]
    try:
        # Both up, and the leader's reconciliation at start done, before anything else.
        wait_for("both workers", lambda: all(": polling" in w.text() for w in started))
        wait_for(
            "the leader's first reconciliation",
            lambda: any("reconcile: " in w.text() for w in started),
            timeout=120,
        )
        yield started
    finally:
        for w in started:
            if w.proc.poll() is None:
                w.proc.kill()
            w.proc.wait(timeout=30)


def mid_provisioning(c: Controller, workers: list[WorkerProcess], frozen: int) -> tuple[
    int, WorkerProcess, WorkerProcess
]:  # fmt: skip
    """Freeze FROZEN, book the pair, and wait until a worker is half-way through it:
    returns the slice's id, that worker and the other."""
    os.kill(frozen, signal.SIGSTOP)
    r = c.client.post(f"{API}/slices", json=pair(f"chaos-{uuid.uuid4().hex[:6]}"))
    assert r.status_code == 201, r.get_json()
    sid: int = r.get_json()["slice"]["id"]
    wait_for("a worker to claim the start", lambda: c.start_event(sid).claimed_by is not None)
    body = c.show(sid)
    namespaces = [node_namespace(c.fac, body, n["name"]) for n in body["nodes"]]
    wait_for(
        "the claimant to build the nodes",
        lambda: all(ns in iproute.namespaces() for ns in namespaces),
        timeout=120,
    )
    assert c.slice_row(sid)[0] == "provisioning"
    # Half-built: nodes up, no circuit on any device (the transaction waits on FROZEN).
    assert not any(
        s.startswith(f"fed{sid}-") for cfg in runnings(c.fac, skip=FROZEN).values()
        for s in cfg.segments
    )  # fmt: skip
    claimant_name = c.start_event(sid).claimed_by
    (claimant,) = [w for w in workers if w.name == claimant_name]
    (other,) = [w for w in workers if w is not claimant]
    return sid, claimant, other


def assert_fully_built(c: Controller, sid: int) -> dict[str, Any]:
    body = c.show(sid)
    assert body["status"] == "active", body["history"]
    assert all(n["state"] == "ready" for n in body["nodes"]), body["nodes"]
    hops: dict[str, set[tuple[str, int]]] = {}
    for circuit in body["circuits"]:
        for hop in circuit["hops"]:
            hops.setdefault(hop["device"], set()).add((hop["port"], hop["vlan"]))
    assert hops, body["circuits"]
    configs = runnings(c.fac)
    for device, attachments in hops.items():
        seg = configs[device].segments.get(f"fed{sid}-c")
        assert seg is not None, f"{device}: the circuit is not configured"
        assert {(a.port, a.vlan) for a in seg.attachments} == attachments
        assert seg.enabled
    # Exactly one namespace per node: nothing left over from the first attempt.
    ours = f"{c.fac.emulator.prefix}-"  # other facilities on the machine have slices too
    mine = [ns for ns in iproute.namespaces() if ns.startswith(ours) and f".s{sid}-" in ns]
    assert sorted(mine) == sorted(node_namespace(c.fac, body, n["name"]) for n in body["nodes"])
    assert pings(node_namespace(c.fac, body, "h1"), address_of(body, "h2", "c"))
    return body


def release(c: Controller, sid: int) -> None:
    r = c.client.post(f"{API}/slices/{sid}/release")
    assert r.status_code in (200, 202), r.get_json()
    wait_for("the slice to end", lambda: c.slice_row(sid)[0] == "ended", timeout=120)
    assert slice_residue(c.fac, c.show(sid)) == []


def test_a_worker_killed_mid_provisioning_is_taken_over_never_half_built(
    controller: Controller, workers: list[WorkerProcess], frozen: int
) -> None:
    c = controller
    c.fac.wipe()
    sid, claimant, other = mid_provisioning(c, workers, frozen)

    claimant.proc.send_signal(signal.SIGKILL)
    claimant.proc.wait(timeout=30)
    os.kill(frozen, signal.SIGCONT)

    wait_for(
        "the other worker to settle the slice",
        lambda: c.slice_row(sid)[0] not in ("scheduled", "provisioning"),
        timeout=180,
    )
    start = c.start_event(sid)
    assert start.claimed_by == other.name and start.attempts == 2, (start.result, other.text())
    assert start.done_at is not None and start.result == "active", start.result
    assert_fully_built(c, sid)
    release(c, sid)


def test_sigterm_mid_provisioning_finishes_the_event_before_exiting(
    controller: Controller, workers: list[WorkerProcess], frozen: int
) -> None:
    c = controller
    c.fac.wipe()
    sid, claimant, _other = mid_provisioning(c, workers, frozen)

    claimant.proc.send_signal(signal.SIGTERM)
    wait_for("the claimant to begin stopping", lambda: "stopping" in claimant.text())
    # While it shuts down it still renews its lease: past a whole lease from now, the
    # event is still its own (the other worker polls all along and may not take it).
    held_until = c.start_event(sid).claimed_until
    assert held_until is not None
    wait_for(
        "the lease to be renewed past a whole lease",
        lambda: (
            (u := c.start_event(sid).claimed_until) is not None
            and u >= held_until + dt.timedelta(seconds=LEASE_S)
        ),
        timeout=60,
    )
    assert claimant.proc.poll() is None, claimant.text()
    assert c.start_event(sid).claimed_by == claimant.name

    os.kill(frozen, signal.SIGCONT)
    assert claimant.proc.wait(timeout=180) == 0, claimant.text()
    start = c.start_event(sid)
    assert start.claimed_by == claimant.name and start.attempts == 1, start.result
    assert start.done_at is not None and start.result == "active", start.result
    assert_fully_built(c, sid)
    release(c, sid)  # the other worker ends it
