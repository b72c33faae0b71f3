"""B7, a slice across the border (issue 25): request -> ACTIVE for a 2-node slice with one
node at federica's PRG and one at jgn's TYO joined by a circuit stitched at the border,
against the same 2-node slice inside one facility (PRG and PSN at federica), in the same
run, alternating.

Everything is real: `federica demo --federation` (two controller processes, mutual TLS,
two emulated facilities with NETCONF devices and namespaces, the emulated border link).
The clock runs from sending POST /api/v1/slices (window start "now") until
GET /api/v1/slices/{id} says active (polled every 20 ms); each slice is then released and
gone before the next. Targets (issue 25): inter-domain <= 2x single-facility and < 500 ms
p50.

Run as root: .venv/bin/python -m bench.interdomain [--trials 5]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import machine, median, p95, record, table

REPO = Path(__file__).resolve().parent.parent
UP_WITHIN_S = 900
ACTIVE_WITHIN_S = 600


def call(port: int, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as r:  # noqa: S310
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def free_base() -> int:
    from tests.integration.federation.test_demo_federation import four_free_ports

    return four_free_ports()


def one(port: int, token: str, name: str, far: str) -> tuple[float, str]:
    """Request -> ACTIVE in ms (and the status it settled in), then released and gone."""
    doc = {
        "name": name,
        "window": {"start": "now", "duration": "1h"},
        "nodes": [{"name": "home", "pop": "PRG"}, {"name": "far", "pop": far}],
        "circuits": [{"name": "x", "endpoints": ["home", "far"], "bandwidth_mbps": 10}],
    }
    t0 = time.perf_counter()
    status, body = call(port, "/api/v1/slices", token, doc)
    if status != 201:
        raise SystemExit(f"{name}: {status} {body}")
    sid = body["slice"]["id"]
    deadline = time.monotonic() + ACTIVE_WITHIN_S
    while True:
        _s, sl = call(port, f"/api/v1/slices/{sid}", token)
        if sl["status"] in ("active", "failed"):
            ms = (time.perf_counter() - t0) * 1000
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"{name}: not active within {ACTIVE_WITHIN_S} s")
        time.sleep(0.02)
    call(port, f"/api/v1/slices/{sid}/release", token, {})
    deadline = time.monotonic() + ACTIVE_WITHIN_S
    while call(port, f"/api/v1/slices/{sid}", token)[1]["status"] != "ended":
        if time.monotonic() > deadline:
            raise SystemExit(f"{name}: not ended within {ACTIVE_WITHIN_S} s")
        time.sleep(0.2)
    return ms, str(sl["status"])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("run as root (the emulated facilities)")
    root = Path(tempfile.mkdtemp(prefix="bench-interdomain-"))
    base = free_base()
    env = os.environ | {"FEDERICA_DATA_DIR": str(root / "var"),
                        "FEDERICA_EMULATOR_PREFIX": f"b{secrets.token_hex(2)}"}  # fmt: skip
    env.pop("FEDERICA_DATABASE_URL", None)
    log = root / "demo.log"
    argv_demo = [sys.executable, "-m", "federica", "demo", "--federation", "--port", str(base)]
    with open(log, "w") as sink:
        proc = subprocess.Popen(argv_demo, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT)
    times: dict[str, list[float]] = {
        "inter-domain (PRG + jgn/TYO)": [],
        "one facility (PRG + PSN)": [],
    }
    failed: list[str] = []
    try:
        deadline = time.monotonic() + UP_WITHIN_S
        while "book at jgn" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(log.read_text()[-4000:])
            time.sleep(0.5)
        token = (root / "var" / "federation-demo" / "federica" / "demo-token").read_text().strip()
        for i in range(args.trials):
            for label, far in (("inter-domain (PRG + jgn/TYO)", "jgn/TYO"),
                               ("one facility (PRG + PSN)", "PSN")):  # fmt: skip
                ms, status = one(base, token, f"b{i}-{far.replace('/', '-').lower()}", far)
                if status != "active":
                    failed.append(f"{label} trial {i}: {status}")
                times[label].append(ms)
                print(f"{label:<30} trial {i}: {ms:8.1f} ms ({status})", flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    single = median(times["one facility (PRG + PSN)"])
    rows = [
        [label, len(xs), f"{median(xs):.0f}", f"{p95(xs):.0f}", f"{median(xs) / single:.2f}"]
        for label, xs in times.items()
    ]
    out = table(["slice", "trials", "p50 ms", "p95 ms", "x one facility"], rows)
    inter = median(times["inter-domain (PRG + jgn/TYO)"])
    verdict = (
        f"Targets: inter-domain <= 2x one facility ({inter / single:.2f}x: "
        f"{'met' if inter <= 2 * single else 'NOT met'}) and < 500 ms p50 "
        f"({inter:.0f} ms: {'met' if inter < 500 else 'NOT met'})."
    )
    print(out)
    print(verdict)
    if failed:
        print("not active:", "; ".join(failed))
    if not args.no_record:
        body = (
            f"{machine()}; `python -m bench.interdomain --trials {args.trials}`, request -> "
            "ACTIVE (window start now) on `federica demo --federation` (two controllers, "
            "two emulated facilities, mutual TLS), alternating the two slices in one run.\n\n"
            f"{out}\n\n{verdict}\n" + (f"\nNot active: {'; '.join(failed)}\n" if failed else "")
        )
        record("B7 — A slice across the border (bench/interdomain.py, issue 25)", body)


if __name__ == "__main__":
    main()
