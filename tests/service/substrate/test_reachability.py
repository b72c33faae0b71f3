"""What the controller last saw of each device: recorded by the worker's pool and by
`federica device check`, shown by the substrate API; kept across a topology re-apply."""

from __future__ import annotations

import datetime as dt

import pytest
from flask.testing import FlaskClient

from federica.clock import MovableClock
from federica.context import Context
from federica.db import transaction
from federica.substrate import reachability
from tests.conftest import EXAMPLES
from tests.helpers import load_file


@pytest.fixture
def loaded(db: Context) -> Context:
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    return db


def test_a_mark_moves_only_when_the_state_changes(loaded: Context) -> None:
    clock = MovableClock(dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC))
    record = reachability.Recorder(loaded.sessions, "worker", clock.now)
    record("prg-mx", False, "commit: no answer in time")
    with transaction(loaded.read_sessions) as s:
        first = reachability.states(s)["prg-mx"]
    assert (first.reachable, first.reason, first.seen_by, first.since) == (
        False,
        "commit: no answer in time",
        "worker",
        clock.now(),
    )
    clock.advance(dt.timedelta(seconds=30))
    record("prg-mx", False, "connect: no NETCONF session within 10 s")
    record("erl-mx", True)
    with transaction(loaded.read_sessions) as s:
        seen = reachability.states(s)
    assert seen["prg-mx"].since == first.since
    assert seen["prg-mx"].reason == "connect: no NETCONF session within 10 s"
    assert seen["erl-mx"].reachable and set(seen) == {"prg-mx", "erl-mx"}
    clock.advance(dt.timedelta(seconds=30))
    record("prg-mx", True)
    with transaction(loaded.read_sessions) as s:
        back = reachability.states(s)["prg-mx"]
    assert back.reachable and back.since == clock.now() and back.reason == ""
    record("no-such-device", False, "whatever")  # removed meanwhile: ignored


def test_the_api_shows_each_devices_reachability(loaded: Context, client: FlaskClient) -> None:
    item = client.get("/api/v1/substrate/devices/psn-mx").get_json()
    assert item["reachability"] == {"state": "unknown"}
    reachability.Recorder(loaded.sessions, "device check", loaded.now)("psn-mx", False, "refused")
    item = client.get("/api/v1/substrate/devices/psn-mx").get_json()
    assert item["reachability"]["state"] == "unreachable"
    assert item["reachability"]["reason"] == "refused"
    assert item["reachability"]["seen_by"] == "device check"
    listing = client.get("/api/v1/substrate/devices").get_json()
    assert {d["name"]: d["reachability"]["state"] for d in listing} == {
        "prg-mx": "unknown",
        "erl-mx": "unknown",
        "mil-mx": "unknown",
        "psn-mx": "unreachable",
    }
    # Re-applying the topology (the inventory) leaves the runtime state alone.
    load_file(loaded, EXAMPLES / "topologies" / "core4.yaml")
    item = client.get("/api/v1/substrate/devices/psn-mx").get_json()
    assert item["reachability"]["state"] == "unreachable"
