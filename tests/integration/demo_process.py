"""`federica demo` as a real process on free ports (its facility's and its web server's),
with its own data directory; stopped with SIGTERM as an operator would."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from federica.substrate.inventory import topology_to_data
from federica.substrate.topology import parse_topology
from tests.conftest import EXAMPLES, REPO
from tests.integration.conftest import with_free_ports


def free_port(taken: set[int]) -> int:
    """A free port that is not one of `taken` (ports chosen but not bound yet)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in taken:
            return port


def get_json(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(url, headers=headers)  # noqa: S310  (loopback only)
    with urllib.request.urlopen(req, timeout=2) as r:  # noqa: S310
        return json.load(r)


def post_json(url: str, body: Any, token: str) -> Any:
    req = urllib.request.Request(  # noqa: S310  (loopback only)
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
        return json.load(r)


@dataclass
class Demo:
    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log: Path
    prefix: str  # its emulator's namespace prefix
    stopped_in_s: float | None = None  # from SIGTERM to its exit

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text()


@contextmanager
def running_demo(
    tmp_path: Path, prefix: str, up_within_s: float = 90, env: dict[str, str] | None = None
) -> Iterator[Demo]:
    topo = with_free_ports(parse_topology((EXAMPLES / "topologies" / "core4.yaml").read_bytes()))
    topo_file = tmp_path / "core4.yaml"
    topo_file.write_text(yaml.safe_dump(topology_to_data(topo)))
    port = free_port({d.management.port for d in topo.devices})
    prefix = f"{prefix}{os.getpid() % 100000}"
    extra = env or {}
    env = os.environ | {
        "FEDERICA_DATA_DIR": str(tmp_path / "var"),
        "FEDERICA_EMULATOR_PREFIX": prefix,
    }
    env.pop("FEDERICA_DATABASE_URL", None)
    env |= extra
    log = tmp_path / "demo.log"
    argv = [sys.executable, "-m", "federica", "demo", "--port", str(port)]
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*argv, "--topology", str(topo_file)], cwd=REPO, env=env, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    demo = Demo(proc, port, tmp_path / "var", log, prefix)
    try:
        deadline = time.monotonic() + up_within_s
        up = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                up = bool(get_json(f"{demo.url}/api/v1/openapi.json"))
                break
            except OSError:
                time.sleep(0.2)
        assert up, f"demo never answered:\n{demo.output()}"
        yield demo
    finally:
        stop_started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        demo.stopped_in_s = time.monotonic() - stop_started
