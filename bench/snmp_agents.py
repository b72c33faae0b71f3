"""SNMP agents for B5: several net-snmp snmpd in one network namespace of the bench's own,
serving the kernel's IF-MIB of many veth interfaces in that namespace.

Why real kernel interfaces and snmpd's own IF-MIB (not a pass_persist helper or snmpsim):
that is what a Linux-based router's agent does, all in C, so the agents cost what real
ones cost. A pass_persist helper answers every value through a pipe to a Python process,
and snmpsim is itself pysnmp: either would make the agents slower than the pollers under
test and take the shared cores from them. Every agent serves every interface of the
namespace (that is how snmpd works), so K agents over N interfaces are K devices of N
interfaces each, K x N interfaces to poll. The veths carry no traffic, so counters are 0
(the BER values are shorter than a busy router's; the per-value work is the same).

Everything lives in a namespace named `b5<pid>` (traffic stays on its loopback) and a
temporary directory; `stop` (also on Ctrl-C and SIGTERM, see `running`) ends the snmpd we
started, by their process ids, and deletes the namespace.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

SNMPD = shutil.which("snmpd") or "/usr/sbin/snmpd"
IP = shutil.which("ip") or "/usr/sbin/ip"
COMMUNITY = "bench-b5"
BASE_PORT = 20161
IF_NUMBER = ".1.3.6.1.2.1.2.1.0"


@dataclass
class Agents:
    namespace: str
    ports: list[int]
    interfaces_per_agent: int
    root: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def cpu_s(self) -> float:
        """CPU seconds the agents used so far (user + system, from /proc)."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for p in self.procs:
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
        return total

    def netns_argv(self, argv: list[str]) -> list[str]:
        return [IP, "netns", "exec", self.namespace, *argv]


def _ip(*args: str, batch: str | None = None) -> None:
    subprocess.run([IP, *args], input=batch, text=True, check=True, capture_output=True)


def _answers(agents: Agents, port: int) -> bool:
    at = f"127.0.0.1:{port}"
    probe = agents.netns_argv(
        ["snmpget", "-v2c", "-c", COMMUNITY, "-m", "", "-t", "1", "-r", "0", "-On", at, IF_NUMBER]
    )
    out = subprocess.run(probe, capture_output=True, text=True, check=False)
    # ifNumber answers only once the agent has read the interfaces.
    return out.returncode == 0 and f"INTEGER: {agents.interfaces_per_agent}" in out.stdout


def start(n_agents: int, veth_pairs: int) -> Agents:
    namespace = f"b5{os.getpid()}"
    root = Path(tempfile.mkdtemp(prefix="fb5", dir="/tmp"))
    agents = Agents(namespace, [BASE_PORT + i for i in range(n_agents)], 2 * veth_pairs + 1, root)
    try:
        _ip("netns", "add", namespace)
        _ip("-n", namespace, "link", "set", "lo", "up")
        lines = [f"link add v{i}a type veth peer name v{i}b" for i in range(veth_pairs)]
        lines += [f"link set v{i}{s} up" for i in range(veth_pairs) for s in "ab"]
        _ip("-n", namespace, "-batch", "-", batch="\n".join(lines) + "\n")
        for port in agents.ports:
            adir = root / str(port)
            adir.mkdir()
            (adir / "snmpd.conf").write_text(
                f"agentAddress udp:127.0.0.1:{port}\nrocommunity {COMMUNITY} 127.0.0.1\n"
            )
            env = {
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "SNMP_PERSISTENT_DIR": str(adir),
                "MIBDIRS": str(adir),
                "MIBS": "",
            }
            argv = [SNMPD, "-f", "-C", "-c", str(adir / "snmpd.conf"), "-Lf", str(adir / "log")]
            # `ip netns exec` execs snmpd in place: the process id is the agent's.
            agents.procs.append(
                subprocess.Popen(
                    agents.netns_argv(argv),
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        deadline = time.monotonic() + 60
        waiting = list(agents.ports)
        while waiting:
            waiting = [p for p in waiting if not _answers(agents, p)]
            if waiting and time.monotonic() > deadline:
                raise RuntimeError(f"agents on ports {waiting} did not answer; see {root}")
    except BaseException:
        stop(agents)
        raise
    return agents


def stop(agents: Agents) -> None:
    for p in agents.procs:
        if p.poll() is None:
            p.terminate()
    for p in agents.procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    agents.procs.clear()
    subprocess.run([IP, "netns", "delete", agents.namespace], capture_output=True, check=False)
    shutil.rmtree(agents.root, ignore_errors=True)


@contextlib.contextmanager
def running(n_agents: int, veth_pairs: int) -> Iterator[Agents]:
    """The agents for the duration of the block; gone afterwards, also after Ctrl-C or
    SIGTERM (turned into SystemExit so that the cleanup runs)."""

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(143)

    previous = signal.signal(signal.SIGTERM, on_term)
    agents = start(n_agents, veth_pairs)
    try:
        yield agents
    finally:
        stop(agents)
        signal.signal(signal.SIGTERM, previous)
