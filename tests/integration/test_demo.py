"""`federica demo` as a real process: fresh data dir → SQLite → core4 → emulated facility
→ API; SIGTERM takes the facility down again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from federica.substrate.inventory import topology_to_data
from federica.substrate.topology import parse_topology
from tests.conftest import EXAMPLES, REPO
from tests.integration.conftest import host_snapshot, needs_root, with_free_ports
from tests.integration.demo_process import free_port, get_json, running_demo

pytestmark = [pytest.mark.integration, needs_root]


def post_json(url: str, body: Any, token: str) -> Any:
    req = urllib.request.Request(  # noqa: S310  (loopback only)
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
        return json.load(r)


def test_demo_brings_everything_up_and_down(tmp_path: Path) -> None:
    before = host_snapshot()
    with running_demo(tmp_path, "fd") as demo:
        port, log = demo.port, demo.log
        # The demo account's token, in a private file (never in the log).
        token_file = tmp_path / "var" / "demo-token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        assert token not in log.read_text()
        with pytest.raises(urllib.error.HTTPError) as refused:
            get_json(f"http://127.0.0.1:{port}/api/v1/substrate")  # anonymous
        assert refused.value.code == 401
        body = get_json(f"http://127.0.0.1:{port}/api/v1/substrate", token)
        assert body["summary"]["pops"] == 4 and body["summary"]["core_full_mesh"]
        assert all(d["host_key"].startswith("SHA256:") for d in body["devices"])
        assert "emulated facility" in log.read_text()
        assert host_snapshot() != before  # the facility is up

        # The README's walk-through: book bgp-lab, the demo's worker builds it, log in.
        key = tmp_path / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        lab = yaml.safe_load((EXAMPLES / "slices" / "bgp-lab.yaml").read_text())
        lab["ssh_keys"] = [key.with_suffix(".pub").read_text()]
        booked = post_json(f"http://127.0.0.1:{port}/api/v1/slices", lab, token)
        assert booked["slice"]["project"] == "demo" and booked["slice"]["owner"] == "demo"
        url = f"http://127.0.0.1:{port}/api/v1/slices/{booked['slice']['id']}"
        deadline = time.monotonic() + 60
        while get_json(url, token)["status"] in ("scheduled", "provisioning"):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        sl = get_json(url, token)
        assert sl["status"] == "active", sl["history"]
        login = subprocess.run(
            ["ssh", "-p", str(sl["access"]["port"]), "-i", str(key), "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={tmp_path / 'kh'}",
             "root@127.0.0.1", "r-prg", "ping -c 1 -W 2 10.0.1.2"],
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert login.returncode == 0, login.stderr
    assert "taking the emulated facility down" in log.read_text()
    assert host_snapshot() == before


def test_sigterm_while_the_facility_comes_up_leaves_nothing(tmp_path: Path) -> None:
    before = host_snapshot()
    topo = with_free_ports(parse_topology((EXAMPLES / "topologies" / "core4.yaml").read_bytes()))
    topo_file = tmp_path / "core4.yaml"
    topo_file.write_text(yaml.safe_dump(topology_to_data(topo)))
    env = os.environ | {
        "FEDERICA_DATA_DIR": str(tmp_path / "var"),
        "FEDERICA_EMULATOR_PREFIX": f"fe{os.getpid() % 100000}",
    }
    env.pop("FEDERICA_DATABASE_URL", None)
    log = tmp_path / "demo.log"
    port = free_port({d.management.port for d in topo.devices})
    argv = [sys.executable, "-m", "federica", "demo", "--port", str(port)]
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*argv, "--topology", str(topo_file)], cwd=REPO, env=env, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "wires" not in log.read_text():  # namespaces made, servers starting
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert "taking the emulated facility down" in log.read_text()
    assert host_snapshot() == before
