"""A circuit across the border on two emulated facilities (`federica demo --federation`,
as root): a 2-node slice, one node at federica's PRG, one at jgn's TYO, joined by a
circuit stitched at the border (federica's psn-mx:xe-2/0/0, jgn's tyo-mx:xe-2/0/0); both
workers build their parts over NETCONF; the slice is ACTIVE once both are; a ping from
one node's namespace reaches the other across the emulated border link; released,
nothing is left on any device of either facility, nor any node namespace."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from federica.substrate.topology import parse_topology
from tests.conftest import REPO
from tests.integration.federation.test_demo_federation import four_free_ports

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="the emulated facilities need root"),
]
UP_WITHIN_S = 600
ACTIVE_WITHIN_S = 600
GONE_WITHIN_S = 300


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


def until(what: str, within: float, check: Any) -> Any:
    deadline = time.monotonic() + within
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what}: not within {within} s"
        time.sleep(1)


def namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def test_a_slice_across_the_border_runs_pings_and_leaves_nothing(tmp_path: Path) -> None:
    base = four_free_ports()
    prefix = f"i{secrets.token_hex(3)}"
    data = tmp_path / "var"
    env = os.environ | {"FEDERICA_DATA_DIR": str(data), "FEDERICA_EMULATOR_PREFIX": prefix}
    env.pop("FEDERICA_DATABASE_URL", None)
    log = tmp_path / "demo.log"
    argv = [sys.executable, "-m", "federica", "demo", "--federation", "--port", str(base)]
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    sides = {"federica": (f"{prefix}a", data / "federation-demo" / "federica"),
             "jgn": (f"{prefix}b", data / "federation-demo" / "jgn")}  # fmt: skip
    try:

        def up() -> bool:
            assert proc.poll() is None, log.read_text()
            return "book at jgn" in log.read_text()

        until("both facilities up", UP_WITHIN_S, up)
        assert "border link:" in log.read_text()
        token = (sides["federica"][1] / "demo-token").read_text().strip()
        doc = {
            "name": "across",
            "window": {"start": "now", "duration": "1h"},
            "nodes": [{"name": "home", "pop": "PRG"}, {"name": "tokyo", "pop": "jgn/TYO"}],
            "circuits": [{"name": "x", "endpoints": ["home", "tokyo"], "bandwidth_mbps": 10}],
        }
        status, body = call(base, "/api/v1/slices", token, doc)
        assert status == 201, body
        sid = body["slice"]["id"]
        (part,) = body["remote"]
        (stitch,) = part["stitching"]
        tag = stitch["vlan"]

        def settled() -> dict[str, Any] | None:
            _s, sl = call(base, f"/api/v1/slices/{sid}", token)
            return sl if sl["status"] in ("active", "failed") else None

        sl = until("the slice settles", ACTIVE_WITHIN_S, settled)
        assert sl["status"] == "active", (sl.get("failure_reason"), sl["history"])
        status, remote = call(base, f"/api/v1/slices/{sid}/remote", token)
        assert status == 200, remote
        (there,) = remote["remote"]
        assert there["slice"]["status"] == "active"
        assert [s["state"] for s in there["stitching"]] == ["ready"]

        # Ping across the border, from inside the node namespaces.
        home = next(n for n in sl["nodes"] if n["name"] == "home")
        tokyo = next(n for n in there["slice"]["nodes"] if n["name"] == "tokyo")
        a_ns = f"{sides['federica'][0]}-{home['v_node']}.s{sid}-home"
        b_ns = f"{sides['jgn'][0]}-{tokyo['v_node']}.s{there['slice']['id']}-tokyo"
        assert {a_ns, b_ns} <= set(namespaces())
        far = f"10.{200 + tag // 256}.{tag % 256}.2"
        ping = subprocess.run(["ip", "netns", "exec", a_ns, "ping", "-c", "3", "-W", "5", far],
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert ping.returncode == 0, ping.stdout + ping.stderr

        # Released: nothing left at either facility.
        status, released = call(base, f"/api/v1/slices/{sid}/release", token, {})
        assert status == 202, released  # running: a worker takes it down
        assert [p["state"] for p in released["remote"]] == ["aborted"]

        def ended() -> bool:
            _s, a = call(base, f"/api/v1/slices/{sid}", token)
            return a["status"] == "ended" and not any(
                ns.endswith((f".s{sid}-home", f".s{there['slice']['id']}-tokyo"))
                for ns in namespaces()
            )

        until("both parts gone", GONE_WITHIN_S, ended)
        for name, topology in (("federica", "core4.yaml"), ("jgn", "jgn2plus.yaml")):
            pfx, ddir = sides[name]
            topo = parse_topology((REPO / "examples" / "topologies" / topology).read_bytes())
            for device in topo.devices:
                cenv = os.environ | {"FEDERICA_DATA_DIR": str(ddir),
                                     "FEDERICA_EMULATOR_PREFIX": pfx}  # fmt: skip
                cenv.pop("FEDERICA_DATABASE_URL", None)

                def clean(device: str = device.name, cenv: dict[str, str] = cenv) -> bool:
                    got = subprocess.run(
                        [sys.executable, "-m", "federica", "device", "config", device],
                        cwd=REPO, env=cenv, capture_output=True, text=True, check=False,
                    )  # fmt: skip
                    assert got.returncode == 0, got.stderr
                    return "attachment" not in got.stdout and "cross-connect" not in got.stdout

                until(f"{name} {device.name} clean", GONE_WITHIN_S, clean)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert not [ns for ns in namespaces() if ns.startswith((f"{prefix}a-", f"{prefix}b-"))]
