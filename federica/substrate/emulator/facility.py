"""`federica emulate up | down | status`: the whole emulated facility on this machine.

The state file is an intent log: every namespace and process is written to it *before*
it is made, so `down` (or an `up` after a crash or kill -9) removes exactly what an
earlier run made, whatever point it had reached.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from federica.substrate.emulator import device, iproute, processes
from federica.substrate.emulator.plan import (
    BORDER_UNDERLAY,
    UNDERLAY_MTU,
    DevicePlan,
    FacilityPlan,
    HostPlan,
    vxlan_add,
)

log = logging.getLogger(__name__)
STATE_FILE = "state.json"
READY_TIMEOUT_S = 60.0


class EmulatorError(RuntimeError):
    pass


@dataclass
class State:
    prefix: str
    namespaces: list[str] = field(default_factory=list)
    processes: list[processes.Tracked] = field(default_factory=list)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    complete: bool = False
    started_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "namespaces": self.namespaces,
            "processes": [p.to_json() for p in self.processes],
            "devices": self.devices,
            "hosts": self.hosts,
            "complete": self.complete,
            "started_at": self.started_at,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> State:
        return cls(
            prefix=d["prefix"],
            namespaces=list(d["namespaces"]),
            processes=[processes.Tracked.from_json(p) for p in d["processes"]],
            devices=d.get("devices", {}),
            hosts=d.get("hosts", {}),
            complete=bool(d.get("complete")),
            started_at=float(d.get("started_at", 0)),
        )


class Emulator:
    """The emulated facility rooted at `state_dir` (one per prefix)."""

    def __init__(self, state_dir: Path, prefix: str, *, community: str = "federica") -> None:
        # Its paths go into the devices' configs and argv (netconfd, sshd, snmpd, agents),
        # read by processes that do not share this one's working directory.
        state_dir = Path(os.path.abspath(state_dir))
        self.dir = state_dir
        self.prefix = prefix
        self.community = community
        self.run_dir = state_dir / "run"
        self.socket_dir = device.RUNTIME_ROOT / prefix
        self.key_file = state_dir / "client_key"

    def socket_path(self, index: int) -> Path:
        return self.socket_dir / f"d{index}.sock"

    # -- state ---------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.dir / STATE_FILE

    def load_state(self) -> State | None:
        try:
            return State.from_json(json.loads(self.state_path.read_text()))
        except FileNotFoundError:
            return None

    def _save(self, state: State) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state.to_json(), indent=1))
        os.replace(tmp, self.state_path)

    def host(self, name: str) -> HostPlan:
        """The plan of a running V-node (namespace, uplink underlay)."""
        state = self.load_state()
        if state is None or name not in state.hosts:
            raise EmulatorError(f"V-node {name!r} is not emulated here")
        return HostPlan.from_json(state.hosts[name])

    def login(self) -> device.Login:
        return device.Login("root", self.key_file, self.community)

    # -- up ------------------------------------------------------------------------
    def up(self, plan: FacilityPlan, progress: Callable[[str], None] = lambda _m: None) -> State:
        if os.geteuid() != 0:
            raise EmulatorError("the emulator needs root (network namespaces)")
        self.down(progress)
        self.dir.mkdir(parents=True, exist_ok=True)
        _check_ports_free(plan)
        if not self.key_file.exists():
            device.generate_key(self.key_file, "federica emulator client")
        self.key_file.chmod(0o600)
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory

        state = State(prefix=self.prefix, started_at=time.time())
        existing = set(iproute.namespaces())
        for ns in plan.namespaces:
            state.namespaces.append(ns)
            self._save(state)
            if ns in existing:  # left by a run whose state file was lost
                iproute.delete_namespace(ns)
            iproute.add_namespace(ns)
        progress(f"{len(plan.namespaces)} namespaces")
        _wire(plan)
        progress(f"{len(plan.wires)} wires")

        login = self.login()
        for i, dplan in enumerate(plan.devices):
            ddir = self.run_dir / dplan.name
            try:
                fp = device.write_files(dplan, ddir, self.socket_path(i), login)
            except (OSError, ValueError, subprocess.CalledProcessError) as exc:
                raise EmulatorError(f"{dplan.name}: cannot prepare its files: {exc}") from None
            state.devices[dplan.name] = {
                "namespace": dplan.namespace,
                "host": dplan.mgmt_host,
                "netconf_port": dplan.netconf_port,
                "snmp_port": dplan.snmp_port,
                "fingerprint": fp,
                "dir": str(ddir),
                "socket": str(self.socket_path(i)),
            }
        for h in plan.hosts:
            state.hosts[h.name] = asdict(h)
        for i, dplan in enumerate(plan.devices):
            for t in device.start(dplan, self.run_dir / dplan.name, self.socket_path(i)):
                state.processes.append(t)
                self._save(state)
        self._wait_for_servers(plan, state)
        progress("NETCONF and SNMP servers up")
        for dplan in plan.devices:
            state.processes.append(device.spawn_agent(dplan, self.run_dir / dplan.name))
            self._save(state)
        self._wait_for_agents(plan, state)
        state.complete = True
        self._save(state)
        progress("device agents following their configuration")
        return state

    def _wait_for_servers(self, plan: FacilityPlan, state: State) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        pending = {d.name: d for d in plan.devices}
        while pending:
            self._check_alive(state)
            for name, d in list(pending.items()):
                sock = Path(state.devices[name]["socket"])
                if sock.exists() and _tcp_open(d.mgmt_host, d.netconf_port):
                    del pending[name]
            if pending and time.monotonic() > deadline:
                raise EmulatorError(
                    f"devices not ready after {READY_TIMEOUT_S:.0f} s: "
                    f"{', '.join(sorted(pending))}; see {self.run_dir}/*/logs"
                )
            time.sleep(0.05)

    def _wait_for_agents(self, plan: FacilityPlan, state: State) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        pending = {d.name for d in plan.devices}
        while pending:
            self._check_alive(state)
            pending = {n for n in pending if not (self.run_dir / n / "agent.ready").exists()}
            if pending and time.monotonic() > deadline:
                raise EmulatorError(
                    f"device agents not ready after {READY_TIMEOUT_S:.0f} s: "
                    f"{', '.join(sorted(pending))}; see {self.run_dir}/*/logs/agent.log"
                )
            time.sleep(0.05)

    def _check_alive(self, state: State) -> None:
        dead = [t.name for t in state.processes if not processes.is_alive(t)]
        if dead:
            raise EmulatorError(
                f"exited during start-up: {', '.join(dead)}; see the logs under {self.run_dir}"
            )

    # -- restart -------------------------------------------------------------------
    def restart(self, device_name: str, kind: str) -> processes.Tracked:
        """Stop one of a device's processes (with the sessions it serves) and start it
        again with the same configuration: netconfd, sshd, snmpd or agent."""
        state = self.load_state()
        if state is None or device_name not in state.devices:
            raise EmulatorError(f"device {device_name!r} is not emulated here")
        name = f"{kind} {device_name}"
        old = [t for t in state.processes if t.name == name]
        if not old:
            raise EmulatorError(f"no process {name!r}; kinds: netconfd, sshd, snmpd, agent")
        victims = [*old, *[c for t in old for c in processes.children_of(t.pid)]]
        processes.stop(victims)
        ddir = Path(state.devices[device_name]["dir"])
        dplan = DevicePlan.from_json(json.loads((ddir / "plan.json").read_text()))
        spawn: dict[str, Callable[[], processes.Tracked]] = {
            "netconfd": lambda: device.spawn_netconfd(
                dplan, ddir, Path(state.devices[device_name]["socket"])
            ),
            "sshd": lambda: device.spawn_sshd(dplan, ddir),
            "snmpd": lambda: device.spawn_snmpd(dplan, ddir),
            "agent": lambda: device.spawn_agent(dplan, ddir),
        }
        new = spawn[kind]()
        state.processes = [t for t in state.processes if t.name != name] + [new]
        self._save(state)
        if kind == "sshd":
            deadline = time.monotonic() + 10
            while not _tcp_open(dplan.mgmt_host, dplan.netconf_port):
                if time.monotonic() > deadline:
                    raise EmulatorError(f"{name} did not come back; see {ddir}/logs/sshd.log")
                time.sleep(0.02)
        return new

    # -- down ----------------------------------------------------------------------
    def down(self, progress: Callable[[str], None] = lambda _m: None) -> bool:
        """Remove everything a previous `up` made. Returns whether there was anything."""
        state = self.load_state()
        if state is None:
            return False
        nodes = self._remove_nodes(state)
        if nodes:
            progress(f"removed {nodes} virtual node(s) still on the V-nodes")
        # A kill -9 of `up` between starting a process and recording it leaves one process
        # unrecorded: find it by this emulator's own run directory in its command line.
        strays = processes.find_by_argument(str(self.run_dir) + "/")
        tracked = {(t.pid, t.start_time) for t in state.processes}
        extra = [t for t in strays if (t.pid, t.start_time) not in tracked]
        killed = processes.stop([*state.processes, *extra])
        if killed:
            progress(f"had to SIGKILL: {', '.join(killed)}")
        present = set(iproute.namespaces())
        for ns in state.namespaces:
            if ns in present:
                iproute.delete_namespace(ns)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        shutil.rmtree(self.socket_dir, ignore_errors=True)
        with contextlib.suppress(OSError):  # shared by all prefixes; only if now empty
            self.socket_dir.parent.rmdir()
        self.state_path.unlink(missing_ok=True)
        progress(f"removed {len(state.namespaces)} namespaces and {len(state.processes)} processes")
        return True

    def _remove_nodes(self, state: State) -> int:
        from federica.substrate.drivers.compute.cgroups import Cgroups
        from federica.substrate.drivers.compute.netns import remove_all

        hosts = [HostPlan.from_json(h) for h in state.hosts.values()]
        cgroups = Cgroups.detect(self.prefix)
        count = remove_all(self.socket_dir, hosts, cgroups)
        cgroups.remove_group()
        return count

    # -- status --------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        state = self.load_state()
        if state is None:
            return {"running": False}
        alive = {t.name: processes.is_alive(t) for t in state.processes}
        present = set(iproute.namespaces())
        return {
            "running": state.complete and all(alive.values()),
            "complete": state.complete,
            "prefix": state.prefix,
            "devices": {
                name: {
                    **info,
                    "processes": {
                        k.split()[0]: v for k, v in alive.items() if k.endswith(f" {name}")
                    },
                    "namespace_present": info["namespace"] in present,
                }
                for name, info in state.devices.items()
            },
            "hosts": {
                name: {**info, "namespace_present": info["namespace"] in present}
                for name, info in state.hosts.items()
            },
            "dead_processes": sorted(k for k, v in alive.items() if not v),
        }


def _tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _check_ports_free(plan: FacilityPlan) -> None:
    busy = []
    for d in plan.devices:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((d.mgmt_host, d.netconf_port))
            except OSError:
                busy.append(f"{d.name}: TCP {d.mgmt_host}:{d.netconf_port}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((d.mgmt_host, d.snmp_port))
            except OSError:
                busy.append(f"{d.name}: UDP {d.mgmt_host}:{d.snmp_port}")
    if busy:
        raise EmulatorError(
            "management ports already in use (another emulator or service?): " + "; ".join(busy)
        )


def _wire(plan: FacilityPlan) -> None:
    root: list[str] = []
    per_ns: dict[str, list[str]] = {}
    for w in plan.wires:
        root.append(
            f"link add name {w.a_if} netns {w.a_ns} mtu {UNDERLAY_MTU} type veth "
            f"peer name {w.b_if} netns {w.b_ns} mtu {UNDERLAY_MTU}"
        )
        a = per_ns.setdefault(w.a_ns, [])
        if w.plugged:
            a.append(f"link set dev {w.a_if} up")
            b = per_ns.setdefault(w.b_ns, [])
            a.insert(0, f"address add {w.a_ip}/30 dev {w.a_if}")
            b.insert(0, f"address add {w.b_ip}/30 dev {w.b_if}")
            b.append(f"link set dev {w.b_if} up")
        elif w.a_ip:  # a border port: its address on the border segment
            a.insert(0, f"address add {w.a_ip}/{BORDER_UNDERLAY.prefixlen} dev {w.a_if}")
    iproute.ip_batch(root)
    for ns, lines in per_ns.items():
        iproute.ip_batch(lines, ns=ns)


def host_vlan_interface(host: HostPlan, vlan: int) -> str:
    """Create (idempotently) the V-node side of VLAN `vlan` on its uplink, as the netns
    compute driver does for a node's interface; returns its name (tests use it)."""
    name = f"{host.ifname}.{vlan}"
    if name not in {link["ifname"] for link in iproute.links(host.namespace)}:
        lines = [vxlan_add(name, vlan, host.underlay, host.ifname), f"link set dev {name} up"]
        iproute.ip_batch(lines, ns=host.namespace)
    return name
