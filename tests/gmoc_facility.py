"""A facility for the datastore's tests: core4 with its identity, two projects each with a
slice, per-VLAN and physical interface rates recorded by the monitoring store (also used by
the integration test and the benchmark's set-up, on their own databases)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from federica.clock import MovableClock
from federica.context import Context, make_context
from federica.db import transaction
from federica.federation import identity
from federica.gmoc import resources
from federica.gmoc.access import Viewer
from federica.monitoring.models import NodeSample
from federica.monitoring.poller import DeviceSample, Interface, Round
from federica.monitoring.rollup import floor
from federica.monitoring.service import Recorder
from federica.slices import service
from federica.slices.models import Slice
from federica.slices.provision import node_id
from federica.substrate.models import Port
from federica.web.gmoc import create_gmoc_app
from tests.accounts import make_user
from tests.conftest import EXAMPLES
from tests.helpers import load_file

# Near the real time: the API tokens are issued by the real clock.
T0 = floor(dt.datetime.now(dt.UTC), 3600) - dt.timedelta(hours=1)
POLLS = 21  # ten minutes of 30 s polls from T0
AUTHORITY = "fed.example"


@dataclass
class Facility:
    ctx: Context
    slices: dict[str, int]  # project -> slice id
    vlans: dict[str, list[tuple[str, str, int]]]  # project -> (device, port, tag) held
    tokens: dict[str, str]  # username -> API token


def _book(ctx: Context, name: str, project: str, owner: str, pops: tuple[str, str]) -> int:
    doc = {
        "name": name,
        "window": {"start": (T0 - dt.timedelta(minutes=5)).isoformat(), "duration": "4h"},
        "nodes": [{"name": "a", "pop": pops[0]}, {"name": "b", "pop": pops[1]}],
        "circuits": [{"name": "c", "endpoints": ["a", "b"], "bandwidth_mbps": 100}],
    }
    with transaction(ctx.sessions) as s:
        booked = service.book(s, ctx.settings, doc, now=T0 - dt.timedelta(hours=1))
        assert booked.slice is not None
        sl = s.get_one(Slice, booked.slice.id)
        sl.project = project
        from federica.aaa.models import User

        sl.owner_id = s.scalar(select(User.id).where(User.username == owner))
        return sl.id


def _vlans(ctx: Context, slice_id: int) -> list[tuple[str, str, int]]:
    with ctx.read_sessions() as s:
        out = []
        for use in resources.vlan_uses(s, [slice_id]):
            port = s.get_one(Port, use.port_id)
            out.append((port.device.name, port.name, use.tag))
        return sorted(out)


@pytest.fixture
def facility(db: Context) -> Facility:
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    identity.init(db.settings.data_dir, "fed", AUTHORITY, hosts=["127.0.0.1"], now=T0)
    return populate(db)


def populate(db: Context) -> Facility:
    """Users, projects, slices and ten minutes of rates from T0 on core4 (loaded)."""
    tokens = {
        "alice": make_user(db, "alice", projects=["p1"]),
        "bob": make_user(db, "bob", projects=["p2"]),
        "noc": make_user(db, "noc", "operator"),
    }
    slices = {
        "p1": _book(db, "s1", "p1", "alice", ("PRG", "ERL")),
        "p2": _book(db, "s2", "p2", "bob", ("MIL", "PSN")),
    }
    vlans = {p: _vlans(db, i) for p, i in slices.items()}
    ctx = make_context(db.settings, engine=db.engine, clock=MovableClock(T0))
    clock = ctx.clock
    assert isinstance(clock, MovableClock)
    rec = Recorder(ctx)
    # Every device: each physical port counts 1000 B/s in and 3000 B/s out; each per-VLAN
    # unit (<port>.<tag>) the slices hold counts 100 B/s times its tag in, 10 packets/s out.
    units: dict[str, list[tuple[str, int]]] = {}
    for held in vlans.values():
        for device, port, tag in held:
            units.setdefault(device, []).append((f"{port}.{tag}", tag))
    with ctx.read_sessions() as s:
        ports: dict[str, list[str]] = {}
        for p in s.scalars(select(Port)):
            ports.setdefault(p.device.name, []).append(p.name)
    for n in range(POLLS):
        at = T0 + dt.timedelta(seconds=30 * n)
        clock.set(at)
        samples = []
        for device, names in sorted(ports.items()):
            ifaces = [
                Interface(
                    i,
                    name,
                    "",
                    {"in_octets": 1000 * 30 * n, "out_octets": 3000 * 30 * n},
                    1,
                    1,
                    1000,
                )
                for i, name in enumerate(sorted(names), start=1)
            ]
            for j, (unit, tag) in enumerate(units.get(device, []), start=100):
                ifaces.append(
                    Interface(
                        j,
                        unit,
                        "",
                        {"in_octets": 100 * tag * 30 * n, "out_ucast_pkts": 10 * 30 * n},
                        1,
                        1,
                        1000,
                    )
                )
            samples.append(DeviceSample(device, at, 100_000 + 3000 * n, ifaces, False))
        rec.record(Round(n + 1, at, samples=samples))
        _sample_nodes(ctx, slices, at, n)
    clock.set(T0 + dt.timedelta(minutes=15))
    return Facility(ctx, slices, vlans, tokens)


# Each slice node, as its V-node's driver reports it: a quarter of a core busy from the
# second sampling on (none known at the first), 256 MiB of memory.
NODE_CORES = 0.25
NODE_MEMORY = 256 * 1024 * 1024


def _sample_nodes(ctx: Context, slices: dict[str, int], at: dt.datetime, n: int) -> None:
    """What the poller's sampling of the V-nodes writes (Recorder.sample_nodes), for the
    slices' nodes, at the same instant as the devices' answers."""
    with transaction(ctx.sessions) as s:
        for slice_id in slices.values():
            for node in s.get_one(Slice, slice_id).nodes:
                s.add(
                    NodeSample(
                        host_id=node.host_id,
                        node=node_id(slice_id, node.name),
                        at=at,
                        state="running",
                        cpu_seconds=30.0 * n * NODE_CORES,
                        cpu_cores=None if n == 0 else NODE_CORES,
                        memory_bytes=NODE_MEMORY,
                    )
                )


def client(facility: Facility) -> FlaskClient:
    return create_gmoc_app(facility.ctx).test_client()


def whole() -> Viewer:
    return Viewer("collector:all", None, users=True)
