"""`federica demo --federation`: two facilities on one machine that trust each other.

A = `federica` (FEDERICA's core4), B = `jgn` (a JGN2plus-like Tokyo/Osaka/Sapporo
network), each a `federica demo` process of its own: its own data directory and SQLite
database, API and peer API ports, emulator prefix. Before they start, each gets its
federation identity and registers the other (integrated form, a guest quota of 10, the
border ports matched); once both are up (with their emulated facilities, as root), the
border devices (core4's psn-mx xe-2/0/0 and jgn's tyo-mx xe-2/0/0) are joined by an
emulated border link. Ctrl-C (or SIGTERM) stops both, which take their facilities down.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import click
import yaml

from federica.cli import CliState

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "topologies"
UP_WITHIN_S = 300
STOP_WITHIN_S = 60


@dataclass(frozen=True)
class Side:
    name: str
    topology: Path
    border_device: str
    border_port: str
    data_dir: Path
    prefix: str
    port: int
    federation_port: int

    @property
    def env(self) -> dict[str, str]:
        env = os.environ | {
            "FEDERICA_DATA_DIR": str(self.data_dir),
            "FEDERICA_EMULATOR_PREFIX": self.prefix,
        }
        env.pop("FEDERICA_DATABASE_URL", None)  # each its own SQLite database
        return env

    @property
    def border(self) -> str:
        return f"{self.border_device}:{self.border_port}"


def sides(root: Path, prefix: str, port: int) -> tuple[Side, Side]:
    # A's border port (to GTS in core4) faces B in the demo.
    core4 = facing(EXAMPLES / "core4.yaml", root / "federica" / "core4-jgn.yaml", "psn-mx",
                   "xe-2/0/0", "jgn")  # fmt: skip
    a = Side("federica", core4, "psn-mx", "xe-2/0/0", root / "federica",
             f"{prefix}a"[:12], port, port + 1)  # fmt: skip
    jgn = facing(EXAMPLES / "jgn2plus.yaml", root / "jgn" / "jgn2plus.yaml", "tyo-mx",
                 "xe-2/0/0", None)  # fmt: skip
    b = Side("jgn", jgn, "tyo-mx", "xe-2/0/0", root / "jgn",
             f"{prefix}b"[:12], port + 2, port + 3)  # fmt: skip
    return a, b


def _cli(side: Side, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "federica", *args], env=side.env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    if ok and done.returncode != 0:
        raise click.ClickException(f"{side.name}: federica {' '.join(args)}: {done.stderr}")
    return done


def _bindable(host: str, port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def _free_port(host: str) -> int:
    while True:
        with socket.socket() as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if _bindable(host, port):
            return port


def facing(topology: Path, out: Path, device: str, port: str, peer: str | None) -> Path:
    """A copy of the topology whose border port `device:port` faces `peer` (core4's
    faces GTS): circuits across the border look for the port facing the peer. If the
    file's management ports are taken (another emulator runs), free ones are used."""
    from federica.substrate.topology import load_yaml

    data = load_yaml(topology.read_bytes())
    if peer is not None:
        peers = data.setdefault("peers", [])
        if not any(p.get("name") == peer for p in peers):
            peers.append({"name": peer, "description": "the other demo facility (peer)"})
        for d in data["devices"]:
            for p in d.get("ports", []):
                if (d["name"], p["name"]) == (device, port):
                    p["peer"] = peer
    managed = [d["management"] for d in data["devices"] if "management" in d]
    if not all(_bindable(m["host"], int(m.get("port", 830))) for m in managed):
        for m in managed:
            m["port"] = _free_port(m["host"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def prepare(a: Side, b: Side, host: str) -> None:
    """Identities (kept across runs) and each registered at the other."""
    for side in (a, b):
        side.data_dir.mkdir(parents=True, exist_ok=True)
        if not (side.data_dir / "federation" / "facility.json").exists():
            _cli(side, "federation", "init", "--name", side.name, "--authority",
                 f"{side.name}.example", "--host", host)  # fmt: skip
    for here, there in ((a, b), (b, a)):
        url = f"https://{host}:{there.federation_port}"
        terms = ["--ca", str(there.data_dir / "federation" / "ca.pem"), "--form", "integrated",
                 "--guest-quota", "10", "--border", f"{here.border}={there.border}"]  # fmt: skip
        if _cli(here, "peer", "add", there.name, url, *terms, ok=False).returncode != 0:
            _cli(here, "peer", "update", there.name, "--url", url, *terms)


def _relay(stream: IO[bytes], tag: str) -> None:
    for line in iter(stream.readline, b""):
        click.echo(f"[{tag}] {line.decode(errors='replace').rstrip()}")


def start(side: Side, host: str, no_emulator: bool) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "federica", "demo", "--topology", str(side.topology),
            "--host", host, "--port", str(side.port),
            "--federation-port", str(side.federation_port)]  # fmt: skip
    if no_emulator:
        argv.append("--no-emulator")
    proc = subprocess.Popen(
        argv, env=side.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    assert proc.stdout is not None
    threading.Thread(target=_relay, args=(proc.stdout, side.name), daemon=True).start()
    return proc


def wait_up(side: Side, host: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + UP_WITHIN_S
    url = f"http://{host}:{side.port}/api/v1/openapi.json"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise click.ClickException(f"{side.name} stopped (exit {proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise click.ClickException(f"{side.name} did not answer within {UP_WITHIN_S} s")


def join_border(a: Side, b: Side) -> str:
    """The emulated border link: each border port is a veth whose far end lies unplugged
    in its own device's namespace; B's far end and A's (moved over, renamed) are bridged
    in B's border device's namespace, so a frame out of one border port enters the other.
    It goes when B's namespaces do."""
    from federica.substrate.emulator import iproute
    from federica.substrate.emulator.plan import namespace_name, plan_facility
    from federica.substrate.topology import parse_topology

    far = []
    for side in (a, b):
        plan = plan_facility(parse_topology(side.topology.read_bytes()), side.prefix)
        ifname = (
            next(d for d in plan.devices if d.name == side.border_device)
            .port(side.border_port)
            .ifname
        )
        ns = namespace_name(side.prefix, side.border_device)
        wire = next(w for w in plan.wires if w.a_ns == ns and w.a_if == ifname)
        far.append((ns, wire.b_if))
    (a_ns, a_far), (b_ns, b_far) = far
    iproute.ip("link", "set", "dev", a_far, "down", ns=a_ns)
    iproute.ip("link", "set", "dev", a_far, "name", "border-a", ns=a_ns)
    iproute.ip("link", "set", "dev", "border-a", "netns", b_ns, ns=a_ns)
    # No multicast snooping: the border ports' VXLAN devices send to a group (plan.py).
    iproute.ip("link", "add", "border", "type", "bridge", "mcast_snooping", "0", ns=b_ns)
    for dev in ("border-a", b_far):
        iproute.ip("link", "set", "dev", dev, "master", "border", ns=b_ns)
        iproute.ip("link", "set", "dev", dev, "up", ns=b_ns)
    iproute.ip("link", "set", "dev", "border", "up", ns=b_ns)
    for side in (a, b):
        enable_border_port(side)
    return f"{a.name} {a.border} <-> {b.name} {b.border} (bridge 'border' in {b_ns})"


def enable_border_port(side: Side) -> None:
    """A border port starts shut down (nothing plugged in); plugged in now, it is enabled
    on its device over NETCONF, as an operator would."""
    from federica.config import Settings
    from federica.context import make_context
    from federica.db import transaction
    from federica.substrate import devices
    from federica.substrate.drivers import registry
    from federica.substrate.drivers.base import Change

    context = make_context(Settings(data_dir=side.data_dir, emulator_prefix=side.prefix))
    try:
        with transaction(context.read_sessions) as s:
            (target,) = devices.targets(s, context.settings, [side.border_device])
        driver = registry.create(context.device_drivers, target)
        driver.open()
        try:
            running = driver.get_config("running")
            driver.lock()
            try:
                driver.discard()
                driver.load(Change(port_state=((side.border_port, True),)), base=running)
                driver.commit()
            finally:
                driver.unlock()
        finally:
            driver.close()
    finally:
        context.engine.dispose()


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(state: CliState, host: str, port: int, no_emulator: bool) -> None:
    root = state.settings.data_dir / "federation-demo"
    a, b = sides(root, state.settings.emulator_prefix, port)
    prepare(a, b, host)
    emulated = not no_emulator and os.geteuid() == 0
    procs: list[subprocess.Popen[bytes]] = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        for side in (a, b):
            procs.append(start(side, host, not emulated))
        for side, proc in zip((a, b), procs, strict=True):
            wait_up(side, host, proc)
        if emulated:
            click.echo(f"border link: {join_border(a, b)}")
        for side in (a, b):
            click.echo(
                f"facility {side.name}: API http://{host}:{side.port}/api/v1, peer API "
                f"https://{host}:{side.federation_port}/federation/v1, data {side.data_dir}"
            )
        click.echo(
            f"book at {b.name} from {a.name}: pin nodes to '{b.name}/TYO', '{b.name}/OSA' or "
            f"'{b.name}/SPR' (the demo account's token: {a.data_dir}/demo-token). Ctrl-C stops."
        )
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        click.echo("a facility stopped; stopping the other")
    except KeyboardInterrupt:
        pass
    finally:
        stop(procs)
