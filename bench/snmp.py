"""B5 — SNMP polling (../shared/design/BENCHMARKS.md).

K net-snmp agents on loopback, each serving a static IF-MIB table of N interfaces from
memory (see bench/snmp_agents.py for why this kind of agent): K x N interfaces to poll.
Each poller polls sysUpTime and the columns federica polls (HC octets and unicast packets
in and out, errors and discards in and out, admin and oper status, ifHighSpeed) of every
interface, in a process of its own:

  * federica's poller (federica/monitoring/poller.py) with each SNMP backend it has, all
    devices at once, GETBULK; the first round (which also reads ifName/ifAlias) untimed;
  * net-snmp's `snmpbulkwalk` (C), one process per agent and column (it walks one subtree),
    4 at a time, at the agents' largest answer (-Cr100), no MIB files loaded;
  * a naive pysnmp loop, one GET per OID, one after the other (on a subset: it is slow).

CPU is the measured process's own user + system time (snmpbulkwalk: its children's), not
wall time and not the agents': their CPU is shown beside it, for scale. Rounds are
repeated, and the whole set of pollers runs `--runs` times, interleaved.
Run: .venv/bin/python -m bench.snmp [--agents 20 --interfaces 500 --rounds 3 --runs 2] [--sweep]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import snmp_agents
from bench.common import machine, median, record, table

REPO = Path(__file__).resolve().parent.parent
SYS_UPTIME = "1.3.6.1.2.1.1.3"
TARGET_INTERFACES = 10_000
TARGET_INTERVAL_S = 30.0
TARGET_RATIO = 3.0
# One round of one poller: interfaces, wall_s, cpu_s, complete, warm (untimed).
Row = dict[str, Any]


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _columns() -> list[str]:
    from federica.monitoring.poller import COUNTERS, STATES

    return [*COUNTERS.values(), *STATES.values()]


# -- the pollers, each run inside the namespace by `worker` ------------------------------------


def poll_federica(
    ports: list[int], rounds: int, expect: int, backend: str, knobs: dict[str, int]
) -> list[Row]:
    """`knobs`: c = devices at once (the poller's concurrency), pdu = values asked per
    GETBULK (the poller's MAX_VALUES_PER_PDU; the agents answer at most 100)."""
    from federica.monitoring import poller as poller_module
    from federica.monitoring.poller import Poller, Target, V2c

    if "pdu" in knobs:
        poller_module.MAX_VALUES_PER_PDU = knobs["pdu"]

    targets = [
        Target(f"agent{p}", "127.0.0.1", p, V2c(snmp_agents.COMMUNITY), timeout_s=20.0, retries=1)
        for p in ports
    ]

    def now() -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    async def main() -> list[Row]:
        poller = Poller(
            lambda: targets,
            lambda _r: None,
            clock=now,
            backend=backend,
            concurrency=knobs.get("c", 200),
        )
        out = []
        try:
            for n in range(rounds + 1):
                cpu0, t0 = _cpu_self(), time.perf_counter()
                rnd = await poller.poll_round()
                wall, cpu = time.perf_counter() - t0, _cpu_self() - cpu0
                got = sum(len(s.interfaces) for s in rnd.samples)
                complete = not rnd.failures and got == expect * len(ports)
                out.append({"warm": n == 0, "interfaces": got, "wall_s": wall, "cpu_s": cpu})
                out[-1]["complete"] = complete
        finally:
            poller.close()
        return out

    return asyncio.run(main())


def poll_bulkwalk(ports: list[int], rounds: int, expect: int) -> list[Row]:
    columns = [SYS_UPTIME, *_columns()]

    def walk(port: int, oid: str) -> int:
        argv = ["snmpbulkwalk", "-v2c", "-c", snmp_agents.COMMUNITY, "-m", "", "-Cr100"]
        argv += ["-On", "-OQ", "-t", "10", "-r", "1", f"127.0.0.1:{port}", oid]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        return sum(1 for line in out.splitlines() if line.startswith(f".{oid}."))

    out = []
    with ThreadPoolExecutor(4) as pool:
        for n in range(rounds + 1):
            cpu0, t0 = _cpu_children(), time.perf_counter()
            counts = list(
                pool.map(lambda job: walk(*job), [(p, c) for p in ports for c in columns])
            )
            wall, cpu = time.perf_counter() - t0, _cpu_children() - cpu0
            per_agent = len(columns)
            rows = [counts[i : i + per_agent] for i in range(0, len(counts), per_agent)]
            complete = all(r[0] == 1 and all(c == expect for c in r[1:]) for r in rows)
            got = sum(min(r[1:]) for r in rows)
            out.append(
                {
                    "warm": n == 0,
                    "interfaces": got,
                    "wall_s": wall,
                    "cpu_s": cpu,
                    "complete": complete,
                }
            )
    return out


def poll_naive(ports: list[int], interfaces: int, expect: int) -> list[Row]:
    """One GET per OID, one request after another: how a first script would do it."""
    from pysnmp.hlapi.v3arch.asyncio import (
        CommunityData,
        ContextData,
        ObjectIdentity,
        ObjectType,
        SnmpEngine,
        UdpTransportTarget,
        get_cmd,
    )

    columns = _columns()
    indexes = list(range(1, expect + 1))  # the agents' rows (a naive script knows them)
    per_agent = max(1, min(len(indexes), interfaces // len(ports) or 1))

    async def main() -> list[Row]:
        engine = SnmpEngine()
        community = CommunityData(snmp_agents.COMMUNITY, mpModel=1)  # noqa: S508
        got = ok = 0
        cpu0, t0 = _cpu_self(), time.perf_counter()
        for port in ports:
            if got >= interfaces:
                break
            transport = await UdpTransportTarget.create(("127.0.0.1", port), timeout=10, retries=1)

            async def get(oid: str, transport: UdpTransportTarget = transport) -> bool:
                err, status, _i, binds = await get_cmd(
                    engine, community, transport, ContextData(), ObjectType(ObjectIdentity(oid))
                )
                return not err and not status and len(binds) == 1

            ok += await get(f"{SYS_UPTIME}.0")
            for i in indexes[:per_agent]:
                for col in columns:
                    ok += await get(f"{col}.{i}")
                got += 1
        wall, cpu = time.perf_counter() - t0, _cpu_self() - cpu0
        engine.close_dispatcher()
        asked = got * len(columns) + len({*ports[: (got + per_agent - 1) // per_agent]})
        return [
            {
                "warm": False,
                "interfaces": got,
                "wall_s": wall,
                "cpu_s": cpu,
                "complete": ok == asked,
            }
        ]

    return asyncio.run(main())


def decode_floor(ports: list[int], rounds: int, expect: int) -> list[Row]:
    """What any pysnmp-based poller pays at least: pyasn1 decoding the agents' answers.

    The same multi-column GETBULK walk as the poller's, on a plain UDP socket (untimed);
    then only `decoder.decode` of each answer into pysnmp's v2c Message, timed. No MIB
    work, no engine, no request encoding, no varbind handling."""
    import socket

    from pyasn1.codec.ber import decoder, encoder
    from pysnmp.proto import api

    v2c = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    columns = _columns()

    def request(oids: list[str], rid: int) -> bytes:
        pdu = v2c.GetBulkRequestPDU()
        v2c.apiBulkPDU.set_defaults(pdu)
        v2c.apiBulkPDU.set_request_id(pdu, rid)
        v2c.apiBulkPDU.set_non_repeaters(pdu, 0)
        v2c.apiBulkPDU.set_max_repetitions(pdu, max(1, 100 // len(oids)))
        v2c.apiBulkPDU.set_varbinds(pdu, [(v2c.ObjectIdentifier(o), v2c.null) for o in oids])
        msg = v2c.Message()
        v2c.apiMessage.set_defaults(msg)
        v2c.apiMessage.set_community(msg, snmp_agents.COMMUNITY)
        v2c.apiMessage.set_pdu(msg, pdu)
        return bytes(encoder.encode(msg))

    answers: list[bytes] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(10)
        rid = 0
        for port in ports:
            cursor = {c: c for c in columns}
            while cursor:
                rid += 1
                sock.sendto(request(list(cursor.values()), rid), ("127.0.0.1", port))
                data = sock.recv(65535)
                answers.append(data)
                msg, _ = decoder.decode(data, asn1Spec=v2c.Message())
                binds = v2c.apiBulkPDU.get_varbinds(v2c.apiMessage.get_pdu(msg))
                names = list(cursor)
                for n, (oid, _value) in enumerate(binds):
                    col = names[n % len(names)]
                    if col in cursor and str(oid).startswith(col + "."):
                        cursor[col] = str(oid)
                    else:
                        cursor.pop(col, None)
    out = []
    for n in range(rounds + 1):
        cpu0, t0 = _cpu_self(), time.perf_counter()
        for data in answers:
            decoder.decode(data, asn1Spec=v2c.Message())
        wall, cpu = time.perf_counter() - t0, _cpu_self() - cpu0
        got = expect * len(ports)
        out.append(
            {"warm": n == 0, "interfaces": got, "wall_s": wall, "cpu_s": cpu, "complete": True}
        )
    return out


def worker(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("kind")
    ap.add_argument("--ports", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--expect", type=int, required=True)
    ap.add_argument("--naive-interfaces", type=int, default=200)
    args = ap.parse_args(argv)
    ports = [int(p) for p in args.ports.split(",")]
    if args.kind.startswith("federica-"):
        # "federica-pysnmp+c20+pdu100": backend, then knobs
        backend, *knob_args = args.kind.split("-", 1)[1].split("+")
        knobs = {
            k.rstrip("0123456789"): int(k.lstrip("abcdefghijklmnopqrstuvwxyz")) for k in knob_args
        }
        result = poll_federica(ports, args.rounds, args.expect, backend, knobs)
    elif args.kind == "pyasn1-decode":
        result = decode_floor(ports, args.rounds, args.expect)
    elif args.kind == "snmpbulkwalk":
        result = poll_bulkwalk(ports, args.rounds, args.expect)
    elif args.kind == "naive":
        result = poll_naive(ports, args.naive_interfaces, args.expect)
    else:
        raise SystemExit(f"unknown poller {args.kind!r}")
    print(json.dumps(result))


# -- the run ----------------------------------------------------------------------------------


@dataclass
class Measured:
    kind: str
    run: int
    rounds: list[Row]
    agents_cpu_s: float

    @property
    def timed(self) -> list[Row]:
        return [r for r in self.rounds if not r["warm"]]

    def cpu_per_1000(self) -> list[float]:
        return [1000 * r["cpu_s"] / r["interfaces"] for r in self.timed]

    def per_s(self) -> list[float]:
        return [r["interfaces"] / r["wall_s"] for r in self.timed]

    def agents_per_1000(self) -> float:
        return 1000 * self.agents_cpu_s / float(sum(r["interfaces"] for r in self.rounds))


MAIN = ["federica-pysnmp", "federica-gufo", "snmpbulkwalk", "naive"]
SWEEP = [
    "federica-pysnmp",
    "federica-pysnmp+c1",
    "federica-pysnmp+c20",
    "federica-pysnmp+pdu100",
    "federica-pysnmp+pdu24",
    "pyasn1-decode",
    "snmpbulkwalk",
]
LABELS = {
    "federica-pysnmp": "federica poller, pysnmp 7 (default)",
    "federica-gufo": "federica poller, gufo-snmp",
    "snmpbulkwalk": "net-snmp snmpbulkwalk (C, baseline)",
    "naive": "naive pysnmp loop, one GET per OID",
    "pyasn1-decode": "pysnmp floor: only pyasn1 decoding the answers",
    "federica-pysnmp+c1": "federica poller, pysnmp, 1 device at a time",
    "federica-pysnmp+c20": "federica poller, pysnmp, 20 devices at a time",
    "federica-pysnmp+pdu100": "federica poller, pysnmp, 100 values per request",
    "federica-pysnmp+pdu24": "federica poller, pysnmp, 24 values per request",
}


def measure(agents: snmp_agents.Agents, kind: str, run: int, args: argparse.Namespace) -> Measured:
    argv = [sys.executable, "-m", "bench.snmp", "worker", kind]
    argv += ["--ports", ",".join(map(str, agents.ports)), "--rounds", str(args.rounds)]
    argv += ["--expect", str(agents.interfaces_per_agent)]
    argv += ["--naive-interfaces", str(args.naive_interfaces)]
    before = agents.cpu_s()
    out = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        preexec_fn=snmp_agents.die_with_parent,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{out.stderr[-3000:]}")
    m = Measured(
        kind, run, json.loads(out.stdout.strip().splitlines()[-1]), agents.cpu_s() - before
    )
    print(
        f"run {run} {kind}: "
        + ", ".join(
            f"{r['interfaces']} ifs {r['wall_s']:.2f} s wall {r['cpu_s']:.2f} s CPU"
            for r in m.rounds
        ),
        flush=True,
    )
    return m


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--interfaces", type=int, default=500, help="per agent")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per poller and run")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--naive-interfaces", type=int, default=200)
    ap.add_argument("--pollers", default=",".join(MAIN))
    ap.add_argument(
        "--sweep",
        action="store_true",
        help="pysnmp's ceiling instead: the poller's knobs and the decoding floor",
    )
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    kinds = SWEEP if args.sweep else args.pollers.split(",")
    results: list[Measured] = []
    with snmp_agents.running(args.agents, args.interfaces) as agents:
        total = len(agents.ports) * agents.interfaces_per_agent
        print(
            f"{len(agents.ports)} agents x {agents.interfaces_per_agent} interfaces = {total}"
            f" (in {agents.root})",
            flush=True,
        )
        for run in range(1, args.runs + 1):
            for kind in kinds:
                results.append(measure(agents, kind, run, args))
    report(results, args, len(agents.ports), agents.interfaces_per_agent)


def report(
    results: list[Measured], args: argparse.Namespace, n_agents: int, per_agent: int
) -> None:
    base = {
        m.run: median(m.cpu_per_1000()) for m in results if m.kind == "snmpbulkwalk" and m.timed
    }
    rows = []
    for m in results:
        cpu = median(m.cpu_per_1000())
        walls = [r["wall_s"] for r in m.timed]
        ratio = f"{cpu / base[m.run]:.1f}x" if m.run in base else "-"
        rows.append(
            [
                LABELS.get(m.kind, m.kind),
                m.run,
                f"{m.timed[0]['interfaces']:,} x {len(m.timed)}",
                "yes" if all(r["complete"] for r in m.rounds) else "NO",
                f"{median(walls):.2f} s",
                f"{median(m.per_s()):,.0f}",
                f"{cpu:.3f} s",
                ratio,
                f"{cpu * TARGET_INTERFACES / 1000:.1f} s",
                f"{m.agents_per_1000():.3f} s",
            ]
        )
    t = table(
        [
            "poller",
            "run",
            "interfaces x rounds",
            "complete",
            "round wall (median)",
            "interfaces/s",
            "CPU per 1,000 interfaces (median)",
            "CPU vs snmpbulkwalk",
            "CPU for 10,000 interfaces",
            "agents' CPU per 1,000 (not counted)",
        ],
        rows,
    )
    verdicts = []
    for kind in ("federica-pysnmp", "federica-gufo"):
        ms = [m for m in results if m.kind == kind]
        if not ms or not base:
            continue
        cpu_10k = median([c * TARGET_INTERFACES / 1000 for m in ms for c in m.cpu_per_1000()])
        wall_10k = median(
            [r["wall_s"] * TARGET_INTERFACES / r["interfaces"] for m in ms for r in m.timed]
        )
        cpu_ratio = median([median(m.cpu_per_1000()) / base[m.run] for m in ms if m.run in base])
        fits = cpu_10k <= TARGET_INTERVAL_S and wall_10k <= TARGET_INTERVAL_S
        verdicts.append(
            [
                LABELS[kind],
                f"{cpu_10k:.1f} s CPU, {wall_10k:.1f} s wall",
                "met" if fits else "NOT met",
                f"{cpu_ratio:.2f}x",
                "met" if cpu_ratio <= TARGET_RATIO else "NOT met",
            ]
        )
    v = table(
        [
            "poller (all runs)",
            "10,000 interfaces take (median, scaled)",
            "in 30 s on <= 1 core",
            "CPU per interface vs snmpbulkwalk",
            "within 3x",
        ],
        verdicts,
    )
    print(t, v, sep="\n\n")
    if args.no_record:
        return
    how = (
        f"Run `.venv/bin/python -m bench.snmp{' --sweep' if args.sweep else ''}` "
        f"({n_agents} agents x {per_agent} interfaces = {n_agents * per_agent:,}, "
        f"{args.rounds} timed rounds per poller after an untimed first one, {args.runs} "
        f"runs interleaved). Machine: {machine()}, shared with other work: CPU time is "
        "the measure, wall time is indicative."
    )
    if args.sweep:
        record("B5 — pysnmp's ceiling (issue 20)", f"{how}\n\n{t}\n\n{SWEEP_NOTES}")
    else:
        record("B5 — SNMP polling (issue 20)", f"{how}\n\n{t}\n\n{v}\n\n{MAIN_NOTES}")


MAIN_NOTES = """\
What each row is:
* Agents: net-snmp 5.9 snmpd on loopback ports, each a device with a static IF-MIB table
  in memory (snmpd.conf `override`; bench/snmp_agents.py says why not snmpd's kernel
  IF-MIB, pass_persist or snmpsim; the HC columns are Counter32 there, override has no
  Counter64). They answer at most 100 values per GETBULK (snmpd's default
  maxGetbulkResponses). Their CPU is in the last column, not counted against any poller.
* federica poller: `Poller.poll_round` as `federica monitor` runs it (v2c, all devices
  at once up to 200, one multi-column GETBULK walk per device with sysUpTime in its first
  request), in a process of its own; CPU = that process's user + system time per round.
  The first round, which also reads ifName/ifAlias, is not timed.
* snmpbulkwalk: one process per agent and column (it walks one subtree), 4 at a time,
  `-Cr100 -m ''` (no MIB files); CPU = the children's user + system time, process start
  included (that is what running the C tool costs).
* naive loop: pysnmp hlapi `get_cmd` with one OID per request, one after the other, on a
  subset (it is ~100x slower); scaled per interface like the others.

CPU per interface is the stable figure on this shared 2-core machine; wall time moves
with whatever else runs. "10,000 interfaces take" scales each round to 10,000."""

SWEEP_NOTES = """\
Where pysnmp's time goes (cProfile of the poller, 4 rounds of 1,002 interfaces): ~70 %
in pyasn1's BER decoder (`decoder.py __call__`/`valueDecoder`, object construction and
`clone`), ~12 % in hlapi resolving the request OIDs against the MIB view (even with
lookupMib=False, `make_varbinds` resolves every ObjectIdentity), ~7 % encoding requests,
the poller's own code ~5 %. The knobs change little: devices at once (c) and values per
request (pdu) move the number of requests, not the per-value decoding, and the agents
answer at most 100 values anyway. The floor row decodes the same answers with pyasn1
and does nothing else: no poller built on pysnmp can cost less than that, and that alone
is several times snmpbulkwalk's CPU. Hence the gufo-snmp backend (Rust BER) for large
facilities, with pysnmp the default where it suffices."""


if __name__ == "__main__":
    main()
