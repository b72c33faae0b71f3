"""The datastore on the real emulated core4: a slice across prg-erl, ICMP across its
circuit, the poller polling the devices' snmpd; /data/ for the link's two ports gives the
poller's stored raw rates with µs timestamps, accounting for the traffic, and the slice's
per-VLAN interfaces and circuit are schema-valid objects for the slice's project; /data/
for each per-VLAN interface of the circuit gives the rates GET /slices/{id}/metrics gives
for the same spans, and the slice's V-nodes have CPU, memory and availability series."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from federica.app import create_app
from federica.context import Context, make_context
from federica.db import transaction
from federica.federation import identity
from federica.gmoc import collectors
from federica.gmoc.objects import us
from federica.monitoring.models import RAW, InterfaceRate, MonitoredInterface
from federica.monitoring.rollup import EPOCH
from federica.monitoring.service import make_poller
from federica.substrate.models import Device
from federica.web.gmoc import create_gmoc_app
from federica.worker import Worker
from tests.accounts import client_as, make_user
from tests.gmoc_schemas import check
from tests.integration.conftest import Facility, needs_root
from tests.integration.monitoring.test_core4_rates import (
    ON_THE_WIRE,
    last_answer,
    release,
    wait_answers,
)
from tests.integration.slice_helpers import address_of, book, node_namespace, run_until, show

pytestmark = [pytest.mark.integration, needs_root]
INTERVAL_S = 5.0
COUNT, PAYLOAD = 1500, 1400


@pytest.fixture(scope="module")
def monitored(emulated_core4: Facility) -> Context:
    settings = dataclasses.replace(
        emulated_core4.settings, monitor_interval_s=INTERVAL_S, snmp_timeout_s=4.0
    )
    if not identity.files_in(settings.data_dir).facility.exists():
        identity.init(
            settings.data_dir, "core4", "core4.example", hosts=["127.0.0.1"],
            now=emulated_core4.context.now(),
        )  # fmt: skip
    return make_context(settings, engine=emulated_core4.context.engine)


@pytest.fixture(scope="module")
def worker(emulated_core4: Facility) -> Iterator[Worker]:
    w = Worker(emulated_core4.context, name="gmoc")
    yield w
    w.stop()


def iso(ts_us: int) -> str:
    return (EPOCH + dt.timedelta(microseconds=ts_us)).isoformat()


def raw_rates(
    ctx: Context, device: str, port: str, lo: Any, hi: Any
) -> list[tuple[int, float, float]]:
    """(start µs, in octets/s, span s) of the port's raw rates overlapping [lo, hi)."""
    with ctx.read_sessions() as s:
        rows = s.execute(
            select(InterfaceRate.start, InterfaceRate.end, InterfaceRate.in_octets)
            .join(MonitoredInterface, MonitoredInterface.id == InterfaceRate.interface_id)
            .join(Device, Device.id == MonitoredInterface.device_id)
            .where(Device.name == device, MonitoredInterface.name == port)
            .where(
                InterfaceRate.resolution_s == RAW, InterfaceRate.end > lo, InterfaceRate.start < hi
            )
            .order_by(InterfaceRate.start)
        ).all()
    return [(us(a), v, (b - a).total_seconds()) for a, b, v in rows if v is not None]


