"""`netns` compute driver: virtual nodes on the emulated facility's V-nodes.

A node is a network namespace `<V-node namespace>.<node id>`. Each of its interfaces is a
veth pair: `ethN` inside the node, the other end on a bridge in the V-node's namespace;
the bridge also holds the VXLAN device that is "VLAN v on the uplink" (see
emulator/plan.py), or, for a circuit kept inside the V-node, only the nodes' ends. A
router node runs a routing suite from Debian, un-configured, with its sockets and config in
the node's own directory, so a researcher can configure their own BGP as in FEDERICA:
image `frr` (FRR's zebra, staticd, bgpd, ospfd, ospf6d; `vtysh`) or `bird` (BIRD 2, one
daemon that starts in ~5 ms where FRR's five take 50-60 ms; `birdc`). CPU, RAM and
process limits come from cgroups (cgroups.py).

A namespace is not a virtual machine: the node shares the V-node's kernel and filesystem.
It is the emulator's stand-in for a VM, with its own interfaces, routes and daemons.

Every step is written to the node's directory before it is done (spec first), so
`destroy` after a crash at any point removes exactly what was made.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from federica.config import Settings
from federica.substrate.drivers.compute.base import (
    ComputeError,
    InterfaceSpec,
    InterfaceState,
    NodeSpec,
    NodeState,
    NodeUsage,
)
from federica.substrate.drivers.compute.cgroups import Cgroups
from federica.substrate.emulator import iproute
from federica.substrate.emulator.plan import HostPlan, vxlan_add

FRR_DIR = Path("/usr/lib/frr")
VTYSH = shutil.which("vtysh") or "/usr/bin/vtysh"
BIRD = Path("/usr/sbin/bird")
BIRDC = Path("/usr/sbin/birdc")
# What each image runs (daemon names: their pid files and process names).
IMAGES: dict[str, tuple[str, ...]] = {
    "frr": ("zebra", "staticd", "bgpd", "ospfd", "ospf6d"),  # BGP, OSPF, static routes
    "bird": ("bird",),  # BIRD 2: BGP, OSPF, RIP, BFD, static routes in one daemon
    "debian": (),
}
NEEDS = {"frr": (FRR_DIR / "zebra", "FRR"), "bird": (BIRD, "BIRD 2 (Debian package bird2)")}
# A router forwards: set as its daemons start, by the shell that starts them (a process of
# its own for this would cost a router ~6 ms of its boot).
FORWARDING = (
    "echo 1 > /proc/sys/net/ipv4/ip_forward && echo 1 > /proc/sys/net/ipv6/conf/all/forwarding && "
)
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _short(prefix: str, key: str) -> str:
    """An interface name of at most 15 characters, stable for `key`."""
    return prefix + hashlib.sha1(key.encode()).hexdigest()[: 15 - len(prefix) - 1]  # noqa: S324


def bridge_name(iface: InterfaceSpec) -> str:
    # A tag is exclusive on the uplink while booked, so one bridge per tag; a circuit
    # inside the V-node gets a bridge of its own, named after its slice-unique segment.
    return f"bv{iface.vlan}" if iface.vlan else _short("bi", iface.segment or iface.circuit)


def veth_end(node_id: str, ifname: str) -> str:
    """The V-node side of a node's interface."""
    return _short("n", f"{node_id}/{ifname}")


def namespace_of(host: HostPlan, node_id: str) -> str:
    return f"{host.namespace}.{node_id}"


