"""A slice, all real: booked over the API, provisioned by the worker over NETCONF on the
emulated core4 facility, virtual routers in namespaces running FRR, packets across the
circuits, a login through the slice's gateway, and nothing left after release."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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

import federica.cli.slices  # noqa: F401  (registers the slice commands)
from federica.app import create_app
from federica.cli import cli
from federica.substrate.emulator import iproute
from federica.worker import Worker
from tests.accounts import client_as, make_user
from tests.conftest import EXAMPLES
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
    status_in_db,
    throughput_mbps,
)

pytestmark = [pytest.mark.integration, needs_root]
RING = [("prg-erl", "r-prg", "r-erl"), ("erl-mil", "r-erl", "r-mil"),
        ("mil-psn", "r-mil", "r-psn"), ("psn-prg", "r-psn", "r-prg")]  # fmt: skip


@pytest.fixture(scope="module")
def app(emulated_core4: Facility) -> Flask:
    app = create_app(emulated_core4.settings, context=emulated_core4.context)
    app.config["TESTING"] = True
    return app


@pytest.fixture(scope="module")
def researcher_token(emulated_core4: Facility) -> str:
    """The slices are booked by a researcher of project "lab", as a user would."""
    return make_user(emulated_core4.context, f"e2e-{uuid.uuid4().hex[:8]}", projects=["lab"])


@pytest.fixture
def client(app: Flask, researcher_token: str) -> FlaskClient:
    return client_as(app, researcher_token)


@pytest.fixture(scope="module")
def worker(emulated_core4: Facility) -> Iterator[Worker]:
    w = Worker(emulated_core4.context, name="e2e")
    yield w
    w.stop()


@pytest.fixture(scope="module")
def user_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = tmp_path_factory.mktemp("user") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def our_namespaces(fac: Facility) -> list[str]:
    """This facility's namespaces only: other facilities on the machine (other pytest
    workers, other runs) have slices with the same ids."""
    return [ns for ns in iproute.namespaces() if ns.startswith(f"{fac.emulator.prefix}-")]


def bgp_lab(name: str, key: Path) -> dict[str, Any]:
    req: dict[str, Any] = yaml.safe_load((EXAMPLES / "slices" / "bgp-lab.yaml").read_text())
    req["name"] = name
    req["window"] = {"start": "now", "duration": "1h"}
    req["ssh_keys"] = [key.with_suffix(".pub").read_text()]
    return req


def activate(client: FlaskClient, worker: Worker, req: dict[str, Any]) -> dict[str, Any]:
    sl = book(client, req)
    run_until(worker.run_once, lambda: show(client, sl["id"])["status"] != "provisioning"
              and show(client, sl["id"])["status"] != "scheduled")  # fmt: skip
    body = show(client, sl["id"])
    assert body["status"] == "active", body["history"]
    return body


def release(client: FlaskClient, worker: Worker, slice_id: int) -> None:
    r = client.post(f"/api/v1/slices/{slice_id}/release")
    assert r.status_code in (200, 202), r.get_json()
    run_until(worker.run_once, lambda: show(client, slice_id)["status"] == "ended")


def test_bgp_lab_end_to_end(
    emulated_core4: Facility, client: FlaskClient, worker: Worker, user_key: Path, tmp_path: Path
) -> None:
    fac = emulated_core4
    fac.wipe()
    lab = activate(client, worker, bgp_lab("bgp-lab", user_key))
    sid = lab["id"]
    try:
        # Ring neighbours answer over the slice's own circuits.
        for circuit, a, b in RING:
            assert pings(node_namespace(fac, lab, a), address_of(lab, b, circuit)), circuit
            assert pings(node_namespace(fac, lab, b), address_of(lab, a, circuit)), circuit

        # Every phase is timed, booking and provisioning.
        timings = lab["timings_ms"]
        assert set(timings["booking"]) >= {"api", "validate", "embed", "reserve"}
        assert set(timings["provisioning"]) >= {"netconf", "spawn", "verify", "gateway"}

        # The CLI shows the same: addresses, the login command, the phases.
        env = {
            "FEDERICA_DATA_DIR": str(fac.settings.data_dir),
            "FEDERICA_DATABASE_URL": fac.settings.effective_database_url,
            "FEDERICA_EMULATOR_PREFIX": fac.settings.emulator_prefix,
        }
        out_cli = CliRunner().invoke(cli, ["slice", "summary", str(sid)], env=env)
        assert out_cli.exit_code == 0, out_cli.output
        assert f"log in: ssh -p {lab['access']['port']} root@127.0.0.1 r-psn" in out_cli.output
        assert "eth1 10.0.1.1/24 (prg-erl)" in out_cli.output
        assert "provisioning: netconf" in out_cli.output

        # The gateway: the researcher's key logs in to a node and reaches FRR there.
        access = lab["access"]
        assert access["host"] == "127.0.0.1" and access["default_node"] == "r-psn"
        known = known_hosts_for(tmp_path / "known_hosts", access["port"],
                                fac.settings.gateway_dir, sid)  # fmt: skip
        out = ssh(user_key, access["port"], "r-erl", "vtysh -c 'show interface brief'",
                  known_hosts=known)  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "eth1" in out.stdout and "eth2" in out.stdout
        out = ssh(user_key, access["port"], "r-nobody", "true", known_hosts=known)
        assert out.returncode != 0 and "no node named 'r-nobody'" in out.stderr
        stranger = tmp_path / "stranger"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
                       check=True)  # fmt: skip
        out = ssh(stranger, access["port"], "r-erl", "true", known_hosts=known)
        assert out.returncode == 255 and "Permission denied" in out.stderr

        # A second slice on the same PoPs, with the same addresses: isolated from the first.
        other_req = {
            "name": "intruder",
            "window": {"start": "now", "duration": "1h"},
            "nodes": [{"name": "h1", "kind": "host", "pop": "PRG"},
                      {"name": "h2", "kind": "host", "pop": "ERL"}],
            "circuits": [{"name": "c", "endpoints": ["h1", "h2"], "bandwidth_mbps": 20}],
        }  # fmt: skip
        other = activate(client, worker, other_req)
        try:
            h1, h2 = node_namespace(fac, other, "h1"), node_namespace(fac, other, "h2")
            assert address_of(other, "h1", "c") == address_of(lab, "r-prg", "prg-erl")
            assert pings(h1, address_of(other, "h2", "c"))  # its own circuit works
            subprocess.run(["ip", "-n", h2, "address", "flush", "dev", "eth1"], check=True)
            # 10.0.1.2 is now only r-erl's, in the first slice: unreachable from here,
            # while the first slice still reaches it.
            assert not pings(h1, address_of(lab, "r-erl", "prg-erl"))
            assert pings(node_namespace(fac, lab, "r-prg"), address_of(lab, "r-erl", "prg-erl"))
        finally:
            release(client, worker, other["id"])
        assert slice_residue(fac, other) == []

        # Bandwidth: the 100 Mb/s circuit carries a stream, shaped to its figure.
        mbps = throughput_mbps(
            node_namespace(fac, lab, "r-prg"),
            node_namespace(fac, lab, "r-erl"),
            address_of(lab, "r-erl", "prg-erl"),
        )
        assert 30 < mbps <= 110, mbps
    finally:
        release(client, worker, sid)
    ended = show(client, sid)
    assert ended["status"] == "ended" and ended["access"] == {}
    assert slice_residue(fac, lab) == []
    assert ssh(user_key, lab["access"]["port"], "r-psn", "true",
               known_hosts=tmp_path / "known_hosts").returncode == 255  # fmt: skip


def test_a_v_node_that_cannot_spawn_fails_the_slice_cleanly(
    emulated_core4: Facility, client: FlaskClient, worker: Worker, user_key: Path
) -> None:
    fac = emulated_core4
    fac.wipe()
    # The MIL V-nodes cannot store a node: a read-only filesystem where nodes live.
    broken = [fac.emulator.socket_dir / "nodes" / h for h in ("mil-v1", "mil-v2")]
    for d in broken:
        d.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(d)], check=True)
    try:
        sl = book(client, bgp_lab("doomed", user_key))
        run_until(worker.run_once, lambda: show(client, sl["id"])["status"] == "failed")
    finally:
        for d in broken:
            subprocess.run(["umount", str(d)], check=True)
    body = show(client, sl["id"])
    reason = body["failure_reason"]
    r_mil = next(n for n in body["nodes"] if n["name"] == "r-mil")
    assert "node r-mil" in reason and f"V-node {r_mil['v_node']}" in reason, reason
    assert "Read-only file system" in reason, reason
    assert slice_residue(fac, body) == []
    # The reservations are free again: the same slice books and runs.
    again = activate(client, worker, bgp_lab("doomed-again", user_key))
    release(client, worker, again["id"])
    assert slice_residue(fac, again) == []


@pytest.mark.parametrize("kill_when", ["provisioning starts", "a node exists"])
def test_worker_killed_while_provisioning_leaves_no_half_built_slice(
    emulated_core4: Facility, client: FlaskClient, user_key: Path, tmp_path: Path, kill_when: str
) -> None:
    fac = emulated_core4
    fac.wipe()
    env = os.environ | {
        "FEDERICA_DATA_DIR": str(fac.settings.data_dir),
        "FEDERICA_DATABASE_URL": fac.settings.effective_database_url,
        "FEDERICA_EMULATOR_PREFIX": fac.settings.emulator_prefix,
        "FEDERICA_WORKER_POLL_S": "0.1",
        "FEDERICA_WORKER_LEASE_S": "2",
    }

    def start_worker(log: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "federica", "worker"],
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    sl = book(client, bgp_lab(f"crashy-{len(kill_when)}", user_key))
    sid = sl["id"]

    def reached() -> bool:
        if kill_when == "a node exists":  # NETCONF and the nodes are under way
            return any(f".s{sid}-" in ns for ns in our_namespaces(fac))
        return status_in_db(fac, sid) == "provisioning"  # most likely mid-NETCONF

    first = start_worker(tmp_path / "worker1.log")
    try:
        deadline = time.monotonic() + 60
        while not reached():
            assert time.monotonic() < deadline, (tmp_path / "worker1.log").read_text()
            assert first.poll() is None, (tmp_path / "worker1.log").read_text()
            time.sleep(0.005)
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert status_in_db(fac, sid) == "provisioning"
        second = start_worker(tmp_path / "worker2.log")
        try:
            deadline = time.monotonic() + 60
            while status_in_db(fac, sid) not in ("active", "failed"):
                assert time.monotonic() < deadline, (tmp_path / "worker2.log").read_text()
                time.sleep(0.1)
            body = show(client, sid)
            assert body["status"] == "active", body["history"]
            assert all(n["state"] == "ready" for n in body["nodes"])
            for circuit, a, b in RING:
                assert pings(node_namespace(fac, body, a), address_of(body, b, circuit))
            # Exactly one of each node: no duplicates from the first attempt.
            mine = [ns for ns in our_namespaces(fac) if f".s{sid}-" in ns]
            assert len(mine) == 4, mine
            r = client.post(f"/api/v1/slices/{sid}/release")
            assert r.status_code == 202
            deadline = time.monotonic() + 60
            while status_in_db(fac, sid) != "ended":
                assert time.monotonic() < deadline, (tmp_path / "worker2.log").read_text()
                time.sleep(0.1)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert slice_residue(fac, show(client, sid)) == []
