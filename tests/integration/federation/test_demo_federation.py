"""`federica demo --federation` as an operator runs it (here without the emulated
facilities): two facilities come up trusting each other, the demo account at `federica`
books nodes at `jgn`, and SIGTERM stops both."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.integration.demo_process import get_json

pytestmark = [pytest.mark.integration]
UP_WITHIN_S = 240


def four_free_ports() -> int:
    """A base port such that it and the three after it are free now."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        if base > 65000:
            continue
        try:
            for offset in range(1, 4):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        return base
    raise AssertionError("no four consecutive free ports")


def test_two_demo_facilities_book_at_each_other(tmp_path: Path) -> None:
    base = four_free_ports()
    env = os.environ | {"FEDERICA_DATA_DIR": str(tmp_path / "var")}
    env.pop("FEDERICA_DATABASE_URL", None)
    log = tmp_path / "demo.log"
    argv = [sys.executable, "-m", "federica", "demo", "--federation", "--no-emulator",
            "--port", str(base)]  # fmt: skip
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + UP_WITHIN_S
        while "book at jgn from federica" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        home = tmp_path / "var" / "federation-demo" / "federica"
        token = (home / "demo-token").read_text().strip()
        ad = get_json(f"http://127.0.0.1:{base + 2}/api/v1/openapi.json")
        assert "/federation/v1/bookings" in ad["paths"]
        doc = {
            "name": "jp", "window": {"start": "now", "duration": "1h"},
            "nodes": [{"name": "h", "pop": "PSN"}, {"name": "t", "pop": "jgn/TYO"}],
        }  # fmt: skip
        req = urllib.request.Request(
            f"http://127.0.0.1:{base}/api/v1/slices", data=json.dumps(doc).encode(),
            method="POST", headers={"Authorization": f"Bearer {token}",
                                    "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=120) as r:  # noqa: S310
            body = json.load(r)
        (part,) = body["remote"]
        assert (part["peer"], part["state"]) == ("jgn", "committed")
        assert part["user"] == "urn:publicid:IDN+federica.example+user+demo"
        assert [n["pop"] for n in part["slice"]["nodes"]] == ["TYO"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert log.read_text().count("stopped in") == 2, log.read_text()
