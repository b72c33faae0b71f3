"""B2, slice instantiation on the emulated core4 facility (issue 7), OpenVIM's tables.

Stress: with N background virtual nodes running, book one more single-node slice and
take it to ACTIVE; scheduling = validate + embed + reserve, total = request -> ACTIVE
(node spawned, wired, verified). Batch: a chain of 5..10 nodes joined by circuits, so
the total includes one NETCONF transaction across the devices it crosses.

Everything is real: SQLite, the worker's provisioner, NETCONF to netconfd, namespaces.
The V-nodes are core4's with 64 cores each (8 are too few for 300 background nodes).

Run as root: .venv/bin/python -m bench.instantiate [--trials 30] [--chain-trials 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import machine, median, p95, record, table
from federica import migrate
from federica.config import Settings
from federica.context import Context, make_context
from federica.db import transaction
from federica.slices import runner, service
from federica.slices.lifecycle import SliceStatus
from federica.slices.models import Slice
from federica.substrate.emulator import iproute
from federica.substrate.emulator.facility import Emulator
from federica.substrate.emulator.plan import plan_facility
from federica.substrate.inventory import apply_topology, record_host_key
from federica.substrate.topology import Topology, parse_topology
from federica.worker import Worker
from tests.integration.conftest import with_free_ports

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
POPS = ("PRG", "ERL", "MIL", "PSN")
STRESS = (10, 20, 50, 100, 150, 200, 250, 300)
BATCH = (0, 10, 50, 100, 200)
# OpenVIM, tuned (REFERENCES.md): scheduling 4-8 ms, one VM 185-401 ms, chains 0.32-0.86 s.
OPENVIM = {"scheduling": "4-8", "total": "185-401", "chain": "320-860"}


def topology() -> Topology:
    topo = with_free_ports(parse_topology((EXAMPLES / "topologies" / "core4.yaml").read_bytes()))
    hosts = [h.model_copy(update={"cpu_cores": 64, "ram_mb": 262_144}) for h in topo.hosts]
    return topo.model_copy(update={"hosts": hosts})


class Bench:
    def __init__(self, root: Path) -> None:
        prefix = f"bi{os.getpid() % 10000}"
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
        state = self.emu.up(plan_facility(topo, prefix))
        with transaction(self.ctx.sessions) as s:
            for name, info in state.devices.items():
                record_host_key(s, name, info["fingerprint"])
        self.worker = Worker(self.ctx, name="bench")
        self.background: list[int] = []
        self.seq = 0
        self.settle_ms: list[float] = []
        self.probe_ns = f"{prefix}-prg-mx"
        self.prefix = prefix
        self.links_before: dict[int, dict[str, set[str]]] = {}  # slice id -> before it
        # Untimed warm-up: the first NETCONF sessions (SSH handshakes) and imports.
        sid, _, _ = self.instantiate(request("warmup", 4, "host", chain=True))
        self.release(sid)

    def close(self) -> None:
        self.worker.stop()
        self.emu.down()
        self.ctx.engine.dispose()

    def _name(self, stem: str) -> str:
        self.seq += 1
        return f"{stem}{self.seq}"

    def instantiate(self, req: dict[str, Any]) -> tuple[int, float, dict[str, Any]]:
        """Book and take to ACTIVE; returns (slice id, total ms, timings)."""
        before = self.links()
        t0 = time.perf_counter()
        booked = service.book_with_retry(
            self.ctx.sessions, self.settings, req, now=lambda: dt.datetime.now(dt.UTC)
        )
        assert booked.slice is not None
        sid = booked.slice.id
        while self.worker.run_once() == 0:
            pass
        total = (time.perf_counter() - t0) * 1000
        with transaction(self.ctx.read_sessions) as s:
            sl = s.get(Slice, sid)
            assert sl is not None
            assert sl.status is SliceStatus.ACTIVE, (sl.status, sl.failure_reason)
            timings = service.describe(sl)["timings_ms"]
        self.links_before[sid] = before
        return sid, total, timings

    def release(self, sid: int) -> None:
        with transaction(self.ctx.sessions) as s:
            sl = s.get(Slice, sid)
            assert sl is not None
            runner.request_release(s, sl, dt.datetime.now(dt.UTC))
        while self.worker.run_once() == 0:
            pass
        self.settle_ms.append(self.settle(self.links_before.pop(sid)))

    def settle(self, before: dict[str, set[str]]) -> float:
        """Wait until the kernel has finished the teardown that the release started, so
        that no trial pays for the previous one's. The release returns before it is
        over: the device agents remove the circuits' bridges after the commit (deleting a
        bridge waits for an RCU barrier while holding the RTNL lock that every link
        change needs), and the kernel frees deleted namespaces later still. So: wait
        until the devices' and V-nodes' links are back to what they were before the
        slice (`before`), then until three no-op link changes in a row (they take the RTNL lock; a
        link dump does not) answer within 5 ms. Returns the wait (ms)."""
        t0 = time.perf_counter()
        while self.links() != before and time.perf_counter() - t0 < 10:
            time.sleep(0.01)
        quick = 0
        while quick < 3 and time.perf_counter() - t0 < 10:
            t = time.perf_counter()
            iproute.ip("link", "set", "dev", "lo", "up", ns=self.probe_ns)
            quick = quick + 1 if time.perf_counter() - t < 0.005 else 0
            time.sleep(0.02)
        return (time.perf_counter() - t0) * 1000

    def links(self) -> dict[str, set[str]]:
        """The links of every device and V-node namespace (not the nodes' own)."""
        spaces = [n for n in iproute.namespaces() if n.startswith(self.prefix + "-")]
        return {
            ns: {link["ifname"] for link in iproute.links(ns)} for ns in spaces if "." not in ns
        }

    def set_background(self, nodes: int) -> None:
        """Exactly `nodes` background host nodes running, in slices of 10 or fewer."""
        while self.background and 10 * len(self.background) > nodes:
            self.release(self.background.pop())
        have = 10 * len(self.background)
        while have < nodes:
            n = min(10, nodes - have)
            req = request(self._name("bg"), n, "host", chain=False)
            sid, _, _ = self.instantiate(req)
            self.background.append(sid)
            have += n


# What the tables call a node: (kind, image); None is the kind's default image.
VARIANTS = {
    "host": ("host", None),
    "router": ("router", "frr"),
    "router (bird)": ("router", "bird"),
}


def request(name: str, nodes: int, variant: str, *, chain: bool) -> dict[str, Any]:
    kind, image = VARIANTS[variant]
    return {
        "name": name,
        "window": {"start": "now", "duration": "1d"},
        "nodes": [
            {"name": f"n{i}", "kind": kind, "vcpu": 1, "ram_mb": 128, "pop": POPS[i % 4]}
            | ({"image": image} if image else {})
            for i in range(nodes)
        ],
        "circuits": [
            {"name": f"c{i}", "endpoints": [f"n{i}", f"n{i + 1}"], "bandwidth_mbps": 10}
            for i in range(nodes - 1)
        ]
        if chain
        else [],
    }


def phases(timings: Sequence[dict[str, Any]]) -> str:
    keys = [("booking", k) for k in ("validate", "embed", "reserve")]
    keys += [("provisioning", k) for k in ("netconf", "spawn", "verify")]
    return " / ".join(f"{median([t[p].get(k, 0.0) for t in timings]):.1f}" for p, k in keys)


def stress(b: Bench, trials: int, kinds: Sequence[str]) -> list[list[object]]:
    rows: list[list[object]] = []
    for bg in STRESS:
        b.set_background(bg)
        for kind in kinds:
            sched, total, timings = [], [], []
            for _ in range(trials):
                sid, ms, t = b.instantiate(request(b._name("one"), 1, kind, chain=False))
                sched.append(sum(t["booking"].values()))
                total.append(ms)
                timings.append(t)
                b.release(sid)
            rows.append(
                [
                    bg,
                    kind,
                    f"{median(sched):.2f}",
                    f"{p95(sched):.2f}",
                    f"{median(total):.0f}",
                    f"{p95(total):.0f}",
                    phases(timings),
                ]
            )
            print(rows[-1], flush=True)
    return rows


def batch(b: Bench, trials: int, sizes: Sequence[int], kind: str) -> list[list[object]]:
    rows: list[list[object]] = []
    for bg in BATCH:
        b.set_background(bg)
        for n in sizes:
            totals, timings = [], []
            for _ in range(trials):
                sid, ms, t = b.instantiate(request(b._name("chain"), n, kind, chain=True))
                totals.append(ms)
                timings.append(t)
                b.release(sid)
            rows.append(
                [bg, n, kind, f"{median(totals):.0f}", f"{p95(totals):.0f}", phases(timings)]
            )
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--chain-trials", type=int, default=5)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    # A stopped run (SIGTERM) still takes its facility down: namespaces, daemons, cgroups.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory() as tmp:
        b = Bench(Path(tmp))
        try:
            chains = batch(b, args.chain_trials, range(5, 11), "host")
            chains += batch_routers(b, args.chain_trials)  # at 200 background nodes
            one = stress(b, args.trials, tuple(VARIANTS))
        finally:
            b.close()
    phase_head = "phases p50 ms: validate / embed / reserve / netconf / spawn / verify"
    t1 = table(
        [
            "background nodes",
            "node",
            "scheduling p50 ms",
            "scheduling p95 ms",
            "total p50 ms",
            "total p95 ms",
            phase_head,
        ],
        one,
    )
    t2 = table(
        ["background nodes", "chain of", "node", "total p50 ms", "total p95 ms", phase_head],
        chains,
    )
    print(t1, "\n\n", t2, sep="")
    if args.no_record:
        return
    s10 = next(float(str(r[2])) for r in one if r[0] == 10 and r[1] == "host")
    sched = [float(str(r[2])) for r in one]
    host_total = [float(str(r[4])) for r in one if r[1] == "host"]
    router_total = [float(str(r[4])) for r in one if r[1] == "router"]
    bird_total = [float(str(r[4])) for r in one if r[1] == "router (bird)"]
    chain10 = next(float(str(r[3])) for r in chains if r[:3] == [200, 10, "host"])
    frr_chain = next(float(str(r[3])) for r in chains if r[:3] == [200, 10, "router"])
    s300 = next(float(str(r[2])) for r in one if r[0] == 300 and r[1] == "host")
    record(
        "Slice instantiation, B2 (issue 7)",
        f"Run as root: `.venv/bin/python -m bench.instantiate`. Machine: {machine()}. "
        "All real: SQLite, the worker's provisioner, NETCONF to the emulated devices, "
        "namespaces with FRR (image `frr`, the default) or BIRD 2 (image `bird`) for "
        "routers. No gateway (no SSH keys in these requests). "
        "After each release the bench waits, untimed, until the kernel has finished "
        "the teardown (it goes on after the release returns: the devices' and V-nodes' "
        "links back to what they were before the slice, and the RTNL lock free; p50 wait "
        f"{median(b.settle_ms):.0f} ms, p95 {p95(b.settle_ms):.0f} ms), so no trial pays "
        "for the previous one's teardown.\n\n"
        f"**Stress**: one more single-node slice with N background nodes running "
        f"({args.trials} trials per row). OpenVIM tuned, same table: scheduling "
        f"{OPENVIM['scheduling']} ms, total {OPENVIM['total']} ms for one VM.\n\n{t1}\n\n"
        f"Scheduling flatness, 300 / 10 background nodes (host): {s300 / s10:.2f} "
        "(target < 1.5).\n\n"
        f"**Batch**: a chain of N nodes joined by N-1 circuits ({args.chain_trials} trials "
        f"per row). OpenVIM: chains {OPENVIM['chain']} ms.\n\n{t2}\n\n"
        "`netconf` and `spawn` overlap (the nodes start while the devices commit); on "
        "these 2 cores each slows the other, alone a 4-device transaction takes ~45 ms. "
        + (
            "Some host or BIRD rows show a p95 (or p50) of 450 ms or more: in those trials "
            "a spawn waited on the kernel (the spawn column). "
            if any(float(str(r[4])) > 450 for r in chains if r[2] != "router")
            else ""
        )
        + f"A chain of 10 FRR routers starts 50 daemons on these 2 cores ({frr_chain:.0f} "
        "ms).\n\n"
        + "What a slice pays when it starts while another is being torn down (this bench "
        "waits for the teardown, see above; an earlier version did not, and some chains "
        "then took 500-750 ms): deleting a Linux bridge waits for an RCU barrier while "
        "holding the RTNL lock, and every link change waits for that lock. A released "
        "chain of 10 has dozens of bridges to delete on the devices and V-nodes, about "
        "1 s of kernel work here, during which a new slice's veths and VXLANs wait.\n\n"
        + "Where a router's spawn goes: ~6 ms as for a host node (namespace, veths), then "
        "its daemons. Their starting shell enters the node's cgroups (v1 here) by moving "
        "its own thread (`tasks`), which skips the kernel's global threadgroup lock; moving "
        "it through `cgroup.procs` waited for an RCU grace period, 6-14 ms per boot, "
        "which was most of a BIRD router's spawn before November 2026. BIRD starts in "
        "~5 ms. FRR's five daemons need 50-60 ms of their own on these 2 cores (measured "
        "outside federica: bgpd alone ~30 ms, most of it building its command tree), so an "
        "FRR router cannot be ACTIVE within 50 ms unless it is started before it is asked "
        "for.\n\n"
        "**Against the targets**: scheduling p50 < 3 ms: "
        f"{verdict(max(sched) < 3)} ({min(sched):.1f}-{max(sched):.1f} ms); flat "
        f"(300/10 < 1.5): {verdict(s300 / s10 < 1.5)}. Single-node total p50 < 50 ms: "
        f"host nodes {verdict(max(host_total) < 50)} ({min(host_total):.0f}-"
        f"{max(host_total):.0f} ms), BIRD routers {verdict(max(bird_total) < 50)} "
        f"({min(bird_total):.0f}-{max(bird_total):.0f} ms), FRR routers "
        f"{verdict(max(router_total) < 50)} ({min(router_total):.0f}-{max(router_total):.0f}"
        " ms: FRR's own start-up, see above). Chain of 10 at 200 background nodes < 250 ms: "
        f"{verdict(chain10 < 250)} ({chain10:.0f} ms, host nodes).\n",
    )


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def batch_routers(b: Bench, trials: int) -> list[list[object]]:
    b.set_background(200)
    rows: list[list[object]] = []
    for variant in ("router", "router (bird)"):
        totals, timings = [], []
        for _ in range(trials):
            sid, ms, t = b.instantiate(request(b._name("rchain"), 10, variant, chain=True))
            totals.append(ms)
            timings.append(t)
            b.release(sid)
        rows.append(
            [200, 10, variant, f"{median(totals):.0f}", f"{p95(totals):.0f}", phases(timings)]
        )
        print(rows[-1], flush=True)
    return rows


if __name__ == "__main__":
    main()
