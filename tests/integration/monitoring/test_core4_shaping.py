"""Issue 20's "a circuit carrying more than it booked (proves shaping)", on the real
emulated core4: a TCP stream pushed as fast as it goes across a 5 Mb/s circuit. The
devices' per-VLAN rows show the circuit forwarded at most its booking in every polled
period, their shapers' drops appear as the circuit's drops, and no over-booking alarm is
raised: the alarm would say the shaping failed."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator

import pytest

from federica.alarms.service import make_poller
from federica.app import create_app
from federica.context import Context, make_context
from federica.worker import Worker
from tests.accounts import client_as, make_user
from tests.integration.conftest import Facility, needs_root
from tests.integration.monitoring.test_core4_slice_metrics import (
    INTERVAL_S,
    last_answer,
    wait_polled,
    wait_rates,
)
from tests.integration.slice_helpers import (
    address_of,
    book,
    node_namespace,
    run_until,
    show,
    throughput_mbps,
)

pytestmark = [pytest.mark.integration, needs_root]
BOOKED_MBPS = 5
# A shaper lets its burst through at once, and each poll's time is measured with some
# jitter; over STEP that is far below this.
TOLERANCE = 0.10
STEP_S = 4 * INTERVAL_S
TRAFFIC_S = 6 * INTERVAL_S


@pytest.fixture(scope="module")
def monitored(emulated_core4: Facility) -> Context:
    settings = dataclasses.replace(
        emulated_core4.settings, monitor_interval_s=INTERVAL_S, snmp_timeout_s=4.0
    )
    return make_context(settings, engine=emulated_core4.context.engine)


@pytest.fixture(scope="module")
def worker(emulated_core4: Facility) -> Iterator[Worker]:
    w = Worker(emulated_core4.context, name="shaping")
    yield w
    w.stop()


def test_a_circuit_never_forwards_more_than_it_booked(
    emulated_core4: Facility, monitored: Context, worker: Worker
) -> None:
    fac = emulated_core4
    app = create_app(monitored.settings, context=monitored)
    researcher = client_as(
        app, make_user(fac.context, f"sh-{uuid.uuid4().hex[:8]}", projects=["lab"])
    )
    operator = client_as(app, make_user(fac.context, f"sn-{uuid.uuid4().hex[:8]}", "operator"))
    sl = book(
        researcher,
        {
            "name": f"sh-{uuid.uuid4().hex[:6]}",
            "window": {"start": "now", "duration": "1h"},
            "nodes": [
                {"name": "a", "kind": "host", "pop": "PRG"},
                {"name": "b", "kind": "host", "pop": "ERL"},
            ],
            "circuits": [{"name": "ab", "endpoints": ["a", "b"], "bandwidth_mbps": BOOKED_MBPS}],
        },
    )
    poller = make_poller(monitored)
    try:
        run_until(
            worker.run_once,
            lambda: show(researcher, sl["id"])["status"] not in {"scheduled", "provisioning"},
        )
        body = show(researcher, sl["id"])
        assert body["status"] == "active", body["history"]
        hops = body["circuits"][0]["hops"]
        units = [(h["device"], f"{h['port']}.{h['vlan']}") for h in hops]
        devices = sorted({d for d, _ in units})
        poller.start()
        wait_polled(monitored, devices)
        wait_rates(monitored, units, monitored.now(), 1)
        start = min(last_answer(monitored, d) for d in devices)
        got = throughput_mbps(
            node_namespace(fac, body, "a"),
            node_namespace(fac, body, "b"),
            address_of(body, "b", "ab"),
            seconds=TRAFFIC_S,
        )
        wait_rates(monitored, units, monitored.now(), 2)
        poller.stop(timeout=120)
        end = max(last_answer(monitored, d) for d in devices)
        # The stream got (about) the booking: the shaper, not the machine, limited it.
        assert BOOKED_MBPS * 0.5 < got <= BOOKED_MBPS * (1 + TOLERANCE), got
        # Every hop forwarded at most the booking in every period of STEP_S ...
        limit = BOOKED_MBPS * 1e6 * (1 + TOLERANCE)
        busiest = 0.0
        for device, unit in units:
            r = operator.get(
                f"/api/v1/monitoring/devices/{device}/interfaces",
                query_string={
                    "from": start.isoformat(),
                    "to": end.isoformat(),
                    "step": f"{STEP_S:.0f}s",
                    "interface": unit,
                },
            )
            assert r.status_code == 200, r.get_json()
            (iface,) = r.get_json()["interfaces"]
            for p in iface["points"]:
                busiest = max(busiest, p["out_octets_per_s"] * 8)
                assert p["out_octets_per_s"] * 8 <= limit, (device, unit, p)
        # ... and was busy (TRAFFIC_S holds at least one whole period).
        assert busiest > BOOKED_MBPS * 1e6 * 0.6, busiest
        # ... its shapers dropped what TCP pushed beyond it ...
        metrics = researcher.get(
            f"/api/v1/slices/{sl['id']}/metrics",
            query_string={"from": start.isoformat(), "to": end.isoformat(), "step": "1h"},
        ).get_json()
        assert metrics["circuits"][0]["total"]["drops"] > 0, metrics["circuits"][0]
        # ... and no over-booking alarm was raised after any round.
        alarms = operator.get("/api/v1/monitoring/alarms?state=all").get_json()
        assert not [a for a in alarms if a["subject"] == f"s{sl['id']}:ab"], alarms
    finally:
        poller.stop(timeout=120)
        r = researcher.post(f"/api/v1/slices/{sl['id']}/release")
        assert r.status_code in (200, 202), r.get_json()
        run_until(worker.run_once, lambda: show(researcher, sl["id"])["status"] == "ended")
