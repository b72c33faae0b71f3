"""Acceptance of the poller on the real emulated core4: a 2-node slice across prg-erl,
a known volume of ICMP sent across its circuit, and the stored rates of the link's two
ports (polled over SNMP from the devices' snmpd) account for it within 5 %."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from federica.app import create_app
from federica.context import Context, make_context
from federica.monitoring.models import InterfaceRate, MonitoredInterface
from federica.monitoring.poller import V3
from federica.monitoring.service import Recorder, make_poller
from federica.substrate.models import Device
from federica.worker import Worker
from tests.accounts import client_as, make_user
from tests.integration.conftest import Facility, needs_root
from tests.integration.slice_helpers import (
    address_of,
    book,
    node_namespace,
    run_until,
    show,
)

pytestmark = [pytest.mark.integration, needs_root]
INTERVAL_S = 5.0
COUNT, PAYLOAD = 3000, 1400
# On a core link's port each ICMP packet is an inner frame (Ethernet 14 + IP 20 + ICMP 8 +
# payload) inside VXLAN (8) over UDP (8), IP (20) and Ethernet (14): the emulator's wires.
ON_THE_WIRE = PAYLOAD + 8 + 20 + 14 + 8 + 8 + 20 + 14


@pytest.fixture(scope="module")
def monitored(emulated_core4: Facility) -> Context:
    """The facility's database with a short polling interval and generous timeouts."""
    settings = dataclasses.replace(
        emulated_core4.settings, monitor_interval_s=INTERVAL_S, snmp_timeout_s=4.0
    )
    return make_context(settings, engine=emulated_core4.context.engine)


@pytest.fixture(scope="module")
def worker(emulated_core4: Facility) -> Iterator[Worker]:
    w = Worker(emulated_core4.context, name="monitoring")
    yield w
    w.stop()


def release(client: FlaskClient, worker: Worker, slice_id: int) -> None:
    r = client.post(f"/api/v1/slices/{slice_id}/release")
    assert r.status_code in (200, 202), r.get_json()
    run_until(worker.run_once, lambda: show(client, slice_id)["status"] == "ended")


def answers_after(ctx: Context, device: str, after: dt.datetime) -> int:
    """The device's answers after `after` that gave rates."""
    with ctx.read_sessions() as s:
        n = s.scalar(
            select(func.count(func.distinct(InterfaceRate.end)))
            .join(MonitoredInterface, MonitoredInterface.id == InterfaceRate.interface_id)
            .join(Device, Device.id == MonitoredInterface.device_id)
            .where(Device.name == device, InterfaceRate.end > after)
        )
    return n or 0


def wait_answers(ctx: Context, devices: list[str], after: dt.datetime, n: int) -> None:
    """Until every device gave `n` answers with rates after `after`."""
    deadline = time.monotonic() + n * INTERVAL_S + 120
    while any(answers_after(ctx, d, after) < n for d in devices):
        assert time.monotonic() < deadline, "the poller stored no new rates"
        time.sleep(0.5)


def last_answer(ctx: Context, device: str) -> dt.datetime:
    with ctx.read_sessions() as s:
        at = s.scalar(
            select(func.max(InterfaceRate.end))
            .join(MonitoredInterface, MonitoredInterface.id == InterfaceRate.interface_id)
            .join(Device, Device.id == MonitoredInterface.device_id)
            .where(Device.name == device)
        )
    assert at is not None
    return at


def stored_spans(ctx: Context, device: str, port: str, after: dt.datetime) -> list[str]:
    """The port's raw rates from `after` on, to show where a hole is."""
    with ctx.read_sessions() as s:
        rows = s.execute(
            select(InterfaceRate.resolution_s, InterfaceRate.start, InterfaceRate.end)
            .join(MonitoredInterface, MonitoredInterface.id == InterfaceRate.interface_id)
            .join(Device, Device.id == MonitoredInterface.device_id)
            .where(Device.name == device, MonitoredInterface.name == port)
            .where(InterfaceRate.end > after)
            .order_by(InterfaceRate.start)
        ).all()
    return [f"{r}s {a.time()}-{b.time()}" for r, a, b in rows]


