"""A device whose NETCONF server stops answering in the middle of a slice's transaction:
the real worker, the real provisioner and pool, the emulated core4 facility, netconfd
frozen with SIGSTOP between the validation and the confirmed commits."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

import federica.cli.device  # noqa: F401  (registers the device commands)
from federica.app import create_app
from federica.cli import cli
from federica.substrate.drivers.base import DeviceConfig
from federica.substrate.drivers.netconf.federica_l2 import parse_config
from federica.substrate.emulator import processes
from federica.worker import Worker
from tests.accounts import client_as, make_user
from tests.conftest import EXAMPLES
from tests.integration.conftest import Facility, needs_root
from tests.integration.slice_helpers import book, show, slice_residue

pytestmark = [pytest.mark.integration, needs_root]

VICTIM = "mil-mx"
# The RPC bound under test (netconf_rpc_timeout_s); the default is 10 s.
RPC_BOUND_S = 4
# Slack on a busy machine for what is not under test: the abort on the other devices.
SLACK_S = 6.0


@pytest.fixture(scope="module")
def app(emulated_core4: Facility) -> Flask:
    app = create_app(emulated_core4.settings, context=emulated_core4.context)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app: Flask, emulated_core4: Facility) -> FlaskClient:
    token = make_user(emulated_core4.context, f"stop-{uuid.uuid4().hex[:8]}", projects=["lab"])
    return client_as(app, token)


@pytest.fixture
def worker(emulated_core4: Facility) -> Iterator[Worker]:
    fac = emulated_core4
    settings = dataclasses.replace(fac.settings, netconf_rpc_timeout_s=RPC_BOUND_S)
    w = Worker(dataclasses.replace(fac.context, settings=settings), name="stop-test")
    yield w
    w.stop()


@pytest.fixture
def user_key(tmp_path: Path) -> Path:
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def ring(name: str, key: Path) -> dict[str, Any]:
    """Four routers, one per PoP, in a ring: a transaction on all four devices."""
    req: dict[str, Any] = yaml.safe_load((EXAMPLES / "slices" / "bgp-lab.yaml").read_text())
    req.update(name=name, window={"start": "now", "duration": "1h"})
    req["ssh_keys"] = [key.with_suffix(".pub").read_text()]
    return req


def pair(name: str) -> dict[str, Any]:
    """Two hosts at PRG and ERL: a slice that does not need the victim."""
    return {
        "name": name,
        "window": {"start": "now", "duration": "1h"},
        "nodes": [{"name": "h1", "kind": "host", "pop": "PRG"},
                  {"name": "h2", "kind": "host", "pop": "ERL"}],
        "circuits": [{"name": "c", "endpoints": ["h1", "h2"], "bandwidth_mbps": 20}],
    }  # fmt: skip


def runnings(fac: Facility, skip: str = "") -> dict[str, DeviceConfig]:
    out = {}
    for d in fac.plan.devices:
        if d.name == skip:
            continue  # frozen: it cannot be asked
        m = fac.netconf(d.name)
        try:
            out[d.name] = parse_config(m.get_config(source="running").data_ele)
        finally:
            m.close_session()
    return out


def settle(client: FlaskClient, worker: Worker, slice_id: int, timeout_s: float = 90) -> str:
    deadline = time.monotonic() + timeout_s
    while (status := show(client, slice_id)["status"]) in ("scheduled", "provisioning"):
        assert time.monotonic() < deadline, f"slice {slice_id} still {status}"
        worker.run_once()
        time.sleep(0.05)
    return str(status)


def netconfd_of(fac: Facility, device: str) -> processes.Tracked:
    state = fac.emulator.load_state()
    assert state is not None
    (t,) = [t for t in state.processes if t.name == f"netconfd {device}"]
    return t


def test_a_device_that_stops_answering_fails_the_slice_and_nothing_else(
    emulated_core4: Facility, client: FlaskClient, worker: Worker, user_key: Path
) -> None:
    fac = emulated_core4
    fac.wipe()
    before = runnings(fac)
    netconfd = netconfd_of(fac, VICTIM)
    env = {
        "FEDERICA_DATA_DIR": str(fac.settings.data_dir),
        "FEDERICA_DATABASE_URL": fac.settings.effective_database_url,
        "FEDERICA_EMULATOR_PREFIX": fac.settings.emulator_prefix,
        "FEDERICA_NETCONF_RPC_TIMEOUT_S": str(RPC_BOUND_S),
    }
    phases: dict[str, float] = {}

    def freeze_after_validation(phase: str) -> None:
        phases.setdefault(phase, time.monotonic())
        if phase == "validated" and "stopped" not in phases:
            os.kill(netconfd.pid, signal.SIGSTOP)
            phases["stopped"] = time.monotonic()

    worker.provisioner.observer = freeze_after_validation
    try:
        doomed = book(client, ring("frozen", user_key))
        assert settle(client, worker, doomed["id"]) == "failed"
        worker.provisioner.observer = None
        assert "stopped" in phases, phases
        # The transaction gave up within the RPC bound of the freeze.
        assert phases["failed"] - phases["stopped"] < RPC_BOUND_S + SLACK_S, phases
        body = show(client, doomed["id"])
        reason = body["failure_reason"]
        assert f"device {VICTIM}: confirmed commit: no answer in time" in reason, reason
        # The other three are as before, and nothing of the slice is left on them.
        assert runnings(fac, skip=VICTIM) == {d: c for d, c in before.items() if d != VICTIM}

        # The device is marked unreachable, for the operator and the API alike.
        item = client.get(f"/api/v1/substrate/devices/{VICTIM}").get_json()
        assert item["reachability"]["state"] == "unreachable", item
        # (the latest attempt: the slice's clean-up could not open a session either)
        assert "no NETCONF session within" in item["reachability"]["reason"], item
        others = client.get("/api/v1/substrate/devices").get_json()
        assert {d["name"]: d["reachability"]["state"] for d in others} == {
            d: ("unreachable" if d == VICTIM else "reachable") for d in before
        }
        checked = CliRunner().invoke(cli, ["device", "check", VICTIM], env=env)
        assert checked.exit_code == 1, checked.output
        assert f"FAIL  {VICTIM}" in checked.output, checked.output
        assert "marked unreachable since" in checked.output, checked.output

        # The worker goes on with other events while the device is still frozen.
        t0 = time.monotonic()
        other = book(client, pair("bystander"))
        assert settle(client, worker, other["id"]) == "active", show(client, other["id"])["history"]
        assert time.monotonic() - t0 < 60
        release(client, worker, other["id"])
    finally:
        os.kill(netconfd.pid, signal.SIGCONT)
        worker.provisioner.observer = None

    # Back: a new slice over all four devices provisions, and the mark is gone.
    again = book(client, ring("thawed", user_key))
    assert settle(client, worker, again["id"]) == "active", show(client, again["id"])["history"]
    # Nothing of the failed slice anywhere: the confirmed commit that reached the frozen
    # device when it woke up was cancelled by the pool's next session.
    assert slice_residue(fac, body) == []
    item = client.get(f"/api/v1/substrate/devices/{VICTIM}").get_json()
    assert item["reachability"]["state"] == "reachable", item
    release(client, worker, again["id"])
    assert slice_residue(fac, show(client, again["id"])) == []
    assert runnings(fac) == before


def release(client: FlaskClient, worker: Worker, slice_id: int) -> None:
    r = client.post(f"/api/v1/slices/{slice_id}/release")
    assert r.status_code in (200, 202), r.get_json()
    deadline = time.monotonic() + 90
    while show(client, slice_id)["status"] != "ended":
        assert time.monotonic() < deadline, show(client, slice_id)
        worker.run_once()
        time.sleep(0.05)
