"""Where request -> ACTIVE goes for one 2-node slice inside one facility (the B7 baseline):
PRG + PSN at federica joined by a circuit, on `federica demo --federation` (the same
controller, emulated facility and in-process worker as bench/interdomain.py).

Each phase comes from what the controller recorded, on this machine's one clock: the
client's POST, the slice's history (booked; provisioning = a worker claimed the start
event and began), the provisioner's own timings (netconf = the NETCONF transaction
across the devices, spawn = the nodes' namespaces booted, overlapping netconf; verify),
its history's active, and when the client saw it (GET polled every 20 ms).

Run as root: .venv/bin/python -m bench.provision_breakdown [--trials 8]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import machine, median, p95, table
from bench.interdomain import REPO, UP_WITHIN_S, call, free_base

PHASES = (
    ("POST -> booked (its clock reading)", "post", "scheduled"),
    ("booked -> worker began (wait + claim)", "scheduled", "provisioning"),
    ("worker began -> active (provisioning)", "provisioning", "active"),
    ("active -> client saw it", "active", "seen"),
    ("total request -> seen active", "post", "seen"),
)


def trial(port: int, token: str, name: str) -> dict[str, float]:
    doc = {
        "name": name,
        "window": {"start": "now", "duration": "1h"},
        "nodes": [{"name": "home", "pop": "PRG"}, {"name": "far", "pop": "PSN"}],
        "circuits": [{"name": "x", "endpoints": ["home", "far"], "bandwidth_mbps": 10}],
    }
    at: dict[str, float] = {"post": time.time()}
    status, body = call(port, "/api/v1/slices", token, doc)
    if status != 201:
        raise SystemExit(f"{name}: {status} {body}")
    sid = body["slice"]["id"]
    while True:
        _s, sl = call(port, f"/api/v1/slices/{sid}", token)
        if sl["status"] in ("active", "failed"):
            at["seen"] = time.time()
            break
        time.sleep(0.02)
    if sl["status"] != "active":
        raise SystemExit(f"{name}: {sl['status']}: {sl.get('failure_reason')}")
    for h in sl["history"]:
        at.setdefault(h["status"], dt.datetime.fromisoformat(h["at"]).timestamp())
    out = {label: (at[b] - at[a]) * 1000 for label, a, b in PHASES}
    if name == "p0":
        print("timings_ms of one slice:", sl["timings_ms"], flush=True)
    prov = sl["timings_ms"].get("provisioning", {})
    for k in ("netconf", "spawn", "define home", "boot home", "define far", "boot far", "verify"):
        if k in prov:
            out[f"  of which {k} (provisioner)"] = float(prov[k])
    call(port, f"/api/v1/slices/{sid}/release", token, {})
    while call(port, f"/api/v1/slices/{sid}", token)[1]["status"] != "ended":
        time.sleep(0.2)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=8)
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("run as root (the emulated facilities)")
    root = Path(tempfile.mkdtemp(prefix="bench-breakdown-"))
    base = free_base()
    env = os.environ | {"FEDERICA_DATA_DIR": str(root / "var"),
                        "FEDERICA_EMULATOR_PREFIX": f"p{secrets.token_hex(2)}"}  # fmt: skip
    env.pop("FEDERICA_DATABASE_URL", None)
    log = root / "demo.log"
    argv_demo = [sys.executable, "-m", "federica", "demo", "--federation", "--port", str(base)]
    with open(log, "w") as sink:
        proc = subprocess.Popen(argv_demo, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT)
    rows: dict[str, list[float]] = {}
    try:
        deadline = time.monotonic() + UP_WITHIN_S
        while "book at jgn" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(log.read_text()[-4000:])
            time.sleep(0.5)
        token = (root / "var" / "federation-demo" / "federica" / "demo-token").read_text().strip()
        load = []
        for i in range(args.trials):
            for label, ms in trial(base, token, f"p{i}").items():
                rows.setdefault(label, []).append(ms)
            load.append(os.getloadavg()[0])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    print(f"{machine()}; {args.trials} trials; load average (1 min) during the run "
          f"{min(load):.1f}-{max(load):.1f}")  # fmt: skip
    print(table(["phase", "p50 ms", "p95 ms"],
                [[k, f"{median(v):.0f}", f"{p95(v):.0f}"] for k, v in rows.items()]))  # fmt: skip


if __name__ == "__main__":
    main()
