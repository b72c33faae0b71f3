"""Booking on a real database (SQLite and PostgreSQL): reservations, dry run, release,
conflicts, and the database itself refusing a double-booked tag."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from federica import revision
from federica.config import Settings
from federica.context import Context
from federica.db import transaction
from federica.errors import Conflict, ServiceUnavailable
from federica.slices import service
from federica.slices.embed import EmbeddingFailed
from federica.slices.index import index_for
from federica.slices.lifecycle import SliceStatus, move
from federica.slices.models import Reservation, ReservationKind, Slice
from federica.substrate.models import Link
from tests.conftest import EXAMPLES
from tests.helpers import load_file, table_dump
from tests.service.slices.audit import violations

NOW = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
BGP = (EXAMPLES / "slices" / "bgp-lab.yaml").read_text()


@pytest.fixture
def core4(db: Context) -> Context:
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    return db


def book(db: Context, settings: Settings, doc: Any, **kw: Any) -> service.Booked:
    with transaction(db.sessions) as s:
        return service.book(s, settings, doc, now=NOW, **kw)


def small(name: str, vcpu: int = 2, pop: str = "PRG") -> dict[str, Any]:
    return {
        "name": name,
        "window": {"start": "2026-12-01T10:00:00Z", "duration": "2h"},
        "nodes": [{"name": "a", "pop": pop, "vcpu": vcpu}, {"name": "b", "pop": "ERL"}],
        "circuits": [{"name": "c", "endpoints": ["a", "b"], "bandwidth_mbps": 100}],
    }


def count(db: Context, kind: ReservationKind) -> int:
    with transaction(db.read_sessions) as s:
        return (
            s.scalar(select(func.count()).select_from(Reservation).where(Reservation.kind == kind))
            or 0
        )


def test_booking_the_bgp_ring_reserves_everything_it_uses(
    core4: Context, settings: Settings
) -> None:
    b = book(core4, settings, BGP)
    assert b.slice is not None and b.slice.status is SliceStatus.SCHEDULED
    assert (
        count(core4, ReservationKind.COMPUTE),
        count(core4, ReservationKind.LINK_VLAN),
        count(core4, ReservationKind.PORT_VLAN),
    ) == (4, 4, 8)
    assert set(b.timings_ms) == {"validate", "embed", "reserve"}
    assert violations(core4.engine) == {k: 0 for k in violations(core4.engine)}


def test_a_dry_run_changes_nothing(core4: Context, settings: Settings) -> None:
    before = table_dump(core4)
    b = book(core4, settings, BGP, dry_run=True)
    assert b.dry_run and len(b.embedding.circuits) == 4
    assert table_dump(core4) == before


def test_a_second_ring_gets_other_tags_on_the_same_links(
    core4: Context, settings: Settings
) -> None:
    first = book(core4, settings, BGP)
    second = book(core4, settings, BGP.replace("name: bgp-lab", "name: bgp-lab-2"))
    pairs = [
        {(h.link, h.vlan) for c in b.embedding.circuits.values() for h in c.hops if h.link}
        for b in (first, second)
    ]
    links = [{link for link, _ in p} for p in pairs]
    assert links[0] & links[1], "the test wants the rings to share links"
    assert not pairs[0] & pairs[1], "a tag was given twice on one link"
    assert all(v == 0 for v in violations(core4.engine).values())


def test_when_cpu_runs_out_the_answer_names_the_node(core4: Context, settings: Settings) -> None:
    for i in range(8):  # PRG has two V-nodes of 8 cores: 8 slices of 2 vCPU fill it
        book(core4, settings, small(f"s{i}"))
    before = table_dump(core4)
    with pytest.raises(EmbeddingFailed, match="node a needs 2 vCPU at PoP PRG; at most 0 free"):
        book(core4, settings, small("one-too-many"))
    assert table_dump(core4) == before
    # Outside that window there is room again.
    later = small("later")
    later["window"]["start"] = "2026-12-01T12:00:00Z"  # back to back: [10, 12) then [12, 14)
    assert book(core4, settings, later).slice is not None


def test_release_frees_the_rest_of_the_window_and_is_idempotent(
    core4: Context, settings: Settings
) -> None:
    for i in range(8):
        book(core4, settings, small(f"s{i}"))
    with transaction(core4.sessions) as s:
        sl = service.get(s, "s0")
        service.release(s, sl, now=NOW)  # before it started: its reservations go
        assert sl.status is SliceStatus.ENDED
        service.release(s, sl, now=NOW)
        assert [h.status for h in sl.history] == [
            SliceStatus.SCHEDULED,
            SliceStatus.RELEASING,
            SliceStatus.ENDED,
        ]
    assert book(core4, settings, small("s0-again")).slice is not None


def test_a_status_change_is_recorded_without_reading_the_history(
    core4: Context, settings: Settings
) -> None:
    book(core4, settings, small("h"))
    with transaction(core4.sessions) as s:
        sl = service.get(s, "h")
        move(sl, SliceStatus.PROVISIONING, NOW, "window started")
        assert "history" not in sl.__dict__  # not loaded to add one entry
        move(sl, SliceStatus.ACTIVE, NOW, "running")
    with transaction(core4.read_sessions) as s:
        sl = service.get(s, "h")
        assert [(h.status, h.reason) for h in sl.history][1:] == [
            (SliceStatus.PROVISIONING, "window started"),
            (SliceStatus.ACTIVE, "running"),
        ]
        assert sl.status is SliceStatus.ACTIVE


def test_names_of_live_slices_are_unique(core4: Context, settings: Settings) -> None:
    book(core4, settings, small("same"))
    with pytest.raises(Conflict, match="exists already"):
        book(core4, settings, small("same"))


def test_the_database_refuses_a_double_booked_tag(core4: Context, settings: Settings) -> None:
    if core4.engine.dialect.name != "postgresql":
        pytest.skip(
            "SQLite serialises writers instead (BEGIN IMMEDIATE); PostgreSQL enforces "
            "tag exclusivity with an exclusion constraint"
        )
    b = book(core4, settings, small("x"))
    assert b.slice is not None
    with transaction(core4.read_sessions) as s:
        link_id = s.scalars(select(Link.id)).first()
        slice_id = s.scalars(select(Slice.id)).one()
    start, end = NOW, NOW + dt.timedelta(hours=3)

    def add_overlapping_twice() -> None:
        with transaction(core4.sessions) as s:
            for offset in (0, 1):  # overlapping windows, same link, same tag
                s.add(
                    Reservation(
                        slice_id=slice_id,
                        kind=ReservationKind.LINK_VLAN,
                        link_id=link_id,
                        vlan=3333,
                        start=start + dt.timedelta(hours=offset),
                        end=end + dt.timedelta(hours=offset),
                    )
                )
            s.flush()

    with pytest.raises(IntegrityError, match="ex_reservations_link_vlan"):
        add_overlapping_twice()


def test_the_inventory_refuses_to_remove_what_a_slice_holds(
    core4: Context, settings: Settings
) -> None:
    from federica.errors import InUse
    from federica.substrate.inventory import apply_topology
    from federica.substrate.topology import parse_topology

    book(core4, settings, BGP)
    text = (EXAMPLES / "topologies" / "core4.yaml").read_text()
    cut = text[: text.index("- name: prg-erl")] + text[text.index("- name: prg-mil") :]
    before = table_dump(core4)
    with pytest.raises(InUse) as info, transaction(core4.sessions) as s:
        apply_topology(s, parse_topology(cut))
    assert info.value.users == [
        "link held by slice 'bgp-lab' (scheduled, until 2026-12-04 09:00 UTC)"
    ]
    assert table_dump(core4) == before


def test_a_pin_to_a_pop_removed_since_the_last_booking_is_refused(
    core4: Context, settings: Settings
) -> None:
    # This process validated the first booking against the substrate it had cached; the
    # inventory then loses PSN, and the next booking must see that (checked under the lock).
    from federica.errors import InvalidInput
    from federica.substrate.inventory import apply_topology
    from federica.substrate.topology import parse_topology

    book(core4, settings, small("first"))
    topo = parse_topology((EXAMPLES / "topologies" / "core4.yaml").read_bytes())
    psn = {d.name for d in topo.devices if d.pop == "PSN"}
    without = topo.model_copy(
        update={
            "pops": [p for p in topo.pops if p.name != "PSN"],
            "devices": [d for d in topo.devices if d.pop != "PSN"],
            "links": [lk for lk in topo.links if not {lk.a.device, lk.b.device} & psn],
            "hosts": [h for h in topo.hosts if h.pop != "PSN"],
        }
    )
    with transaction(core4.sessions) as s:
        apply_topology(s, without)
    before = table_dump(core4)
    with pytest.raises(InvalidInput) as info:
        book(core4, settings, small("second", pop="PSN"))
    assert info.value.errors[0].field == "nodes[0].pop"
    assert "unknown PoP 'PSN'" in str(info.value.errors[0])
    assert table_dump(core4) == before
    assert book(core4, settings, small("third", pop="MIL")).slice is not None


def test_a_hop_holds_its_tag_and_its_bandwidth_in_one_row_and_older_rows_still_count(
    core4: Context, settings: Settings
) -> None:
    """Bookings made before November 2026 kept a hop's Mb/s in a 'link-bw' row of its own (the
    tag's row had 0): capacity must still count them."""
    first = book(core4, settings, small("old", vcpu=1))
    assert first.slice is not None
    assert count(core4, ReservationKind.LINK_BANDWIDTH) == 0
    with transaction(core4.sessions) as s:
        rows = s.scalars(select(Reservation).where(Reservation.kind == ReservationKind.LINK_VLAN))
        tagged = list(rows)
        assert tagged and {r.bandwidth_mbps for r in tagged} == {100}
        # Rewrite the booking in the older form, nearly filling each link it crosses.
        for r in tagged:
            r.bandwidth_mbps = 0
            s.add(
                Reservation(
                    slice_id=r.slice_id,
                    kind=ReservationKind.LINK_BANDWIDTH,
                    link_id=r.link_id,
                    bandwidth_mbps=900,
                    start=r.start,
                    end=r.end,
                )
            )
        sl = s.get(Slice, first.slice.id)
        assert sl is not None
        sl.rev = revision.bump(s, revision.CALENDAR)
    second = small("new", vcpu=1)
    second["circuits"][0]["bandwidth_mbps"] = 200
    b = book(core4, settings, second)
    assert b.slice is not None
    old_links = {r.link_id for r in tagged}
    with transaction(core4.read_sessions) as s:
        new_links = set(
            s.scalars(select(Reservation.link_id).where(Reservation.slice_id == b.slice.id))
        )
    assert not old_links & new_links  # routed around the links the older rows fill
    assert violations(core4.engine) == {k: 0 for k in violations(core4.engine)}


