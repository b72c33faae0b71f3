"""GENI datastore answer time (issue 23): GET /data/ for 100 interfaces over an hour of
30 s samples (every rx/tx bps/pps/dps/eps series: 800 series of 120 points), through the
datastore's WSGI app with a collector token, against a baseline in the same run: the
operators' monitoring API answering the same rates (GET /api/v1/monitoring/devices/<d>/
interfaces for the four devices, 30 s steps).

Run: .venv/bin/python -m bench.gmoc [--trials 30] [--postgres URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import machine, median, p95, record, table
from federica import migrate
from federica.aaa import accounts, tokens
from federica.aaa.models import Role
from federica.app import create_app
from federica.clock import MovableClock
from federica.config import Settings
from federica.context import Context, make_context
from federica.db import transaction
from federica.federation import identity
from federica.gmoc import collectors, metrics
from federica.gmoc.objects import us
from federica.monitoring.poller import DeviceSample, Interface, Round
from federica.monitoring.rollup import floor
from federica.monitoring.service import Recorder
from federica.substrate.inventory import apply_topology
from federica.substrate.topology import parse_topology
from federica.web.gmoc import create_gmoc_app

DEVICES = 4
PORTS = 25  # per device: 100 interfaces
SAMPLES = 121  # an hour of 30 s polls (120 rates)
AUTHORITY = "bench.example"
TARGET_MS = 200


def topology() -> bytes:
    devices = [
        {
            "name": f"d{d}",
            "pop": "P",
            "kind": "switch",
            "driver": "fake",
            "management": {"host": "127.0.0.1", "port": 830},
            "ports": [
                {"name": f"xe-0/0/{p}", "speed_mbps": 10000, "kind": "internal"}
                for p in range(PORTS)
            ],
        }
        for d in range(DEVICES)
    ]
    doc = {
        "pops": [
            {"name": "P", "country": "CZ", "role": "core", "location": {"lat": 50, "lon": 14}}
        ],
        "devices": devices,
    }
    return json.dumps(doc).encode()


def fill(ctx: Context, start: dt.datetime) -> None:
    clock = ctx.clock
    assert isinstance(clock, MovableClock)
    rec = Recorder(ctx)
    for n in range(SAMPLES):
        at = start + dt.timedelta(seconds=30 * n)
        clock.set(at)
        samples = [
            DeviceSample(
                f"d{d}",
                at,
                100_000 + 3000 * n,
                [
                    Interface(
                        p + 1,
                        f"xe-0/0/{p}",
                        "",
                        {
                            "in_octets": (1000 + p) * 30 * n,
                            "out_octets": 2000 * 30 * n,
                            "in_ucast_pkts": 10 * 30 * n,
                            "out_ucast_pkts": 20 * 30 * n,
                            "in_errors": 0,
                            "out_errors": 0,
                            "in_discards": n,
                            "out_discards": 0,
                        },
                        1,
                        1,
                        10000,
                    )
                    for p in range(PORTS)
                ],
                False,
            )
            for d in range(DEVICES)
        ]
        rec.record(Round(n + 1, at, samples=samples))


def timed(fn: Any) -> tuple[float, float]:
    """Wall-clock and this process's CPU time of one call (ms). On a shared machine the
    CPU time is what the answer costs; the wall-clock time adds the wait for a core."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000


