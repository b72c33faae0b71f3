"""Integration fixtures: the real emulated facility, brought up once per test session.

Needs root (network namespaces), as in CI. Its own namespace prefix, data directory and
free loopback ports, so it never collides with a running `make demo`.
"""

from __future__ import annotations

import inspect
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from ncclient import manager
from ncclient.operations import RPCError
from ncclient.operations.errors import TimeoutExpiredError

from federica.config import Settings
from federica.context import Context, make_context
from federica.db import make_engine, transaction
from federica.migrate import upgrade
from federica.substrate.drivers.base import Change
from federica.substrate.drivers.compute.cgroups import Cgroups
from federica.substrate.drivers.netconf.federica_l2 import change_config, parse_config, to_xml
from federica.substrate.drivers.netconf.session import Endpoint, connect
from federica.substrate.emulator import iproute, processes
from federica.substrate.emulator.device import startup_ports
from federica.substrate.emulator.facility import Emulator, State
from federica.substrate.emulator.plan import FacilityPlan, HostPlan, plan_facility
from federica.substrate.inventory import apply_topology, current_topology, record_host_key
from federica.substrate.topology import Topology, parse_topology
from tests.conftest import EXAMPLES

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")

INTEGRATION = Path(__file__).resolve().parent


def _shares_what_it_starts(item: pytest.Item) -> bool:
    """Uses a module- or session-scoped fixture of the integration tests (a facility, a
    controller, a browser): one started for several tests."""
    info = getattr(item, "_fixtureinfo", None)
    for defs in info.name2fixturedefs.values() if info else ():
        for d in defs:
            source = inspect.getsourcefile(d.func)
            if d.scope != "function" and source and Path(source).is_relative_to(INTEGRATION):
                return True
    return False


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups (--dist loadgroup)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `make test` (pytest-xdist) the tests of an integration module that share a
    module- or session-scoped fixture run on one worker, so that it starts once, not once
    per worker. Every other test (unit, service, integration tests that start their own
    processes per test) is spread one by one. Nothing here is needed for isolation: each
    worker is its own process, so its own namespace prefix, ports and directories."""
    for item in items:
        path = item.path.resolve()
        if path.is_relative_to(INTEGRATION) and _shares_what_it_starts(item):
            group = path.relative_to(INTEGRATION).with_suffix("").as_posix()
            item.add_marker(pytest.mark.xdist_group(group))


def free_port_pair() -> int:
    """A port number free on 127.0.0.1 for both TCP (NETCONF) and UDP (SNMP)."""
    for _ in range(100):
        with socket.socket() as t:
            t.bind(("127.0.0.1", 0))
            port = int(t.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port pair")


def with_free_ports(topo: Topology, **changes: Mapping[str, object]) -> Topology:
    devices = []
    for d in topo.devices:
        extra = changes.get(d.name, {})
        devices.append(
            d.model_copy(
                update={
                    "management": d.management.model_copy(update={"port": free_port_pair()}),
                    **extra,
                }
            )
        )
    return topo.model_copy(update={"devices": devices})


# Every emulator a test starts is named <two letters><this process's pid % 100000> (ft…,
# fd…, fp…, fk…), and everything it creates carries that prefix. Other federica runs on
# the same machine (a developer's `make demo`, another checkout's tests) are not ours to
# judge: their namespaces come and go while we look.
# (Not followed by a digit: pid 1234's prefix is not the start of pid 12345's.)
OUR_PREFIX = re.compile(rf"^[a-z]{{2}}{os.getpid() % 100000}(?![0-9])")


ANY_RUN_PREFIX = re.compile(r"^[a-z]{2}[0-9]+")


def host_snapshot() -> tuple[set[str], set[str]]:
    """This test run's namespaces, and the root namespace's links but another run's."""
    links = {
        n for n in iproute.root_link_names() if OUR_PREFIX.match(n) or not ANY_RUN_PREFIX.match(n)
    }
    return {n for n in iproute.namespaces() if OUR_PREFIX.match(n)}, links