class NetnsCompute:
    def __init__(self, host: HostPlan, runtime_dir: Path, cgroups: Cgroups) -> None:
        self.host = host.name
        self.plan = host
        # Into FRR's and BIRD's argv and configs: absolute, whatever the caller passed.
        self.dir = Path(os.path.abspath(runtime_dir)) / "nodes" / host.name
        self.cgroups = cgroups

    # -- files -----------------------------------------------------------------------
    def _node_dir(self, node_id: str) -> Path:
        return self.dir / node_id

    def _spec(self, node_id: str) -> NodeSpec | None:
        try:
            data = json.loads((self._node_dir(node_id) / "spec.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        data["interfaces"] = tuple(InterfaceSpec(**i) for i in data["interfaces"])
        data["ssh_keys"] = tuple(data["ssh_keys"])
        return NodeSpec(**data)

    @contextlib.contextmanager
    def _locked(self, node_id: str) -> Iterator[None]:
        """One change at a time per V-node, across threads and processes."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fh = open(self.dir / ".lock", "w")  # noqa: SIM115  (held for the block)
        except OSError as exc:
            raise self._fail(node_id, f"cannot use the V-node's node directory: {exc}") from exc
        with fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def _fail(self, node_id: str, reason: str) -> ComputeError:
        return ComputeError(self.host, node_id, reason)

    # -- contract --------------------------------------------------------------------
    def define(self, spec: NodeSpec) -> None:
        if spec.image not in IMAGES:
            raise self._fail(
                spec.id,
                f"image {spec.image!r} is not available on netns V-nodes "
                f"(available: {', '.join(sorted(IMAGES))})",
            )
        if spec.image in NEEDS and not NEEDS[spec.image][0].exists():
            raise self._fail(
                spec.id, f"image {spec.image!r} needs {NEEDS[spec.image][1]}, not installed here"
            )
        with self._locked(spec.id):
            if not _netns_exists(self.plan.namespace):
                raise self._fail(spec.id, f"V-node namespace {self.plan.namespace} is missing")
            have = self._spec(spec.id)
            if have is not None:
                if have == spec:
                    return
                raise self._fail(spec.id, "a different node with this id is defined")
            d = self._node_dir(spec.id)
            if d.exists() or _netns_exists(namespace_of(self.plan, spec.id)):
                raise self._fail(spec.id, "left over from an earlier attempt; destroy it first")
            try:
                d.mkdir(parents=True)
                tmp = d / "spec.json.tmp"
                tmp.write_text(json.dumps(asdict(spec)))
                tmp.rename(d / "spec.json")  # a crash leaves no half-written spec
            except OSError as exc:
                raise self._fail(
                    spec.id, f"cannot prepare the node's directory {d}: {exc}"
                ) from exc
            try:
                limits = self.cgroups.create(spec.id, spec.vcpu, spec.ram_mb)
                (d / "limits").write_text(limits)
                self._make_namespace(spec)
            except (OSError, iproute.IprouteError) as exc:
                raise self._fail(spec.id, f"cannot create the node: {exc}") from exc

    def _make_namespace(self, spec: NodeSpec) -> None:
        ns, host_ns = namespace_of(self.plan, spec.id), self.plan.namespace
        iproute.ip("netns", "add", ns)
        existing = {link["ifname"] for link in iproute.links(host_ns)}
        outer: list[str] = []
        inner: list[str] = ["link set dev lo up"]
        u = self.plan.underlay
        for iface in spec.interfaces:
            br = bridge_name(iface)
            if br not in existing:
                outer += [f"link add name {br} type bridge", f"link set dev {br} up"]
                existing.add(br)
            if iface.vlan:
                vx = f"{self.plan.ifname}.{iface.vlan}"
                if vx not in existing:
                    outer.append(vxlan_add(vx, iface.vlan, u, self.plan.ifname))
                    existing.add(vx)
                outer += [f"link set dev {vx} master {br}", f"link set dev {vx} up"]
            end = veth_end(spec.id, iface.name)
            outer += [
                f"link add name {end} mtu 1500 type veth peer name {iface.name} netns {ns}",
                f"link set dev {end} master {br}",
                f"link set dev {end} up",
            ]
            if iface.address:
                inner.append(f"address add {iface.address} dev {iface.name}")
            inner.append(f"link set dev {iface.name} up")
        iproute.ip_batch(outer, ns=host_ns)
        iproute.ip_batch(inner, ns=ns)

    def boot(self, node_id: str) -> None:
        spec = self._spec(node_id)
        if spec is None:
            raise self._fail(node_id, "no such node")
        d = self._node_dir(node_id)
        daemons = IMAGES[spec.image]
        if daemons:
            if spec.image == "bird":
                self._write_bird_files(spec, d)
                commands = [[str(BIRD), *self._bird_args(d)]]
            else:
                self._write_frr_files(spec, d)
                commands = [[str(FRR_DIR / dm), *self._frr_args(d, dm)] for dm in daemons]
            # Each daemon forks once it is ready and its parent exits: waiting for the
            # parents is waiting for the daemons to be up.
            procs = [
                subprocess.Popen(
                    self._in_node(node_id, *argv, setup=FORWARDING),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                )
                for argv in commands
            ]
            failed = []
            for daemon, proc in zip(daemons, procs, strict=True):
                out, _ = proc.communicate(timeout=30)
                if proc.returncode != 0:
                    failed.append(f"{daemon}: {out.decode(errors='replace').strip()[-300:]}")
            if not failed:
                failed = self._await_pid_files(d, daemons)
            if failed:
                self.cgroups.kill(node_id)
                raise self._fail(node_id, "routing daemons did not start: " + "; ".join(failed))
        (d / "stopped").unlink(missing_ok=True)
        (d / "booted").write_text("")

    def _write_frr_files(self, spec: NodeSpec, d: Path) -> None:
        (d / "frr.conf").write_text(
            f"hostname {spec.name}\nlog file {d / 'frr.log'}\nservice integrated-vtysh-config\n!\n"
        )
        (d / "vtysh.conf").write_text("service integrated-vtysh-config\n")
        bin_dir = d / "bin"
        bin_dir.mkdir(exist_ok=True)
        wrapper = bin_dir / "vtysh"
        wrapper.write_text(f'#!/bin/sh\nexec {VTYSH} --vty_socket {d} --config_dir {d} "$@"\n')
        wrapper.chmod(0o755)
        with contextlib.suppress(KeyError, OSError):  # FRR drops to its own user
            shutil.chown(d, "frr", "frr")
            for f in ("frr.conf", "vtysh.conf"):
                shutil.chown(d / f, "frr", "frr")

    @staticmethod
    def _await_pid_files(d: Path, daemons: tuple[str, ...], timeout_s: float = 5.0) -> list[str]:
        """A daemon's parent may exit before the forked daemon has written its pid (BIRD
        does: its control socket already listens, the pid comes just after the fork).
        Returns the daemons not running by the deadline."""
        deadline = time.monotonic() + timeout_s
        waiting = list(daemons)
        while waiting:
            waiting = [dm for dm in waiting if not _pid_alive(d / f"{dm}.pid", dm)]
            if waiting and time.monotonic() > deadline:
                return [f"{dm}: no running process after {timeout_s:.0f} s" for dm in waiting]
            if waiting:
                time.sleep(0.0005)
        return []

    def _write_bird_files(self, spec: NodeSpec, d: Path) -> None:
        (d / "bird.conf").write_text(
            f"# {spec.name}: BIRD 2, un-configured. Edit, then `birdc configure`.\n"
            f'log "{d / "bird.log"}" all;\n'
            f"router id {_router_id(spec)};\n"
            "protocol device {\n}\n"
        )
        bin_dir = d / "bin"
        bin_dir.mkdir(exist_ok=True)
        for tool in ("birdc", "birdcl"):
            wrapper = bin_dir / tool
            wrapper.write_text(f'#!/bin/sh\nexec {BIRDC.parent / tool} -s {d / "bird.ctl"} "$@"\n')
            wrapper.chmod(0o755)

    @staticmethod
    def _bird_args(d: Path) -> list[str]:
        return ["-c", str(d / "bird.conf"), "-s", str(d / "bird.ctl"), "-P", str(d / "bird.pid")]

    @staticmethod
    def _frr_args(d: Path, daemon: str) -> list[str]:
        return [
            "-d",
            "-f", str(d / "frr.conf"),
            "-i", str(d / f"{daemon}.pid"),
            "-z", str(d / "zserv.api"),
            "--vty_socket", str(d),
            "-P", "0",  # no TCP vty: vtysh over the node's own sockets only
        ]  # fmt: skip

    def _in_node(self, node_id: str, *argv: str, setup: str = "") -> list[str]:
        """argv run inside the node: in its cgroup, its namespace, with its PATH; after
        `setup` (shell ending in `&&` or `;`), run in the node too."""
        ns = namespace_of(self.plan, node_id)
        path = f"{self._node_dir(node_id) / 'bin'}:{PATH}"
        inner = f"sh -c '{setup}exec \"$@\"' {node_id} " if setup else ""
        return [
            "sh",
            "-c",
            self.cgroups.enter_script(node_id)
            + f'export PATH={path} HOME=/root; exec ip netns exec {ns} {inner}"$@"',
            node_id,
            *argv,
        ]

    def stop(self, node_id: str) -> None:
        if self._spec(node_id) is None:
            raise self._fail(node_id, "no such node")
        self._kill(node_id)
        d = self._node_dir(node_id)
        (d / "booted").unlink(missing_ok=True)
        (d / "stopped").write_text("")

    def _kill(self, node_id: str) -> None:
        self.cgroups.kill(node_id)
        ns = namespace_of(self.plan, node_id)
        # Without cgroups (or a process that escaped them), the namespace still knows.
        if _netns_exists(ns):
            for pid in iproute.ip("netns", "pids", ns, check=False).split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), 9)

    def destroy(self, node_id: str) -> None:
        with self._locked(node_id):
            spec = self._spec(node_id)
            self._kill(node_id)
            ns = namespace_of(self.plan, node_id)
            try:
                if spec is not None:
                    # Before the namespace: its deletion frees the veth pairs only later.
                    self._unwire(spec)
                if _netns_exists(ns):
                    iproute.delete_namespace(ns)
                self.cgroups.remove(node_id)
            except (OSError, iproute.IprouteError) as exc:
                raise self._fail(node_id, f"cannot remove the node: {exc}") from exc
            shutil.rmtree(self._node_dir(node_id), ignore_errors=True)

    def _unwire(self, spec: NodeSpec) -> None:
        """Remove the node's veth pairs, then the bridges (and VXLANs) no node uses."""
        host_ns = self.plan.namespace
        links = iproute.links(host_ns)
        ends = {veth_end(spec.id, i.name) for i in spec.interfaces}
        members: dict[str, list[str]] = {}
        for link in links:
            if link.get("master") and link["ifname"] not in ends:
                members.setdefault(link["master"], []).append(link["ifname"])
        names = {link["ifname"] for link in links}
        lines = [f"link delete dev {end}" for end in sorted(ends & names)]
        for iface in spec.interfaces:
            br = bridge_name(iface)
            vx = f"{self.plan.ifname}.{iface.vlan}" if iface.vlan else None
            if br in names and all(m == vx for m in members.get(br, [])):
                lines.append(f"link delete dev {br}")
                names.discard(br)
                if vx in names:
                    lines.append(f"link delete dev {vx}")
                    names.discard(vx)
        iproute.ip_batch(lines, ns=host_ns)

    def status(self, node_id: str) -> NodeState:
        spec = self._spec(node_id)
        if spec is None:
            # A directory or namespace without a spec: a define cut short by a crash.
            leftover = self._node_dir(node_id).exists() or _netns_exists(
                namespace_of(self.plan, node_id)
            )
            return NodeState.FAILED if leftover else NodeState.ABSENT
        d = self._node_dir(node_id)
        if not _netns_exists(namespace_of(self.plan, node_id)):
            return NodeState.FAILED
        if not (d / "booted").exists():
            return NodeState.STOPPED if (d / "stopped").exists() else NodeState.DEFINED
        for daemon in IMAGES[spec.image]:
            if not _pid_alive(d / f"{daemon}.pid", daemon):
                return NodeState.FAILED
        return NodeState.RUNNING

    def usage(self, node_id: str) -> NodeUsage:
        state = self.status(node_id)
        if state is NodeState.ABSENT:
            return NodeUsage(state)
        cpu_s, memory = self.cgroups.usage(node_id)
        return NodeUsage(state, cpu_s, memory)

    def nodes(self) -> list[str]:
        found = set()
        if self.dir.exists():
            found = {p.name for p in self.dir.iterdir() if p.is_dir()}
        prefix = self.plan.namespace + "."
        if NETNS_DIR.exists():
            found |= {p.name[len(prefix) :] for p in NETNS_DIR.glob(prefix + "*")}
        return sorted(found)

    def interfaces(self, node_id: str) -> list[InterfaceState]:
        spec = self._spec(node_id)
        if spec is None:
            raise self._fail(node_id, "no such node")
        ns = namespace_of(self.plan, node_id)
        out = iproute.ip("-j", "address", "show", ns=ns, check=False)
        by_name = {a["ifname"]: a for a in (json.loads(out) if out.strip() else [])}
        result = []
        for iface in spec.interfaces:
            a = by_name.get(iface.name, {})
            v4 = [f"{i['local']}/{i['prefixlen']}" for i in a.get("addr_info", [])
                  if i.get("family") == "inet"]  # fmt: skip
            result.append(
                InterfaceState(
                    iface.name, iface.circuit, v4[0] if v4 else None, "UP" in a.get("flags", [])
                )
            )
        return result

    def console(self, node_id: str) -> tuple[str, ...]:
        if self._spec(node_id) is None:
            raise self._fail(node_id, "no such node")
        return tuple(self._in_node(node_id))

    # -- emergency stop ----------------------------------------------------------------
    def probe(self, node_id: str) -> tuple[str, ...]:
        if self._spec(node_id) is None:
            raise self._fail(node_id, "no such node")
        return ("ip", "netns", "exec", namespace_of(self.plan, node_id))

    def freeze(self, node_id: str) -> None:
        """Every process of the node stopped where it is (cgroup freezer), kept."""
        self._freeze(node_id, True)

    def thaw(self, node_id: str) -> None:
        self._freeze(node_id, False)

    def _freeze(self, node_id: str, frozen: bool) -> None:
        if self._spec(node_id) is None:
            raise self._fail(node_id, "no such node")
        try:
            self.cgroups.freeze(node_id, frozen)
        except OSError as exc:
            what = "freeze" if frozen else "thaw"
            raise self._fail(node_id, f"cannot {what} the node: {exc}") from exc

    def is_frozen(self, node_id: str) -> bool:
        return self.cgroups.is_frozen(node_id)

    def processes(self, node_id: str) -> list[dict[str, object]]:
        """The node's processes (pid, state, command line), read from /proc."""
        pids = set(self.cgroups.pids(node_id))
        ns = namespace_of(self.plan, node_id)
        if not pids and _netns_exists(ns):
            out = iproute.ip("netns", "pids", ns, check=False)
            pids = {int(p) for p in out.split() if p.isdigit()}
        return [p for pid in sorted(pids) if (p := _process(pid)) is not None]

    def set_links(self, node_id: str, up: bool) -> list[str]:
        """The node's interfaces taken down (or up) at their V-node end: the slice's
        attachment to the V-node's uplink, cut without touching any device. Returns the
        interfaces changed."""
        spec = self._spec(node_id)
        if spec is None:
            raise self._fail(node_id, "no such node")
        names = {link["ifname"] for link in iproute.links(self.plan.namespace)}
        ends = [e for i in spec.interfaces if (e := veth_end(spec.id, i.name)) in names]
        try:
            iproute.ip_batch(
                [f"link set dev {e} {'up' if up else 'down'}" for e in ends],
                ns=self.plan.namespace,
            )
        except (OSError, iproute.IprouteError) as exc:
            raise self._fail(node_id, f"cannot set the node's links {up=}: {exc}") from exc
        return ends


NETNS_DIR = Path("/run/netns")  # where `ip netns` keeps named namespaces


def _netns_exists(name: str) -> bool:
    # A stat instead of `ip netns list`: this is on every node's hot path.
    return (NETNS_DIR / name).exists()


def _pid_alive(pid_file: Path, name: str) -> bool:
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    return name.encode() in cmdline.split(b"\0", 1)[0]


def _process(pid: int) -> dict[str, object] | None:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None  # gone meanwhile
    state = stat.rsplit(")", 1)[1].split()[0] if ")" in stat else "?"
    argv = [a.decode(errors="replace") for a in cmdline.split(b"\0") if a]
    return {"pid": pid, "state": state, "cmdline": " ".join(argv)[:300]}


def remove_all(runtime_dir: Path, hosts: list[HostPlan], cgroups: Cgroups) -> int:
    """Every node on these V-nodes, whatever state it is in (the emulator's `down`). The
    V-nodes at once: a node whose shell ignores SIGTERM (a login) holds its V-node for the
    kill's grace period, not every other V-node too."""

    def on(host: HostPlan) -> int:
        driver = NetnsCompute(host, runtime_dir, cgroups)
        nodes = driver.nodes()
        for node in nodes:
            driver.destroy(node)
        return len(nodes)

    if not hosts:
        return 0
    with ThreadPoolExecutor(max_workers=min(len(hosts), 16)) as pool:
        return sum(pool.map(on, hosts))


_cgroups: dict[str, Cgroups] = {}


def for_emulated_host(host: str, settings: Settings) -> NetnsCompute:
    """The driver for V-node `host` of the facility emulated under `settings`."""
    from federica.substrate.emulator.facility import Emulator, EmulatorError

    emu = Emulator(settings.emulator_dir, settings.emulator_prefix)
    try:
        plan = emu.host(host)
    except EmulatorError as exc:
        raise ComputeError(host, "-", f"{exc} (is `federica emulate up` running?)") from exc
    group = settings.emulator_prefix
    if group not in _cgroups:
        _cgroups[group] = Cgroups.detect(group)
    return NetnsCompute(plan, emu.socket_dir, _cgroups[group])


def _router_id(spec: NodeSpec) -> str:
    """BIRD needs a router id to start: the node's first IPv4 address, else one derived
    from its id (any 32-bit value will do; the researcher sets their own)."""
    for iface in spec.interfaces:
        if iface.address and "." in iface.address:
            return iface.address.split("/")[0]
    n = int.from_bytes(hashlib.sha1(spec.id.encode()).digest()[:3])  # noqa: S324
    return f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}"
