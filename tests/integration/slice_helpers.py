"""Helpers for end-to-end slice tests on the emulated facility: book over the real API,
run the real worker, look into nodes, measure what crosses a circuit, check residue."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from ncclient.operations.errors import TimeoutExpiredError

from federica.db import transaction
from federica.slices.models import Slice
from federica.substrate.drivers.compute.netns import veth_end
from federica.substrate.drivers.netconf.federica_l2 import parse_config
from federica.substrate.emulator import iproute
from tests.integration.conftest import Facility

API = "/api/v1"


def book(client: FlaskClient, request: dict[str, Any]) -> dict[str, Any]:
    r = client.post(f"{API}/slices", json=request)
    assert r.status_code == 201, r.get_json()
    body: dict[str, Any] = r.get_json()["slice"]
    return body


def show(client: FlaskClient, slice_id: int) -> dict[str, Any]:
    r = client.get(f"{API}/slices/{slice_id}")
    assert r.status_code == 200, r.get_json()
    body: dict[str, Any] = r.get_json()
    return body


def run_until(
    step: Callable[[], object], done: Callable[[], bool], timeout_s: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "timed out"
        step()
        time.sleep(0.05)


def node_namespace(fac: Facility, slice_body: dict[str, Any], node: str) -> str:
    n = next(n for n in slice_body["nodes"] if n["name"] == node)
    return f"{fac.host(n['v_node']).namespace}.s{slice_body['id']}-{node}"


def address_of(slice_body: dict[str, Any], node: str, circuit: str) -> str:
    n = next(n for n in slice_body["nodes"] if n["name"] == node)
    cidr: str = next(i["address"] for i in n["interfaces"] if i["circuit"] == circuit)
    return cidr.split("/")[0]


def pings(ns: str, address: str, count: int = 2) -> bool:
    proc = subprocess.run(
        ["ip", "netns", "exec", ns, "ping", "-c", str(count), "-i", "0.2", "-W", "1", address],
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


_SINK = """
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5201)); s.listen(1); print("ready", flush=True)
c, _ = s.accept(); total = 0; t0 = None
while True:
    b = c.recv(1 << 16)
    if not b: break
    if t0 is None: t0 = time.monotonic()
    total += len(b)
print(total * 8 / (time.monotonic() - t0) / 1e6)
"""
_SOURCE = """
import socket, sys, time
c = socket.create_connection((sys.argv[1], 5201)); buf = b"x" * (1 << 16)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end: c.sendall(buf)
c.close()
"""


def throughput_mbps(src_ns: str, dst_ns: str, dst_address: str, seconds: float = 2.0) -> float:
    """Mb/s that one TCP stream gets from src to dst (plain sockets, no extra tools)."""
    sink = subprocess.Popen(
        ["ip", "netns", "exec", dst_ns, sys.executable, "-c", _SINK, dst_address],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sink.stdout is not None
    assert sink.stdout.readline().strip() == "ready"
    subprocess.run(
        ["ip", "netns", "exec", src_ns, sys.executable, "-c", _SOURCE, dst_address, str(seconds)],
        check=True,
    )
    out, _ = sink.communicate(timeout=30)
    return float(out.strip())


def slice_residue(fac: Facility, body: dict[str, Any]) -> list[str]:
    """Everything of the slice still anywhere: namespaces, veth pairs, processes, gateway
    files, and configuration on every device (get-config)."""
    slice_id = body["id"]
    # Only this facility's namespaces: other facilities on the machine have slices too.
    mine = f"{fac.emulator.prefix}-"
    left = [ns for ns in iproute.namespaces() if ns.startswith(mine) and f".s{slice_id}-" in ns]
    runtime = fac.emulator.socket_dir / "nodes"
    ends = {
        veth_end(f"s{slice_id}-{n['name']}", f"eth{i}")
        for n in body["nodes"]
        for i in range(1, len(body["circuits"]) + 1)
    }
    for host in fac.plan.hosts:
        for link in iproute.links(host.namespace):
            if link["ifname"] in ends:
                left.append(f"veth {link['ifname']} in {host.namespace}")
        node_dir = runtime / host.name
        if node_dir.exists():
            left += [str(p) for p in node_dir.iterdir() if p.name.startswith(f"s{slice_id}-")]
    procs = subprocess.run(
        ["pgrep", "-a", "-f", f"{runtime}/[^/]+/s{slice_id}-"], capture_output=True, text=True
    )
    left += procs.stdout.splitlines()
    gw = fac.settings.gateway_dir / f"s{slice_id}"
    if gw.exists():
        left.append(f"gateway {gw}")
    for device in fac.plan.devices:
        m = fac.netconf(device.name)
        try:
            cfg = parse_config(m.get_config(source="running").data_ele)
        finally:
            # The configuration is read; a close-session answered late (netconfd busy on a
            # loaded machine) says nothing about residue.
            with contextlib.suppress(TimeoutExpiredError):
                m.close_session()
        left += [f"{device.name}: {s}" for s in cfg.segments if s.startswith(f"fed{slice_id}-")]
    return left


def status_in_db(fac: Facility, slice_id: int) -> str:
    with transaction(fac.context.read_sessions) as s:
        sl = s.get(Slice, slice_id)
        assert sl is not None
        return sl.status.value


def ssh(key: Path, port: int, *command: str, known_hosts: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "ssh",
            "-p",
            str(port),
            "-i",
            str(key),
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            f"UserKnownHostsFile={known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "root@127.0.0.1",
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def known_hosts_for(path: Path, port: int, gateway_dir: Path, slice_id: int) -> Path:
    """A known_hosts file with the gateway's real host key (verified, never trusted blind)."""
    pub = (gateway_dir / f"s{slice_id}" / "host_key.pub").read_text().split()
    path.write_text(f"[127.0.0.1]:{port} {pub[0]} {pub[1]}\n")
    return path