def test_a_release_in_this_process_brings_its_calendar_index_up_to_date(
    core4: Context, settings: Settings
) -> None:
    """So the next booking here need not reload the released slice from the database."""
    b = book(core4, settings, small("gone"))
    assert b.slice is not None
    with transaction(core4.sessions) as s:
        sl = s.get(Slice, b.slice.id)
        assert sl is not None
        service.release(s, sl, now=NOW)
    with transaction(core4.sessions) as s:
        index = index_for(s)
        assert index.rev == revision.current(s, revision.CALENDAR)
    assert b.slice.id not in index.by_slice


def test_a_database_that_stays_locked_is_a_503_without_sql(
    core4: Context, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    tries: list[int] = []

    def locked(*args: Any, **kw: Any) -> service.Booked:
        tries.append(1)
        raise OperationalError(
            "UPDATE revisions SET value = value + 1", {}, Exception("database is locked")
        )

    monkeypatch.setattr(service, "book", locked)
    with pytest.raises(ServiceUnavailable) as info:
        service.book_with_retry(core4.sessions, settings, small("x"), now=lambda: NOW, attempts=3)
    assert len(tries) == 3  # a lock may be let go: retried
    problem = info.value.problem()
    assert problem["status"] == 503 and info.value.headers == {"Retry-After": "1"}
    assert "UPDATE" not in problem["detail"] and "revisions" not in problem["detail"]
