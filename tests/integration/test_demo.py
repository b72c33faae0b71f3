"""`federica demo` as a real process: fresh data dir → SQLite → core4 → emulated facility
→ API; SIGTERM or Ctrl-C takes the facility down again."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from federica.cli.demo import LOST_WITH_THE_DEMO, STOP_WITHIN_S
from federica.substrate.drivers.compute.cgroups import Cgroups
from federica.substrate.emulator import iproute, processes
from federica.substrate.emulator.device import RUNTIME_ROOT
from federica.substrate.inventory import topology_to_data
from federica.substrate.topology import parse_topology
from tests.conftest import EXAMPLES, REPO
from tests.integration.conftest import needs_root, with_free_ports
from tests.integration.demo_process import free_port, get_json, post_json, running_demo
from tests.integration.slice_helpers import known_hosts_for

pytestmark = [pytest.mark.integration, needs_root]


def _namespaces(prefix: str) -> list[str]:
    return [ns for ns in iproute.namespaces() if ns.startswith(f"{prefix}-")]


def _left_behind(prefix: str, data_dir: Path) -> list[str]:
    """One demo's namespaces, links, processes, cgroups, runtime and gateway files. Only
    its own: other runs on this machine come and go meanwhile."""
    left = [f"namespace {ns}" for ns in _namespaces(prefix)]
    left += [f"link {name}" for name in iproute.root_link_names() if prefix in name]
    for fragment in (f"{data_dir}/", f"{RUNTIME_ROOT / prefix}/"):
        left += [f"process {t.pid} {t.name}" for t in processes.find_by_argument(fragment)]
    if (RUNTIME_ROOT / prefix).exists():
        left.append(f"runtime directory {RUNTIME_ROOT / prefix}")
    if Cgroups.detect(prefix).group_exists():
        left.append(f"cgroup group {prefix}")
    left += [f"gateway files {p}" for p in (data_dir / "gateways").glob("*")]
    left += [f"emulator state {p}" for p in (data_dir / "emulator").glob("*/state.json")]
    return left


def test_demo_brings_everything_up_and_down(tmp_path: Path) -> None:
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
        assert _namespaces(demo.prefix)  # the facility is up

        # The README's walk-through: book bgp-lab, the demo's worker builds it, log in.
        key = tmp_path / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        lab = yaml.safe_load((EXAMPLES / "slices" / "bgp-lab.yaml").read_text())
        lab["ssh_keys"] = [key.with_suffix(".pub").read_text()]
        booked = post_json(f"http://127.0.0.1:{port}/api/v1/slices", lab, token)
        assert booked["slice"]["project"] == "demo" and booked["slice"]["owner"] == "demo"
        assert f"slice {booked['slice']['id']} (bgp-lab) booked" in log.read_text()
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
        # Someone is still logged in when the demo stops: an interactive shell ignores
        # SIGTERM, so its node is SIGKILLed after the grace period (the demo's bound holds).
        shell = _interactive_login(key, sl["access"]["port"], tmp_path / "kh", "r-prg")
    assert demo.stopped_in_s is not None and demo.stopped_in_s < STOP_WITHIN_S, log.read_text()
    assert shell.wait(timeout=30) is not None  # the session ended with the demo
    for pipe in (shell.stdin, shell.stdout):
        if pipe is not None:
            pipe.close()
    assert "taking the emulated facility down" in log.read_text()
    assert _left_behind(demo.prefix, demo.data_dir) == []
    # Its nodes went with the facility, so the database no longer says ACTIVE.
    assert "marked 1 running slice(s) failed: bgp-lab" in log.read_text()
    with sqlite3.connect(demo.data_dir / "federica.db") as db:
        row = db.execute("SELECT status, failure_reason FROM slices WHERE name = 'bgp-lab'")
        assert row.fetchone() == ("failed", LOST_WITH_THE_DEMO)


def _interactive_login(key: Path, port: int, known: Path, node: str) -> subprocess.Popen[bytes]:
    """An interactive shell in `node` through the gateway (a pty, as a person's), running
    once it has answered a command."""
    shell = subprocess.Popen(
        ["ssh", "-tt", "-p", str(port), "-i", str(key), "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={known}",
         "root@127.0.0.1", node],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert shell.stdin is not None and shell.stdout is not None
    shell.stdin.write(b"echo LOGGED''IN\n")  # the pty echoes the line; only the output matches
    shell.stdin.flush()
    seen = b""
    deadline = time.monotonic() + 30
    while b"LOGGEDIN" not in seen:
        assert time.monotonic() < deadline and shell.poll() is None, seen
        ready, _, _ = select.select([shell.stdout], [], [], 1)
        if ready:
            seen += os.read(shell.stdout.fileno(), 4096)
    return shell


def test_sigterm_while_the_facility_comes_up_leaves_nothing(tmp_path: Path) -> None:
    topo = with_free_ports(parse_topology((EXAMPLES / "topologies" / "core4.yaml").read_bytes()))
    topo_file = tmp_path / "core4.yaml"
    topo_file.write_text(yaml.safe_dump(topology_to_data(topo)))
    prefix = f"fe{os.getpid() % 100000}"
    env = os.environ | {
        "FEDERICA_DATA_DIR": str(tmp_path / "var"),
        "FEDERICA_EMULATOR_PREFIX": prefix,
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
    assert _left_behind(prefix, tmp_path / "var") == []


def _ctrl_c_reaches_it() -> None:
    # A shell starts background jobs with SIGINT ignored, and children inherit that; a
    # person's Ctrl-C reaches a demo in the foreground, so the test's must too.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_the_readme_walkthrough_in_a_fresh_checkout_then_ctrl_c(tmp_path: Path) -> None:
    """The README as a person follows it: `federica demo` started where no data directory
    is set (the default, relative `var/`), bgp-lab booked from the CLI with a key, a login
    through the gateway with OpenSSH, a ping across a circuit from that shell, release,
    Ctrl-C: the demo ends within STOP_WITHIN_S and leaves nothing behind."""
    work = tmp_path / "checkout"  # stands for the clone: the demo runs from its top
    (work / "examples" / "slices").mkdir(parents=True)
    shutil.copy(EXAMPLES / "slices" / "bgp-lab.yaml", work / "examples" / "slices")
    topo = with_free_ports(parse_topology((EXAMPLES / "topologies" / "core4.yaml").read_bytes()))
    (work / "core4.yaml").write_text(yaml.safe_dump(topology_to_data(topo)))
    port = free_port({d.management.port for d in topo.devices})
    prefix = f"fr{os.getpid() % 100000}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERICA_")}
    env["FEDERICA_EMULATOR_PREFIX"] = prefix  # apart from other runs; nothing else is set

    def federica(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "federica", *args], cwd=work, env=env, capture_output=True,
            text=True, timeout=120, check=False,
        )  # fmt: skip

    def show() -> dict[str, Any]:
        r = federica("slice", "show", "bgp-lab")
        assert r.returncode == 0, r.stderr
        return dict(json.loads(r.stdout))

    def wait_while(states: tuple[str, ...], within_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + within_s
        while (sl := show())["status"] in states:
            assert time.monotonic() < deadline, (sl["history"], log.read_text())
            time.sleep(0.2)
        return sl

    key = tmp_path / "federica"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    log = tmp_path / "demo.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "federica", "demo", "--port", str(port),
             "--topology", "core4.yaml"],
            cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT,
            preexec_fn=_ctrl_c_reaches_it,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                get_json(f"http://127.0.0.1:{port}/api/v1/openapi.json")
                break
            except OSError:
                time.sleep(0.2)
        assert (work / "var" / "federica.db").exists(), "not the default data directory"
        assert "NETCONF sessions open to 4 device(s)" in log.read_text()

        booked = federica("slice", "book", "examples/slices/bgp-lab.yaml", "--ssh-key",
                          str(key.with_suffix(".pub")))  # fmt: skip
        assert booked.returncode == 0, booked.stderr
        sl = wait_while(("scheduled", "provisioning"), 60)
        assert sl["status"] == "active", sl["history"]
        summary = federica("slice", "summary", "bgp-lab").stdout
        found = re.search(r"log in: ssh -p (\d+) root@127\.0\.0\.1 ", summary)
        assert found, summary
        gw_port = int(found.group(1))
        known = known_hosts_for(tmp_path / "known_hosts", gw_port, work / "var" / "gateways",
                                sl["id"])  # fmt: skip
        # `ssh -i … -p <port> root@127.0.0.1 r-prg`, then a ping typed into that shell.
        login = subprocess.run(
            ["ssh", "-i", str(key), "-p", str(gw_port), "-o", "BatchMode=yes",
             "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={known}",
             "-o", "StrictHostKeyChecking=yes", "root@127.0.0.1", "r-prg"],
            input="ping -c 1 -W 2 10.0.1.2\n", capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
        assert login.returncode == 0, login.stderr
        assert " 0% packet loss" in login.stdout, login.stdout

        released = federica("slice", "release", "bgp-lab")
        assert released.returncode == 0, released.stderr
        assert wait_while(("active", "releasing"), 60)["status"] == "ended"
        assert not (work / "var" / "gateways" / f"s{sl['id']}").exists()
    finally:
        stop_started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stopped_in = time.monotonic() - stop_started
    text = log.read_text()
    assert proc.returncode == 0, text
    assert stopped_in < STOP_WITHIN_S, f"Ctrl-C took {stopped_in:.1f} s:\n{text}"
    assert "taking the emulated facility down" in text
    assert _left_behind(prefix, work / "var") == []
    # The log a person reads: no scheduler heartbeat, no per-RPC lines at INFO.
    assert "apscheduler" not in text and "ncclient" not in text, text
