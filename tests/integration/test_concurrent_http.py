"""50 concurrent, conflicting bookings over HTTP against two real `federica serve`
processes sharing one database (SQLite and PostgreSQL): exactly the feasible ones get
201, every other one a 409 problem document saying why, no 5xx, and the independent SQL
audit finds no double-booked tag and no capacity exceeded."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from federica.config import Settings
from federica.context import Context
from tests.accounts import make_user
from tests.conftest import EXAMPLES, REPO
from tests.helpers import load_file
from tests.service.slices.audit import violations

pytestmark = pytest.mark.integration
CLIENTS, FEASIBLE = 50, 8  # PRG: two V-nodes of 8 cores; each request pins 2 vCPU there


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(name: str, start: dt.datetime) -> dict[str, Any]:
    return {
        "name": name,
        "window": {"start": start.isoformat(), "duration": "2h"},
        "nodes": [{"name": "a", "pop": "PRG", "vcpu": 2}, {"name": "b", "pop": "MIL"}],
        "circuits": [{"name": "c", "endpoints": ["a", "b"], "bandwidth_mbps": 100}],
    }


def post(url: str, body: dict[str, Any], token: str) -> tuple[int, str, dict[str, Any]]:
    req = urllib.request.Request(  # noqa: S310  (loopback only)
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:  # noqa: S310
            return r.status, r.headers["Content-Type"], json.load(r)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], json.load(exc)


def wait_up(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120  # generous: the machine may be busy starting it
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            url = f"http://127.0.0.1:{port}/api/v1/openapi.json"
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"server on {port} did not answer: {log.read_text()}")


def test_fifty_concurrent_bookings_over_http(
    db: Context, settings: Settings, tmp_path: Path
) -> None:
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    # Researchers of one project, each with a token: the bookings go through the policy.
    tokens = [make_user(db, f"r{i}", projects=["lab"]) for i in range(5)]
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).replace(
        minute=0, second=0, microsecond=0
    )
    env = os.environ | {
        "FEDERICA_DATABASE_URL": settings.database_url,
        "FEDERICA_DATA_DIR": str(settings.data_dir),
    }
    ports = [free_port(), free_port()]
    servers = []
    for port in ports:
        log = tmp_path / f"serve-{port}.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "federica", "serve", "--port", str(port)],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        servers.append((proc, log))
    try:
        for port, (proc, log) in zip(ports, servers, strict=True):
            wait_up(port, proc, log)

        def client(i: int) -> tuple[int, str, dict[str, Any]]:
            url = f"http://127.0.0.1:{ports[i % 2]}/api/v1/slices"
            return post(url, request(f"h{i}", start), tokens[i % len(tokens)])

        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            results = list(pool.map(client, range(CLIENTS)))
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait(timeout=10)

    codes = sorted(code for code, _, _ in results)
    assert all(code < 500 for code in codes), results
    assert codes.count(201) == FEASIBLE, codes
    assert codes.count(409) == CLIENTS - FEASIBLE, codes
    refusals = [body for code, ctype, body in results if code == 409]
    assert all(ctype == "application/problem+json" for code, ctype, _ in results if code == 409)
    assert all("PRG" in body["detail"] for body in refusals), refusals[0]
    assert violations(db.engine) == {
        "double-booked tags": 0,
        "cpu over capacity": 0,
        "link over capacity": 0,
        "port over capacity": 0,
    }
