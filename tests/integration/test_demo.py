"""`federica demo` as a real process: fresh data dir → migrated SQLite → core4 → API up."""

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

from tests.conftest import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_serves_the_substrate(tmp_path: Path) -> None:
    port = free_port()
    env = os.environ | {"FEDERICA_DATA_DIR": str(tmp_path / "var")}
    env.pop("FEDERICA_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "federica", "demo", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        body = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/v1/substrate", timeout=2
                ) as r:
                    body = json.load(r)
                break
            except OSError:
                time.sleep(0.2)
        if body is None:
            proc.kill()
            output = proc.communicate()[0]
            raise AssertionError(f"demo never answered; it printed:\n{output}")
        assert body["summary"]["pops"] == 4 and body["summary"]["core_full_mesh"]
        assert (tmp_path / "var" / "federica.db").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
