"""`federica emulate` as an operator runs it, including after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from federica.substrate.emulator import processes
from federica.substrate.inventory import topology_to_data
from federica.substrate.topology import parse_topology
from tests.conftest import EXAMPLES, REPO
from tests.integration.conftest import host_snapshot, needs_root, with_free_ports

pytestmark = [pytest.mark.integration, needs_root]


def federica(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "federica", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check and r.returncode != 0:
        raise AssertionError(f"federica {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")
    return r


def test_up_after_kill9_starts_fresh_and_down_leaves_nothing(tmp_path: Path) -> None:
    before = host_snapshot()
    topo = with_free_ports(parse_topology((EXAMPLES / "topologies" / "core4.yaml").read_bytes()))
    (tmp_path / "topo.yaml").write_text(yaml.safe_dump(topology_to_data(topo)))
    prefix = f"fk{os.getpid() % 100000}"
    env = os.environ | {
        "FEDERICA_DATA_DIR": str(tmp_path / "var"),
        "FEDERICA_EMULATOR_PREFIX": prefix,
    }
    env.pop("FEDERICA_DATABASE_URL", None)
    state_file = tmp_path / "var" / "emulator" / prefix / "state.json"
    federica(env, "substrate", "load", str(tmp_path / "topo.yaml"))
    try:
        # 1. kill -9 an `up` half way: some servers started, the rest not.
        proc = subprocess.Popen(
            [sys.executable, "-m", "federica", "emulate", "up"],
            cwd=REPO,
            env=env,
            stdout=open(tmp_path / "up.log", "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if state_file.exists() and len(json.loads(state_file.read_text())["processes"]) >= 3:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        orphans = [
            processes.Tracked.from_json(p) for p in json.loads(state_file.read_text())["processes"]
        ]
        assert orphans and any(processes.is_alive(t) for t in orphans), (
            tmp_path / "up.log"
        ).read_text()

        # 2. `up` again cleans that up and starts fresh.
        out = federica(env, "emulate", "up").stdout
        assert "emulated facility up" in out
        assert not any(processes.is_alive(t) for t in orphans)
        status = json.loads(federica(env, "emulate", "status", "--json").stdout)
        assert status["running"] and len(status["devices"]) == 4

        # 3. A process that dies is reported, not hidden.
        state = json.loads(state_file.read_text())
        agent = next(
            processes.Tracked.from_json(p)
            for p in state["processes"]
            if p["name"] == "agent prg-mx"
        )
        os.kill(agent.pid, signal.SIGKILL)
        time.sleep(0.2)
        status = json.loads(federica(env, "emulate", "status", "--json").stdout)
        assert not status["running"] and status["dead_processes"] == ["agent prg-mx"]
        assert "DEGRADED" in federica(env, "emulate", "status").stdout
    finally:
        tracked = (
            [
                processes.Tracked.from_json(p)
                for p in json.loads(state_file.read_text())["processes"]
            ]
            if state_file.exists()
            else []
        )
        down = federica(env, "emulate", "down", check=False)
    assert down.returncode == 0, down.stderr
    assert not any(processes.is_alive(t) for t in tracked)
    run_dir = tmp_path / "var" / "emulator" / prefix / "run"
    assert processes.find_by_argument(f"{run_dir}/") == [], "an unrecorded process survived"
    assert host_snapshot() == before
    assert not (tmp_path / "var" / "emulator" / prefix / "run").exists()
    assert "nothing to take down" in federica(env, "emulate", "down").stdout
