"""SNMP agents for B5: several net-snmp snmpd on loopback, each serving a static IF-MIB
table of its own (snmpd.conf `override` lines, answered by snmpd's C code from memory).

Why static tables in snmpd (and not the alternatives tried or considered):
* snmpd's own IF-MIB over real kernel interfaces (veths in a namespace) was the first
  choice and was measured: with 20 agents x 501 interfaces each agent re-reads every
  interface with ioctls that take the kernel's RTNL lock every few seconds; on this shared
  machine the agents spent minutes in the kernel, waiting on the lock other helpers'
  emulators hold, and slowed those emulators down. Unusable, and unfair to neighbours.
* a `pass_persist` helper (as the emulator uses) answers every value through a pipe to a
  Python process, and snmpsim is itself pysnmp: both would make the agents cost more CPU
  than the pollers under test, on the same 2 cores.
* `override` lines: C, from memory, ~8 us of agent CPU per value measured here, which is
  what a real device's agent costs. Their one limit: no Counter64 type (override knows
  integer, uinteger, octet_str, object_id, counter, null), so the four HC columns are
  served as Counter32 with values of a busy port's size (up to 2^32 - 1). The decoders
  take the same path for both types; the values are 5 BER bytes instead of up to 9.

Each agent is a device of `interfaces` rows, ifIndex 1..n: ifIndex, ifDescr, admin and
oper status, errors and discards, ifName, HC octets and unicast packets, ifHighSpeed,
ifAlias; values drawn from a seeded generator, different per agent.
`stop` (also on Ctrl-C and SIGTERM, see `running`) ends the snmpd we started, by their
process ids, and removes their directory.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

SNMPD = shutil.which("snmpd") or "/usr/sbin/snmpd"
SNMPGET = shutil.which("snmpget") or "/usr/bin/snmpget"
COMMUNITY = "bench-b5"
IF_ENTRY = "1.3.6.1.2.1.2.2.1"
IFX_ENTRY = "1.3.6.1.2.1.31.1.1.1"
C32 = 2**32 - 1
PR_SET_PDEATHSIG = 1


@dataclass
class Agents:
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


def die_with_parent() -> None:
    """preexec_fn: the kernel kills the child when the bench goes, however it goes.

    A Ctrl-C can arrive after the fork but before Popen returns, when the bench does not
    know the child's id yet and cannot stop it; this covers that moment too."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(port: int, interfaces: int, seed: int) -> str:
    rnd = random.Random(seed)
    lines = [f"agentAddress udp:127.0.0.1:{port}", f"rocommunity {COMMUNITY} 127.0.0.1"]
    for i in range(1, interfaces + 1):
        oper = 1 if rnd.random() < 0.9 else 2
        columns = {
            f"{IF_ENTRY}.1": ("integer", str(i)),
            f"{IF_ENTRY}.2": ("octet_str", f'"xe-{i // 48}/0/{i % 48}"'),
            f"{IF_ENTRY}.7": ("integer", "1"),
            f"{IF_ENTRY}.8": ("integer", str(oper)),
            f"{IF_ENTRY}.13": ("counter", str(rnd.randrange(0, 10_000))),
            f"{IF_ENTRY}.14": ("counter", str(rnd.randrange(0, 1_000))),
            f"{IF_ENTRY}.19": ("counter", str(rnd.randrange(0, 10_000))),
            f"{IF_ENTRY}.20": ("counter", str(rnd.randrange(0, 1_000))),
            f"{IFX_ENTRY}.1": ("octet_str", f'"xe-{i // 48}/0/{i % 48}"'),
            f"{IFX_ENTRY}.6": ("counter", str(rnd.randrange(2**28, C32))),
            f"{IFX_ENTRY}.7": ("counter", str(rnd.randrange(2**20, C32))),
            f"{IFX_ENTRY}.10": ("counter", str(rnd.randrange(2**28, C32))),
            f"{IFX_ENTRY}.11": ("counter", str(rnd.randrange(2**20, C32))),
            f"{IFX_ENTRY}.15": ("uinteger", "10000"),
            f"{IFX_ENTRY}.18": ("octet_str", f'"to core{rnd.randrange(100)} slice vlan {i}"'),
        }
        lines += [f"override .{oid}.{i} {kind} {value}" for oid, (kind, value) in columns.items()]
    return "\n".join(lines) + "\n"


def _answers(port: int) -> bool:
    probe = [SNMPGET, "-v2c", "-c", COMMUNITY, "-m", "", "-t", "1", "-r", "0", "-On"]
    probe += [f"127.0.0.1:{port}", f".{IF_ENTRY}.1.1"]
    out = subprocess.run(probe, capture_output=True, text=True, check=False)
    return out.returncode == 0 and "INTEGER: 1" in out.stdout


def start(n_agents: int, interfaces: int) -> Agents:
    root = Path(tempfile.mkdtemp(prefix="fb5", dir="/tmp"))
    agents = Agents([], interfaces, root)
    try:
        for n in range(n_agents):
            port = free_udp_port()
            agents.ports.append(port)
            adir = root / str(port)
            adir.mkdir()
            (adir / "snmpd.conf").write_text(config(port, interfaces, seed=n))
            env = {
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "SNMP_PERSISTENT_DIR": str(adir),
                "MIBDIRS": str(adir),
                "MIBS": "",
            }
            # No kernel interface tables (they would read this host's interfaces and take
            # the RTNL lock); everything the pollers ask for is in the override lines.
            argv = [SNMPD, "-f", "-C", "-c", str(adir / "snmpd.conf"), "-Lf", str(adir / "log")]
            argv += ["-I", "-ifTable,-ifXTable,-interfaces,-smux"]
            agents.procs.append(
                subprocess.Popen(
                    argv,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    preexec_fn=die_with_parent,
                )
            )
        deadline = time.monotonic() + 120
        waiting = list(agents.ports)
        while waiting:
            waiting = [p for p in waiting if not _answers(p)]
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
    deadline = time.monotonic() + 30
    for p in agents.procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    agents.procs.clear()
    shutil.rmtree(agents.root, ignore_errors=True)


@contextlib.contextmanager
def running(n_agents: int, interfaces: int) -> Iterator[Agents]:
    """The agents for the duration of the block; gone afterwards, also after Ctrl-C or
    SIGTERM (turned into SystemExit so that the cleanup runs)."""

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(143)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        agents = start(n_agents, interfaces)
        try:
            yield agents
        finally:
            stop(agents)
    finally:
        signal.signal(signal.SIGTERM, previous)