def run(database_url: str, label: str, trials: int, work: Path) -> list[list[object]]:
    now = floor(dt.datetime.now(dt.UTC), 3600)
    start = now - dt.timedelta(hours=1)
    settings = Settings(data_dir=work / label, database_url=database_url)
    ctx = make_context(settings, clock=MovableClock(start))
    migrate.upgrade(ctx.engine)
    with transaction(ctx.sessions) as s:
        apply_topology(s, parse_topology(topology()))
        secret = collectors.add(
            s, "bench", cert_name=None, token=True, project=None, users=False
        ).token
        noc = accounts.create_user(s, "noc", role=Role.OPERATOR)
        _, op_token = tokens.issue(
            s,
            noc,
            name="bench",
            scopes=tokens.parse_scopes(None, noc),
            lifetime=dt.timedelta(days=1),
            max_lifetime=dt.timedelta(days=1),
            now=dt.datetime.now(dt.UTC),
        )
    identity.init(settings.data_dir, "bench", AUTHORITY, hosts=["127.0.0.1"], now=start)
    fill(ctx, start)
    clock = ctx.clock
    assert isinstance(clock, MovableClock)
    clock.set(now + dt.timedelta(seconds=60))
    ids = [f"{AUTHORITY}_interface_d{d}:xe-0/0/{p}" for d in range(DEVICES) for p in range(PORTS)]
    q = json.dumps(
        {
            "filters": {
                "eventType": sorted(metrics.PREFIX + m.name for m in metrics.BY_TYPE["interface"]),
                "obj": {"type": "interface", "id": ids},
                "ts": {"gte": us(start), "lt": us(now)},
            }
        }
    )
    gmoc = create_gmoc_app(ctx).test_client()
    api = create_app(settings, context=ctx).test_client()
    bearer = {"Authorization": f"Bearer {secret}"}
    sizes: dict[str, int] = {}

    def datastore() -> None:
        # The answer time: until the whole body is there (its check below is not timed).
        r = gmoc.get("/data/", query_string={"q": q}, headers=bearer)
        assert r.status_code == 200, r.get_json()
        sizes["datastore"] = len(r.data)
        bodies.append(r.data)

    bodies: list[bytes] = []

    window = {"from": start.isoformat(), "to": now.isoformat(), "step": "30"}

    def baseline() -> None:
        total = 0
        for d in range(DEVICES):
            r = api.get(
                f"/api/v1/monitoring/devices/d{d}/interfaces",
                query_string=window,
                headers={"Authorization": f"Bearer {op_token}"},
            )
            assert r.status_code == 200, r.get_json()
            total += len(r.data)
        sizes["baseline"] = total

    datastore()  # warm-up (imports, caches)
    baseline()
    # Interleaved, so that a busy spell of the shared machine hits both alike.
    ours: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    for _ in range(trials):
        ours.append(timed(datastore))
        theirs.append(timed(baseline))
    ctx.engine.dispose()
    for raw in (bodies[0], bodies[-1]):
        body = json.loads(raw)
        assert len(body) == 800 and all(len(s["tsdata"]) == 120 for s in body), len(body)
        # The same values as fill() counted: port p received 1000 + p octets a second.
        rx = [x for x in body if x["id"].startswith("rx_bps:")]
        assert len(rx) == 100 and all(
            {pt["v"] for pt in x["tsdata"]} == {(1000 + int(x["id"].rsplit("/", 1)[1])) * 8}
            for x in rx
        ), "wrong rx_bps"

    def row(name: str, xs: list[tuple[float, float]], size: int, ratio: float) -> list[object]:
        wall, cpu = [w for w, _ in xs], [c for _, c in xs]
        return [label, name, f"{median(wall):.0f}", f"{p95(wall):.0f}", f"{median(cpu):.0f}",
                f"{p95(cpu):.0f}", f"{size / 1e6:.2f}", f"{ratio:.2f}"]  # fmt: skip

    ratio = median([c for _, c in ours]) / median([c for _, c in theirs])
    return [
        row("GMOC /data/ (100 interfaces x 8 metrics)", ours, sizes["datastore"], ratio),
        row("baseline: monitoring API, 4 devices", theirs, sizes["baseline"], 1.0),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--postgres", help="also on this PostgreSQL database URL (emptied)")
    parser.add_argument("--no-record", action="store_true", help="do not write docs/benchmarks.md")
    args = parser.parse_args()
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows += run(f"sqlite:///{work / 'bench.db'}", "SQLite", args.trials, work)
        if args.postgres:
            rows += run(args.postgres, "PostgreSQL", args.trials, work)
    headers = ["database", "request", "wall ms (p50)", "wall ms (p95)", "CPU ms (p50)",
               "CPU ms (p95)", "answer MB", "CPU p50 ratio"]  # fmt: skip
    out = table(headers, rows)
    print(out)
    if not args.no_record:
        body = (
            f"Run `.venv/bin/python -m bench.gmoc` (`--postgres URL` adds PostgreSQL). "
            f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the end (the "
            f"machine is shared). {args.trials} trials each, interleaved.\n\n{out}\n\n"
            f"Target (issue 23): p95 < {TARGET_MS} ms for the datastore."
        )
        record("GMOC datastore /data/ (issue 23)", body)


if __name__ == "__main__":
    main()
