"""Issue 20's per-slice acceptance on the real emulated core4: a 2-node slice across
prg-erl, a known volume of ICMP pushed across its circuit from inside the nodes'
namespaces, polled over SNMP from the devices' per-VLAN IF-MIB rows; the slice's circuit
volume and rate from GET /slices/{id}/metrics match what the nodes' own interfaces counted
as sent within 5 %, and the link's physical ports agree. The window starts and ends in
idle time between polls, so how late the busy machine schedules a poll changes nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from federica.alarms import service as alarms
from federica.alarms.service import make_poller
from federica.app import create_app
from federica.context import Context, make_context
from federica.monitoring.models import InterfaceRate, MonitoredInterface
from federica.monitoring.poller import Poller, Round
from federica.monitoring.service import Recorder
from federica.substrate.models import Device
from federica.worker import Worker
from tests.accounts import client_as, make_user
from tests.integration.conftest import Facility, needs_root
from tests.integration.slice_helpers import address_of, book, node_namespace, run_until, show

pytestmark = [pytest.mark.integration, needs_root]
INTERVAL_S = 5.0
COUNT, PAYLOAD = 3000, 1400
# VXLAN (8) over UDP (8), IP (20) and Ethernet (14): what a core port adds to each frame.
ENCAPSULATION = 8 + 8 + 20 + 14


@pytest.fixture(scope="module")
def monitored(emulated_core4: Facility) -> Context:
    settings = dataclasses.replace(
        emulated_core4.settings, monitor_interval_s=INTERVAL_S, snmp_timeout_s=4.0
    )
    return make_context(settings, engine=emulated_core4.context.engine)


@pytest.fixture(scope="module")
def worker(emulated_core4: Facility) -> Iterator[Worker]:
    w = Worker(emulated_core4.context, name="slice-metrics")
    yield w
    w.stop()


def answers_after(ctx: Context, device: str, interface: str, after: dt.datetime) -> int:
    with ctx.read_sessions() as s:
        n = s.scalar(
            select(func.count(InterfaceRate.end))
            .join(MonitoredInterface, MonitoredInterface.id == InterfaceRate.interface_id)
            .join(Device, Device.id == MonitoredInterface.device_id)
            .where(
                Device.name == device,
                MonitoredInterface.name == interface,
                InterfaceRate.end > after,
            )
        )
    return n or 0


def wait_rates(ctx: Context, rows: list[tuple[str, str]], after: dt.datetime, n: int) -> None:
    """Until every (device, interface) has `n` rates ending after `after`."""
    deadline = time.monotonic() + n * INTERVAL_S + 120
    while any(answers_after(ctx, d, i, after) < n for d, i in rows):
        assert time.monotonic() < deadline, f"no new rates for some of {rows}"
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


def wait_polled(ctx: Context, devices: list[str]) -> None:
    deadline = time.monotonic() + 3 * INTERVAL_S + 120
    while True:
        with ctx.read_sessions() as s:
            polled = set(
                s.scalars(
                    select(Device.name)
                    .join(MonitoredInterface, MonitoredInterface.device_id == Device.id)
                    .join(InterfaceRate, InterfaceRate.interface_id == MonitoredInterface.id)
                    .where(Device.name.in_(devices))
                )
            )
        if polled >= set(devices):
            return
        assert time.monotonic() < deadline, f"{devices} not polled"
        time.sleep(0.5)


async def poll_once(ctx: Context) -> Round:
    recorder = Recorder(ctx)
    poller = Poller(recorder.targets, lambda _: None, clock=ctx.now)
    try:
        return await poller.poll_round()
    finally:
        poller.close()


def counters(fac: Facility, ns: str, ifname: str) -> dict[str, int]:
    """The node's own interface counters (its kernel's, inside its namespace)."""
    out = {}
    for item in ("tx_bytes", "tx_packets", "rx_bytes", "rx_packets"):
        text = fac.ns_exec(ns, "cat", f"/sys/class/net/{ifname}/statistics/{item}").stdout
        out[item] = int(text.strip())
    return out


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after}


def test_a_slice_s_circuit_rate_matches_what_its_nodes_sent(
    emulated_core4: Facility, monitored: Context, worker: Worker
) -> None:
    fac = emulated_core4
    app = create_app(monitored.settings, context=monitored)
    researcher = client_as(
        app, make_user(fac.context, f"sm-{uuid.uuid4().hex[:8]}", projects=["lab"])
    )
    stranger = client_as(
        app, make_user(fac.context, f"so-{uuid.uuid4().hex[:8]}", projects=["other"])
    )
    operator = client_as(app, make_user(fac.context, f"sn-{uuid.uuid4().hex[:8]}", "operator"))
    # Polling from before the slice exists: its per-VLAN rows appear in the devices'
    # IF-MIB while the poller runs, and it must notice (it caches ifName <-> ifIndex).
    poller = make_poller(monitored)
    poller.start()
    try:
        wait_polled(monitored, ["prg-mx", "erl-mx"])
        sl = book(
            researcher,
            {
                "name": f"sm-{uuid.uuid4().hex[:6]}",
                "window": {"start": "now", "duration": "1h"},
                "nodes": [
                    {"name": "a", "kind": "host", "pop": "PRG"},
                    {"name": "b", "kind": "host", "pop": "ERL"},
                ],
                "circuits": [{"name": "ab", "endpoints": ["a", "b"], "bandwidth_mbps": 100}],
            },
        )
    except BaseException:
        poller.stop(timeout=120)
        raise
    try:
        run_until(
            worker.run_once,
            lambda: show(researcher, sl["id"])["status"] not in {"scheduled", "provisioning"},
        )
        body = show(researcher, sl["id"])
        assert body["status"] == "active", body["history"]
        (circuit,) = body["circuits"]
        hops = circuit["hops"]
        assert {h["link"] for h in hops if h["link"]} == {"prg-erl"}, hops
        units = [(h["device"], f"{h['port']}.{h['vlan']}") for h in hops]
        ns_a, ns_b = node_namespace(fac, body, "a"), node_namespace(fac, body, "b")
        eth_a = next(i["name"] for n in body["nodes"] if n["name"] == "a"
                     for i in n["interfaces"] if i["circuit"] == "ab")  # fmt: skip
        eth_b = next(i["name"] for n in body["nodes"] if n["name"] == "b"
                     for i in n["interfaces"] if i["circuit"] == "ab")  # fmt: skip
        try:
            # The circuit's per-VLAN rows appeared in the devices' IF-MIB after the poller's
            # first look and have a rate each under their names: the poller re-read.
            wait_rates(monitored, units, monitored.now(), 1)
            devices = sorted({d for d, _ in units})
            start = min(last_answer(monitored, d) for d in devices)
            before_a, before_b = counters(fac, ns_a, eth_a), counters(fac, ns_b, eth_b)
            ping = fac.ns_exec(
                ns_a, "ping", "-q", "-c", str(COUNT), "-s", str(PAYLOAD), "-i", "0.002",
                "-W", "5", address_of(body, "b", "ab"),
            )  # fmt: skip
            assert re.search(rf"{COUNT} packets transmitted, {COUNT} received", ping.stdout), ping
            sent_a = delta(counters(fac, ns_a, eth_a), before_a)
            sent_b = delta(counters(fac, ns_b, eth_b), before_b)
            # Two more answers per row: the second was asked for after the first arrived,
            # so after the traffic, and the rate up to it is stored.
            wait_rates(monitored, units, monitored.now(), 2)
        finally:
            poller.stop(timeout=120)
        end = max(last_answer(monitored, d) for d in devices)
        window = {"from": start.isoformat(), "to": end.isoformat(), "step": "1h"}
        r = researcher.get(f"/api/v1/slices/{sl['id']}/metrics", query_string=window)
        assert r.status_code == 200, r.get_json()
        metrics = r.get_json()
        (cm,) = metrics["circuits"]
        assert cm["name"] == "ab" and cm["measured"], cm
        total = cm["total"]
        # What the nodes sent into the circuit (both: requests and replies) is what its
        # edge devices received from them; what they received is what it delivered.
        sent_octets = sent_a["tx_bytes"] + sent_b["tx_bytes"]
        got_octets = sent_a["rx_bytes"] + sent_b["rx_bytes"]
        assert sent_octets >= 2 * COUNT * (PAYLOAD + 42)
        assert total["rx_octets"] == pytest.approx(sent_octets, rel=0.05), (total, sent_a, sent_b)
        assert total["tx_octets"] == pytest.approx(got_octets, rel=0.05), (total, sent_a, sent_b)
        assert total["rx_packets"] == pytest.approx(
            sent_a["tx_packets"] + sent_b["tx_packets"], rel=0.05
        )
        # The rate over the window is that volume over the time the window covers.
        # Each edge device's rates cover the window from its own answers' times: short of
        # it by how much later than the other that device answered (well under a poll
        # interval, even late), with no gap in them.
        covered = (end - start).total_seconds()
        assert covered - 2 * INTERVAL_S < total["covered_s"] <= covered + 0.01, total
        assert total["rx_bps"] == pytest.approx(
            total["rx_octets"] * 8 / total["covered_s"], rel=1e-6
        )
        # Every hop carried both directions: each VLAN unit saw the nodes' frames.
        one_way = sent_a["tx_bytes"]
        for hop in cm["hops"]:
            assert hop["polled"], hop
            assert hop["rx_octets"] + hop["tx_octets"] == pytest.approx(sent_octets, rel=0.05)
            assert min(hop["rx_octets"], hop["tx_octets"]) == pytest.approx(one_way, rel=0.05)
        # The link's physical ports carried the same frames, each inside VXLAN.
        links = operator.get("/api/v1/monitoring/links/prg-erl", query_string=window).get_json()
        packets = sent_a["tx_packets"] + sent_b["tx_packets"]
        for end_ in links["ends"]:
            volume = sum(
                (p["in_octets_per_s"] + p["out_octets_per_s"]) * p["covered_s"]
                for p in end_["points"]
            )
            assert volume == pytest.approx(sent_octets + packets * ENCAPSULATION, rel=0.05), end_
        # The nodes were sampled, alive, with their memory counted.
        nodes = {n["name"]: n for n in metrics["nodes"]}
        assert set(nodes) == {"a", "b"}
        for n in nodes.values():
            assert n["health"] == "running", n
            assert n["points"] and n["points"][0]["samples"] >= 1, n
        # Another project's researcher learns nothing; an inverted window is refused.
        assert stranger.get(f"/api/v1/slices/{sl['id']}/metrics").status_code == 404
        bad = researcher.get(
            f"/api/v1/slices/{sl['id']}/metrics",
            query_string={"from": end.isoformat(), "to": start.isoformat()},
        )
        assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "from"
        # Prometheus: the circuit's counters under {slice, project, circuit}.
        text = operator.get("/metrics").get_data(as_text=True)
        series = {
            (s.name, s.labels.get("slice"), s.labels.get("circuit"))
            for fam in text_string_to_metric_families(text)
            for s in fam.samples
        }
        assert ("federica_circuit_receive_bytes_total", body["name"], "ab") in series
        # The circuit stayed within its booking: no over-booking alarm. Node b dies (its
        # namespace goes): sampled on its V-node, a node-died alarm names it and the slice.
        alarms.check(monitored)
        subprocess.run(["ip", "netns", "delete", ns_b], check=True)
        Recorder(monitored).sample_nodes()
        alarms.check(monitored)
        mine = researcher.get("/api/v1/monitoring/alarms").get_json()
        subjects = {(a["kind"], a["subject"]) for a in mine}
        assert ("circuit-over-booking", f"s{sl['id']}:ab") not in subjects, mine
        died = next(a for a in mine if a["subject"] == f"s{sl['id']}:b")
        assert died["kind"] == "node-died" and died["slices"][0]["id"] == sl["id"], died
        assert stranger.get(f"/api/v1/monitoring/alarms/{died['id']}").status_code == 404
    finally:
        poller.stop(timeout=120)  # if it still runs (a failure before the traffic)
        r = researcher.post(f"/api/v1/slices/{sl['id']}/release")
        assert r.status_code in (200, 202), r.get_json()
        run_until(worker.run_once, lambda: show(researcher, sl["id"])["status"] == "ended")
    # The slice is gone: its node's alarm clears, its VLAN rows left the devices' IF-MIB.
    alarms.check(monitored)
    left = researcher.get("/api/v1/monitoring/alarms").get_json()
    assert not [a for a in left if a["subject"].startswith(f"s{sl['id']}:")], left
    rnd = asyncio.run(poll_once(monitored))
    listed = {(x.device, i.name) for x in rnd.samples for i in x.interfaces}
    assert {d for d, _ in listed} >= {"prg-mx", "erl-mx"}, rnd.failures
    assert not set(units) & listed, listed
