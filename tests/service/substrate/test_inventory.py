"""Applying topologies to a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from federica.context import Context
from federica.db import transaction
from federica.errors import InUse
from federica.substrate import usage
from federica.substrate.inventory import (
    apply_topology,
    current_topology,
    record_host_key,
    topology_to_yaml,
)
from federica.substrate.models import ComputeHost, Device, Link, Port
from federica.substrate.topology import parse_topology
from federica.substrate.usage import Resource
from tests.conftest import EXAMPLES
from tests.helpers import load_file, table_dump

FEDERICA = EXAMPLES / "topologies" / "federica.yaml"
CORE4 = EXAMPLES / "topologies" / "core4.yaml"


def test_load_creates_everything(db: Context) -> None:
    report = load_file(db, FEDERICA)
    assert report.counts() == {"create": 126}
    with transaction(db.read_sessions) as s:
        assert len(s.scalars(select(Device)).all()) == 14
        assert len(s.scalars(select(Link)).all()) == 20
        assert len(s.scalars(select(ComputeHost)).all()) == 18


def test_loading_the_same_file_twice_is_a_noop(db: Context) -> None:
    load_file(db, FEDERICA)
    before = table_dump(db)
    assert not load_file(db, FEDERICA).changed
    assert table_dump(db) == before  # not even updated_at moved


def test_export_then_load_is_a_noop(db: Context) -> None:
    load_file(db, FEDERICA)
    with transaction(db.read_sessions) as s:
        text = topology_to_yaml(current_topology(s))
    with transaction(db.sessions) as s:
        assert not apply_topology(s, parse_topology(text)).changed


def test_changed_file_updates_in_place_keeping_ids(db: Context) -> None:
    load_file(db, CORE4)
    with transaction(db.read_sessions) as s:
        link_id = s.scalars(select(Link.id).where(Link.name == "prg-erl")).one()
    text = CORE4.read_text().replace(
        "capacity_mbps: 1000\n  vlans: 100-3999", "capacity_mbps: 500\n  vlans: 200-299", 1
    )
    with transaction(db.sessions) as s:
        report = apply_topology(s, parse_topology(text))
    assert [str(c) for c in report.changes] == [
        "update link prg-erl (capacity_mbps, vlan_min, vlan_max)"
    ]
    with transaction(db.read_sessions) as s:
        link = s.get(Link, link_id)
        assert link is not None and (link.capacity_mbps, link.vlan_min) == (500, 200)


def test_shrinking_removes_what_is_gone(db: Context) -> None:
    load_file(db, FEDERICA)
    report = load_file(db, CORE4)
    removed = {(c.kind, c.name) for c in report.changes if c.action == "remove"}
    assert (Resource.POP, "KTH") in removed and (Resource.LINK, "erl-kth") in removed
    assert (Resource.PORT, "prg-mx:ge-0/0/3") in removed
    assert all(c.action == "remove" for c in report.changes)
    with transaction(db.read_sessions) as s:
        assert len(s.scalars(select(Device)).all()) == 4
        assert len(s.scalars(select(Port)).all()) == 4 * 5 + 1


def test_moving_a_host_to_another_port(db: Context) -> None:
    load_file(db, CORE4)
    text = (
        CORE4.read_text()
        .replace(
            "uplink: {device: prg-mx, port: ge-1/0/1}", "uplink: {device: prg-mx, port: ge-1/0/9}"
        )
        .replace(
            "- {name: ge-1/0/1, speed_mbps: 1000, kind: edge, description: V-node prg-v2}",
            "- {name: ge-1/0/9, speed_mbps: 1000, kind: edge, description: V-node prg-v2}",
        )
    )
    with transaction(db.sessions) as s:
        report = apply_topology(s, parse_topology(text))
    assert sorted(str(c) for c in report.changes) == [
        "create port prg-mx:ge-1/0/9",
        "remove port prg-mx:ge-1/0/1",
        "update host prg-v2 (uplink)",
    ]


@pytest.fixture
def links_in_use(db: Context) -> None:
    def reporter(session: Session, kind: Resource, ids: Sequence[int]) -> list[str]:
        if kind is not Resource.LINK:
            return []
        names = session.scalars(select(Link.name).where(Link.id.in_(ids))).all()
        return [f"link {n} is held by slice 'bgp-lab'" for n in names if n == "erl-kth"]

    # As a package building on the substrate would: its reporter beside the slices'.
    for factory in (db.sessions, db.read_sessions):
        usage.attach(factory, [*factory.kw["info"][usage.REPORTERS_KEY], reporter])


@pytest.mark.usefixtures("links_in_use")
def test_removal_of_something_in_use_is_refused_and_changes_nothing(db: Context) -> None:
    load_file(db, FEDERICA)
    before = table_dump(db)
    with pytest.raises(InUse) as info:
        load_file(db, CORE4)
    assert info.value.users == ["link erl-kth is held by slice 'bgp-lab'"]
    assert "in use" in info.value.detail
    assert table_dump(db) == before


def test_host_key_recorded_elsewhere_survives_a_reload(db: Context) -> None:
    load_file(db, CORE4)
    fp = "SHA256:" + "A" * 43
    with transaction(db.sessions) as s:
        record_host_key(s, "prg-mx", fp)
    assert not load_file(db, CORE4).changed
    with transaction(db.read_sessions) as s:
        assert (
            s.scalars(select(Device.host_key_fingerprint).where(Device.name == "prg-mx")).one()
            == fp
        )
        exported = current_topology(s)
    assert exported.devices[[d.name for d in exported.devices].index("prg-mx")].host_key == fp