def test_data_of_the_link_ports_is_the_poller_s_rates_of_the_traffic(
    emulated_core4: Facility, monitored: Context, worker: Worker
) -> None:
    fac = emulated_core4
    project = f"g{uuid.uuid4().hex[:6]}"
    app = create_app(monitored.settings, context=monitored)
    researcher = client_as(
        app, make_user(fac.context, f"gm-{uuid.uuid4().hex[:8]}", projects=[project])
    )
    with transaction(monitored.sessions) as s:
        whole = collectors.add(
            s, f"all-{project}", cert_name=None, token=True, project=None, users=False
        ).token
        mine = collectors.add(
            s, f"p-{project}", cert_name=None, token=True, project=project, users=False
        ).token
    gmoc = create_gmoc_app(monitored).test_client()

    def get(token: str | None, path: str, **query: str) -> Any:
        r = gmoc.get(path, query_string=query, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.get_json()
        return r.get_json()

    sl = book(
        researcher,
        {
            "name": f"gm-{uuid.uuid4().hex[:6]}",
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
        poller = make_poller(monitored)
        poller.start()
        try:
            devices = [h["device"] for h in core]
            wait_answers(monitored, devices, monitored.now(), 1)
            start = min(last_answer(monitored, d) for d in devices)
            ping = fac.ns_exec(
                node_namespace(fac, body, "a"),
                "ping", "-q", "-c", str(COUNT), "-s", str(PAYLOAD), "-i", "0.002", "-W", "5",
                address_of(body, "b", "ab"),
            )  # fmt: skip
            assert re.search(rf"{COUNT} packets transmitted, {COUNT} received", ping.stdout), ping
            wait_answers(monitored, devices, monitored.now(), 2)
        finally:
            poller.stop(timeout=120)
        end = max(last_answer(monitored, d) for d in devices)
        ts = {"gte": us(start), "lt": us(end)}
        # Whatever identity the facility has: an earlier test on the same emulated core4
        # (the AM API's) may have made it under another authority.
        authority = identity.load(monitored.settings.data_dir).authority
        sent = COUNT * ON_THE_WIRE
        for hop in core:
            iface = f"{authority}_interface_{hop['device']}:{hop['port']}"
            obj_filter = {"type": "interface", "id": [iface]}
            q = {"filters": {"eventType": ["ops_monitoring:rx_bps"], "obj": obj_filter, "ts": ts}}
            (rx,) = [check(a) for a in get(whole, "/data/", q=json.dumps(q))]
            stored = raw_rates(monitored, hop["device"], hop["port"], start, end)
            inside = [(t, v, span) for t, v, span in stored if ts["gte"] <= t < ts["lt"]]
            assert [(p["ts"], p["v"]) for p in rx["tsdata"]] == [(t, v * 8) for t, v, _ in inside]
            received = sum(v * span for _, v, span in inside)
            assert received == pytest.approx(sent, rel=0.05), (hop, received, sent)
            # The one-project collector reads the slice's per-VLAN interface on that port
            # (a schema-valid object), not the physical port's traffic.
            vlan = f"{iface}:{hop['vlan']}"
            obj = check(get(mine, f"/info/interfacevlan/{vlan}"))
            assert obj["tag"] == hop["vlan"]
            q["filters"]["obj"] = {"type": "interface", "id": [iface]}
            assert get(mine, "/data/", q=json.dumps(q)) == []
            q["filters"]["obj"] = {"type": "interfacevlan", "id": [vlan]}
            (series,) = [check(a) for a in get(mine, "/data/", q=json.dumps(q))]
            assert all(ts["gte"] <= p["ts"] < ts["lt"] for p in series["tsdata"])
        link = check(get(mine, f"/info/link/{authority}_link_slice{sl['id']}-ab"))
        assert len(link["endpoints"]) >= 2
        # Every hop's per-VLAN interface, as the project's collector reads it, is the
        # poller's rates, the same the slice's metrics API gives: asked for each rate's
        # span alone, that API's volume over its covered time is the rate.
        window = {"gte": us(start), "lt": us(end)}
        metrics_ = [f"{d}_{u}" for u in ("bps", "pps") for d in ("rx", "tx")]
        for hop in circuit["hops"]:
            vlan = f"{authority}_interface_{hop['device']}:{hop['port']}:{hop['vlan']}"
            q = {
                "filters": {
                    "eventType": [f"ops_monitoring:{m}" for m in metrics_],
                    "obj": {"type": "interfacevlan", "id": [vlan]},
                    "ts": window,
                }
            }
            series = {a["id"].split(":", 1)[0]: check(a)["tsdata"]
                      for a in get(mine, "/data/", q=json.dumps(q))}  # fmt: skip
            assert set(series) == set(metrics_), series
            unit = f"{hop['port']}.{hop['vlan']}"
            polled = [t for t, _, _ in raw_rates(monitored, hop["device"], unit, start, end)]
            starts = [p["ts"] for p in series["rx_bps"]]
            assert starts and all(type(t) is int for t in starts), series["rx_bps"]
            assert starts == [t for t in polled if window["gte"] <= t < window["lt"]]
            for k, t in enumerate(starts):
                upto = starts[k + 1] if k + 1 < len(starts) else us(end)
                span = {"from": iso(t), "to": iso(upto), "step": "1h"}
                r = researcher.get(f"/api/v1/slices/{sl['id']}/metrics", query_string=span)
                assert r.status_code == 200, r.get_json()
                (cm,) = r.get_json()["circuits"]
                (h,) = [x for x in cm["hops"] if (x["device"], x["port"], x["vlan"])
                        == (hop["device"], hop["port"], hop["vlan"])]  # fmt: skip
                assert h["polled"] and h["covered_s"] > 0, h
                # covered_s is given to the ms: the rate it gives back is that exact.
                rel = 0.0006 / h["covered_s"] + 1e-9
                for name, volume, factor in (
                    ("rx_bps", "rx_octets", 8), ("tx_bps", "tx_octets", 8),
                    ("rx_pps", "rx_packets", 1), ("tx_pps", "tx_packets", 1),
                ):  # fmt: skip
                    got = series[name][k]
                    assert got["ts"] == t
                    expected = h[volume] * factor / h["covered_s"]
                    assert got["v"] == pytest.approx(expected, rel=rel), (hop, name, k, h)
            # The ping flood went through every hop in both directions.
            assert max(p["v"] for p in series["rx_pps"]) > 0
            assert max(p["v"] for p in series["tx_pps"]) > 0
        # The slice's V-nodes (its sliver's node resources): CPU and memory of the nodes
        # on them and their availability, as the poller sampled them during the traffic.
        sliver = check(get(whole, f"/info/sliver/{authority}_sliver_{sl['id']}"))
        hosts = [r["href"].rsplit("/", 1)[1] for r in sliver["resources"]
                 if r["resource_type"] == "node"]  # fmt: skip
        assert len(hosts) == 2, sliver
        events = ["cpu_util", "mem_used_kb", "is_available"]
        q = {
            "filters": {
                "eventType": [f"ops_monitoring:{e}" for e in events],
                "obj": {"type": "node", "id": hosts},
                "ts": window,
            }
        }
        answer = [check(a) for a in get(whole, "/data/", q=json.dumps(q))]
        assert len(answer) == 6, answer
        for a in answer:
            values = [p["v"] for p in a["tsdata"]]
            assert values and all(type(p["ts"]) is int for p in a["tsdata"]), a
            if a["eventType"].endswith("mem_used_kb"):
                # The nodes' cgroups' memory (0 when no process runs in a namespace node).
                assert all(type(v) is int and v >= 0 for v in values), a
            elif a["eventType"].endswith("cpu_util"):
                assert all(v >= 0 for v in values), a
            else:
                assert set(values) == {1}, a
    finally:
        release(researcher, worker, sl["id"])