def volume(body: dict[str, Any], device: str, port: str) -> tuple[float, float, float]:
    """Octets in and out over the answer's window, and the seconds with data."""
    end = next(e for e in body["ends"] if (e["device"], e["port"]) == (device, port))
    points = end["points"]
    return (
        sum(p["in_octets_per_s"] * p["covered_s"] for p in points),
        sum(p["out_octets_per_s"] * p["covered_s"] for p in points),
        sum(p["covered_s"] for p in points),
    )


def test_a_known_volume_across_a_circuit_is_in_the_link_s_port_rates(
    emulated_core4: Facility, monitored: Context, worker: Worker
) -> None:
    fac = emulated_core4
    app = create_app(monitored.settings, context=monitored)
    researcher = client_as(
        app, make_user(fac.context, f"mon-{uuid.uuid4().hex[:8]}", projects=["lab"])
    )
    operator: FlaskClient = client_as(
        app, make_user(fac.context, f"noc-{uuid.uuid4().hex[:8]}", "operator")
    )
    sl = book(
        researcher,
        {
            "name": f"mon-{uuid.uuid4().hex[:6]}",
            "window": {"start": "now", "duration": "1h"},
            "nodes": [
                {"name": "a", "kind": "host", "pop": "PRG"},
                {"name": "b", "kind": "host", "pop": "ERL"},
            ],
            "circuits": [{"name": "ab", "endpoints": ["a", "b"], "bandwidth_mbps": 100}],
        },
    )
    try:
        run_until(
            worker.run_once,
            lambda: show(researcher, sl["id"])["status"] not in {"scheduled", "provisioning"},
        )
        body = show(researcher, sl["id"])
        assert body["status"] == "active", body["history"]
        (circuit,) = body["circuits"]
        core = [h for h in circuit["hops"] if h["link"] is not None]
        assert {h["link"] for h in core} == {"prg-erl"}, circuit["hops"]
        # The emulated agents are polled with SNMPv3 authPriv (the facility's own user).
        assert all(isinstance(t.auth, V3) for t in Recorder(monitored).targets())
        poller = make_poller(monitored)
        poller.start()
        try:
            devices = [h["device"] for h in core]
            wait_answers(monitored, devices, monitored.now(), 1)
            # From the devices' last answers before the traffic: no stored rate spans it.
            start = min(last_answer(monitored, h["device"]) for h in core)
            ping = fac.ns_exec(
                node_namespace(fac, body, "a"),
                "ping", "-q", "-c", str(COUNT), "-s", str(PAYLOAD), "-i", "0.002", "-W", "5",
                address_of(body, "b", "ab"),
            )  # fmt: skip
            assert re.search(rf"{COUNT} packets transmitted, {COUNT} received", ping.stdout), ping
            # Two more answers from each device: the second was asked for after the first
            # arrived, so after the traffic ended, and the rate up to it is stored.
            wait_answers(monitored, devices, monitored.now(), 2)
        finally:
            poller.stop(timeout=120)
        # Up to the last answer: the window starts and ends in idle time, so cutting a
        # rate's span at either end loses nothing.
        end = max(last_answer(monitored, h["device"]) for h in core)
        r = operator.get(
            "/api/v1/monitoring/links/prg-erl",
            query_string={"from": start.isoformat(), "to": end.isoformat(), "step": "1h"},
        )
        assert r.status_code == 200, r.get_json()
        sent = COUNT * ON_THE_WIRE
        for hop in core:
            got_in, got_out, covered = volume(r.get_json(), hop["device"], hop["port"])
            # Each device's answers have their own times: its rates cover the window up to
            # its own last answer, without a hole.
            polled = (last_answer(monitored, hop["device"]) - start).total_seconds()
            assert covered == pytest.approx(polled, abs=0.01), (
                "a poll was lost",
                stored_spans(monitored, hop["device"], hop["port"], start),
            )
            # Requests one way, replies (the same size) the other: both directions carry it.
            assert got_in == pytest.approx(sent, rel=0.05), (hop, got_in, sent)
            assert got_out == pytest.approx(sent, rel=0.05), (hop, got_out, sent)
    finally:
        release(researcher, worker, sl["id"])
