"""The e-stop drill: prove on the facility itself that an emergency stop works.

On an ACTIVE slice: traffic across every circuit (a fast ping from one end to each other
end, run with the node's network but outside its processes, so it measures the network,
not the freeze) and a ticking process in every node (through its console, so it is one of
the node's processes); then an e-stop, measuring when the last reply came back and when
the last tick did; then the checks (no reply any more, the gateway refuses connections,
each node's ticking process still exists); then the lift, and traffic and ticks must
resume. Everything it starts is stopped whatever happens.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from federica.aaa.policy import Principal
from federica.db import transaction
from federica.estop import service as estop
from federica.estop.isolate import Toolkit
from federica.slices import runner
from federica.slices import service as slices
from federica.slices.lifecycle import SliceStatus
from federica.slices.provision import NodePart

QUIET_S = 1.0  # no reply for this long after the stop returned: the traffic stopped
STOP_WITHIN_S = 5.0  # traffic still crossing this long after the stop: the drill fails
RESUME_S = 15.0  # how long traffic and ticks may take to come back after the lift


@dataclass
class Stream:
    """A child process whose output lines are time-stamped as they arrive."""

    label: str
    proc: subprocess.Popen[str]
    match: str
    times: list[float] = field(default_factory=list)
    first_line: str = ""
    # Lines that start with "[<epoch seconds>]" (ping -D): that time, stamped by the
    # sender as it got the reply, not when this process got round to reading the line.
    stamped: bool = False

    def start(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out: IO[str] | None = self.proc.stdout
        if out is None:
            return
        for line in out:
            if not self.first_line:
                self.first_line = line.strip()
            if self.match in line:
                self.times.append(self._when(line))

    def _when(self, line: str) -> float:
        now = time.monotonic()
        if self.stamped and line.startswith("["):
            with contextlib.suppress(ValueError):
                wall = float(line[1 : line.index("]")])
                return now - (time.time() - wall)
        return now

    def last_before(self, t: float) -> float | None:
        seen = [x for x in list(self.times) if x <= t]
        return seen[-1] if seen else None

    def any_between(self, a: float, b: float) -> bool:
        return any(a < x <= b for x in list(self.times))

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


def spawn(argv: Sequence[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
        bufsize=1,
    )


@dataclass
class DrillResult:
    slice_id: int
    slice_name: str
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(ok for _, ok, _ in self.checks)

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append((name, ok, detail))


def _wait(cond: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _refuses(access: dict[str, Any]) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex((str(access["host"]), int(access["port"]))) != 0


def run(
    ctx: estop.Context,
    tk: Toolkit,
    slice_ref: str,
    who: Principal,
    *,
    say: Callable[[str], None] = lambda _m: None,
) -> DrillResult:
    with transaction(ctx.read_sessions) as s:
        sl = slices.get(s, slice_ref)
        if sl.status is not SliceStatus.ACTIVE:
            raise estop.NotShutDown(
                f"slice: {sl.name} is {sl.status.value}; a drill needs an active slice"
            )
        plan = runner.plan_of(s, sl)
        access_before: dict[str, Any] = json.loads(sl.access or "{}")
        result = DrillResult(sl.id, sl.name)
    pingers: list[Stream] = []
    tickers: dict[str, tuple[NodePart, Stream]] = {}
    try:
        for circuit, ends in _circuit_ends(plan.nodes).items():
            src, _ = ends[0]
            for _dst, address in ends[1:]:
                driver = tk.compute(src.driver, src.host)
                argv = [
                    *driver.probe(src.spec.id),
                    "ping",
                    "-D",
                    "-n",
                    "-i",
                    "0.01",
                    "-W",
                    "1",
                    address,
                ]
                label = f"{circuit}: {src.name} → {address}"
                stream = Stream(label, spawn(argv), "bytes from", stamped=True)
                stream.start()
                pingers.append(stream)
        for part in plan.nodes:
            console = tk.compute(part.driver, part.host).console(part.spec.id)
            loop = "echo pid $$; while :; do echo tick; sleep 0.01; done"
            stream = Stream(part.name, spawn([*console, "sh", "-c", loop]), "tick")
            stream.start()
            tickers[part.name] = (part, stream)
        flowing = _wait(lambda: all(p.times for p in pingers), 15.0)
        result.check("traffic crosses every circuit before the stop", flowing,
                     ", ".join(p.label for p in pingers if not p.times))  # fmt: skip
        ticking = _wait(lambda: all(t.times for _, t in tickers.values()), 15.0)
        result.check("a process runs in every node before the stop", ticking)
        if not (flowing and ticking):
            return result
        say(f"drill on slice {sl.name} ({sl.id}): {len(pingers)} probe(s), {len(tickers)} node(s)")

        t_req = time.monotonic()
        stopped = estop.stop(
            ctx, tk, estop.Selector(slice=str(result.slice_id)), who, "e-stop drill", "drill"
        )
        t_done = time.monotonic()
        report = stopped[0].report
        result.timings_ms["request"] = _ms(t_done - t_req)
        result.timings_ms["isolated (service)"] = float(report["timings_ms"]["isolated"])
        # A device applies a commit to its data plane shortly after answering it: wait
        # for QUIET_S without a reply (at most STOP_WITHIN_S).
        quiet = _wait(
            lambda: (
                all(
                    not p.any_between(time.monotonic() - QUIET_S, time.monotonic()) for p in pingers
                )
                and time.monotonic() - t_done >= QUIET_S
            ),
            STOP_WITHIN_S,
        )
        t_quiet = time.monotonic()
        still = [p.label for p in pingers if p.any_between(t_quiet - QUIET_S, t_quiet)]
        result.check("no packet crosses after the stop", quiet and not still, ", ".join(still))
        last_reply = max((p.last_before(t_quiet) or t_req) for p in pingers)
        result.timings_ms["traffic stopped"] = _ms(max(0.0, last_reply - t_req))
        last_tick = max((t.last_before(t_quiet) or t_req) for _, t in tickers.values())
        result.timings_ms["nodes frozen"] = _ms(max(0.0, last_tick - t_req))
        moving = [n for n, (_, t) in tickers.items() if t.any_between(t_quiet - QUIET_S, t_quiet)]
        result.check("every node is frozen", not moving, ", ".join(moving))
        missing = []
        for name, (part, t) in tickers.items():
            pid = t.first_line.removeprefix("pid ").strip()
            procs = tk.compute(part.driver, part.host).processes(part.spec.id)
            if not any(str(p["pid"]) == pid for p in procs):
                missing.append(f"{name} (pid {pid})")
        result.check("the nodes' processes are still there", not missing, ", ".join(missing))
        if access_before:
            result.check("the gateway refuses logins", _refuses(access_before))

        t_lift = time.monotonic()
        estop.lift(ctx, tk, str(result.slice_id), who, "e-stop drill: lifted")
        result.timings_ms["lift"] = _ms(time.monotonic() - t_lift)
        resumed = _wait(lambda: all(p.any_between(t_lift, time.monotonic()) for p in pingers),
                        RESUME_S)  # fmt: skip
        result.check("traffic resumes after the lift", resumed)
        if resumed:
            first = max(min(x for x in p.times if x > t_lift) for p in pingers if p.times)
            result.timings_ms["traffic resumed"] = _ms(first - t_lift)
        thawed = _wait(
            lambda: all(t.any_between(t_lift, time.monotonic()) for _, t in tickers.values()),
            RESUME_S,
        )
        result.check("the nodes run again after the lift", thawed)
        with transaction(ctx.read_sessions) as s:
            after = slices.get(s, str(result.slice_id))
            access_after = json.loads(after.access or "{}")
            result.check("the slice is active again", after.status is SliceStatus.ACTIVE)
        if access_before:
            result.check("the gateway accepts connections again",
                         bool(access_after) and not _refuses(access_after))  # fmt: skip
        return result
    finally:
        for stream in [*pingers, *(t for _, t in tickers.values())]:
            stream.stop()


def _circuit_ends(nodes: Sequence[NodePart]) -> dict[str, list[tuple[NodePart, str]]]:
    """Per circuit, its nodes with their addresses on it, in the plan's order."""
    out: dict[str, list[tuple[NodePart, str]]] = {}
    for part in nodes:
        for iface in part.spec.interfaces:
            if iface.address:
                out.setdefault(iface.circuit, []).append((part, iface.address.split("/")[0]))
    return {c: ends for c, ends in out.items() if len(ends) > 1}


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def drill_request(name: str, pops: Sequence[str], ssh_key: str) -> dict[str, Any]:
    """A small slice for a drill: two hosts at two PoPs (or one), one circuit."""
    a, b = (pops[0], pops[1]) if len(pops) > 1 else (pops[0], pops[0])
    return {
        "name": name,
        "description": "e-stop drill",
        "window": {"start": "now", "duration": "30m"},
        "nodes": [
            {"name": "d1", "kind": "host", "pop": a},
            {"name": "d2", "kind": "host", "pop": b},
        ],
        "circuits": [{"name": "dc", "endpoints": ["d1", "d2"], "bandwidth_mbps": 10}],
        "ssh_keys": [ssh_key],
    }