def _commit_when_no_confirmed_commit_pends(m: manager.Manager, wait_s: float = 40) -> None:
    """A test that failed half way may leave a confirmed commit pending: wait it out
    (idle, since netconfd checks confirm timeouts only when idle)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            m.commit()
            return
        except RPCError as exc:
            if "confirmed-commit pending" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(1.5)


@dataclass
class Facility:
    emulator: Emulator
    plan: FacilityPlan
    state: State
    context: Context
    settings: Settings

    def endpoint(self, device: str, fingerprint: str | None = None) -> Endpoint:
        with transaction(self.context.read_sessions) as s:
            dev = {d.name: d for d in current_topology(s).devices}[device]
        return Endpoint(
            dev.management.host,
            dev.management.port,
            "root",
            str(self.emulator.key_file),
            fingerprint if fingerprint is not None else dev.host_key,
        )

    def netconf(self, device: str) -> manager.Manager:
        return connect(self.endpoint(device))

    def host(self, name: str) -> HostPlan:
        return self.plan.host(name)

    def wipe(self, devices: Sequence[str] | None = None) -> None:
        """No segments and the ports enabled as at start, in running and candidate (raw
        NETCONF, so it does not depend on the drivers under test). A reply that times out
        (netconfd busy reverting a confirmed commit) is retried once on a fresh session."""
        for name in devices or [d.name for d in self.plan.devices]:
            try:
                self._wipe_one(name)
            except TimeoutExpiredError:
                time.sleep(2)
                self._wipe_one(name)

    def _wipe_one(self, name: str) -> None:
        m = self.netconf(name)
        try:
            m.discard_changes()
            cfg = parse_config(m.get_config(source="running").data_ele)
            # As it started: plugged ports enabled, the unplugged ones shut down.
            startup = startup_ports(self.plan.device(name))
            changed = {p: on for p, on in startup.items() if cfg.port_enabled.get(p, True) != on}
            el = change_config(
                Change(remove=tuple(cfg.segments), port_state=tuple(changed.items())), cfg
            )
            if el is not None:
                m.edit_config(target="candidate", config=to_xml(el))
                _commit_when_no_confirmed_commit_pends(m)
        finally:
            m.close_session()

    def ns_exec(self, ns: str, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=False
        )


@pytest.fixture(scope="session")
def emulated_core4(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Facility]:
    if os.geteuid() != 0:
        pytest.skip("the emulated facility needs root (network namespaces)")
    before = host_snapshot()
    root = tmp_path_factory.mktemp("emu")
    prefix = f"ft{os.getpid() % 100000}"
    settings = Settings(
        data_dir=root, database_url=f"sqlite:///{root / 'federica.db'}", emulator_prefix=prefix
    )
    engine = make_engine(settings.effective_database_url)
    upgrade(engine)
    context = make_context(settings, engine=engine)
    # psn-mx plays a switch that cannot translate VLAN tags.
    topo = with_free_ports(
        parse_topology((EXAMPLES / "topologies" / "core4.yaml").read_bytes()),
        **{"psn-mx": {"vlan_translation": False}},
    )
    with transaction(context.sessions) as s:
        apply_topology(s, topo)
    emu = Emulator(settings.emulator_dir, prefix)
    plan = plan_facility(topo, prefix)
    try:
        state = emu.up(plan)
        with transaction(context.sessions) as s:
            for name, info in state.devices.items():
                record_host_key(s, name, info["fingerprint"])
        yield Facility(emu, plan, state, context, settings)
    finally:
        final = emu.load_state()
        emu.down()
        engine.dispose()
    leftovers = [t.name for t in (final.processes if final else []) if processes.is_alive(t)]
    assert not leftovers, f"processes left running: {leftovers}"
    assert processes.find_by_argument(f"{emu.run_dir}/") == [], "unrecorded processes left"
    assert host_snapshot() == before, "namespaces or links left behind"
    assert not Cgroups.detect(prefix).group_exists(), "the nodes' cgroup group left behind"
