"""bench/snmp.py starts its own snmpd agents: interrupted (Ctrl-C) or terminated, it leaves
none of them behind, nor their directory."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def processes(match: bytes) -> list[int]:
    """Process ids whose command line contains `match`."""
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(match in a for a in argv):
            out.append(int(proc.name))
    return out


def agents_under(root: str) -> list[int]:
    return processes(root.encode())


def workers_of(ports: list[int]) -> list[int]:
    """The bench's poller processes: `bench.snmp worker … --ports <the agents' ports>`."""
    out = []
    for pid in processes(b"worker"):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--ports" in argv and str(ports[0]).encode() in argv[argv.index(b"--ports") + 1].split(
            b","
        ):
            out.append(pid)
    return out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_bench_leaves_no_agent_behind(sig: signal.Signals) -> None:
    # Many rounds of a slow poller: the bench is surely still measuring when interrupted.
    argv = [sys.executable, "-m", "bench.snmp", "--agents", "3", "--interfaces", "20"]
    argv += ["--rounds", "1000", "--pollers", "naive", "--no-record"]
    bench = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert bench.stdout is not None
        first = bench.stdout.readline()  # printed once every agent answers
        found = re.search(r"\(in (/tmp/fb5\w+)\)", first)
        assert found, f"unexpected first line: {first!r}"
        root = found.group(1)
        assert len(agents_under(root)) == 3
        ports = agent_ports(root)
        # Interrupt it while its poller runs (the moment a child is most easily forgotten).
        deadline = time.monotonic() + 60
        while not workers_of(ports) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert workers_of(ports), "the naive poller did not start"
        bench.send_signal(sig)
        bench.wait(timeout=120)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
    deadline = time.monotonic() + 30
    while (agents_under(root) or workers_of(ports)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert agents_under(root) == []
    assert workers_of(ports) == []
    assert not Path(root).exists()


def agent_ports(root: str) -> list[int]:
    return [int(d.name) for d in Path(root).iterdir() if d.name.isdigit()]
