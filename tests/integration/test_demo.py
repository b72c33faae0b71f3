"""`federica demo` as a real process: fresh data dir → SQLite → core4 → emulated facility
→ API; SIGTERM takes the facility down again."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from federica.substrate.inventory import topology_to_data
from federica.substrate.topology import parse_topology
from tests.conftest import EXAMPLES, REPO
from tests.integration.conftest import host_snapshot, needs_root, with_free_ports

pytestmark = [pytest.mark.integration, needs_root]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310  (loopback only)
        return json.load(r)


def test_demo_brings_everything_up_and_down(tmp_path: Path) -> None:
    before = host_snapshot()
    topo = with_free_ports(parse_topology((EXAMPLES / "topologies" / "core4.yaml").read_bytes()))
    topo_file = tmp_path / "core4.yaml"
    topo_file.write_text(yaml.safe_dump(topology_to_data(topo)))
    port = free_port()
    env = os.environ | {
        "FEDERICA_DATA_DIR": str(tmp_path / "var"),
        "FEDERICA_EMULATOR_PREFIX": f"fd{os.getpid() % 100000}",
    }
    env.pop("FEDERICA_DATABASE_URL", None)
    log = tmp_path / "demo.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "federica",
                "demo",
                "--port",
                str(port),
                "--topology",
                str(topo_file),
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        body = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                body = get_json(f"http://127.0.0.1:{port}/api/v1/substrate")
                break
            except OSError:
                time.sleep(0.2)
        assert body is not None, f"demo never answered:\n{log.read_text()}"
        assert body["summary"]["pops"] == 4 and body["summary"]["core_full_mesh"]
        assert all(d["host_key"].startswith("SHA256:") for d in body["devices"])
        assert "emulated facility" in log.read_text()
        assert host_snapshot() != before  # the facility is up
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert "taking the emulated facility down" in log.read_text()
    assert host_snapshot() == before
