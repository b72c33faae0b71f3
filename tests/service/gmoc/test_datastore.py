"""The GMOC datastore on a real database: every object conforms to the published GENI
schemas and links its neighbours; /data/ gives the stored rates with µs timestamps;
collectors, researchers and strangers each see what they may."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from federica.db import transaction
from federica.federation import identity
from federica.gmoc import collectors
from federica.gmoc.objects import us
from federica.monitoring import queries
from federica.substrate.models import ComputeHost
from federica.web.gmoc import CLIENT_CERT
from tests.gmoc_facility import AUTHORITY, NODE_CORES, NODE_MEMORY, T0, Facility, client
from tests.gmoc_schemas import check

TEN_MIN_US = 600 * 1_000_000


def collector(f: Facility, name: str, **kw: Any) -> str:
    with transaction(f.ctx.sessions) as s:
        added = collectors.add(
            s,
            name,
            cert_name=kw.get("cert_name"),
            token=True,
            project=kw.get("project"),
            users=kw.get("users", False),
        )
    assert added.token is not None
    return added.token


def get(c: FlaskClient, token: str, href: str, status: int = 200) -> dict[str, Any]:
    path = urlsplit(href).path if href.startswith("http") else href
    r = c.get(unquote(path), headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == status, (href, r.get_json())
    body: dict[str, Any] = r.get_json()
    return check(body) if status == 200 else body


def data(c: FlaskClient, token: str, q: Any, status: int = 200) -> Any:
    raw = q if isinstance(q, str) else json.dumps(q)
    r = c.get("/data/", query_string={"q": raw}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == status, r.get_json()
    if status != 200:
        return r.get_json()
    # Every series conforms; the datastore's own encoder wrote what the standard
    # library's compact encoder would (data.encode).
    answer = [check(a) for a in r.get_json()]
    assert r.data == (json.dumps(answer, separators=(",", ":")) + "\n").encode()
    return answer


def vlan_id(device: str, port: str, tag: int) -> str:
    return f"{AUTHORITY}_interface_{device}:{port}:{tag}"


def window(**bounds: int) -> dict[str, int]:
    return bounds or {"gte": us(T0), "lt": us(T0) + TEN_MIN_US}


def test_every_object_conforms_to_the_schemas_and_links_its_neighbours(
    facility: Facility,
) -> None:
    c = client(facility)
    token = collector(facility, "gmoc", users=True)
    seen: dict[str, dict[str, Any]] = {}

    def walk(href: str) -> dict[str, Any]:
        if href not in seen:
            obj = check(get(c, token, href))
            assert obj["selfRef"] == href and isinstance(obj["ts"], int)
            seen[href] = obj
        return seen[href]

    ops = walk("http://localhost/info/opsconfig/fed")
    assert ops["aggregatestores"][0]["urn"] == f"urn:publicid:IDN+{AUTHORITY}+authority+am"
    agg = walk(ops["aggregatestores"][0]["href"])
    assert agg["measRef"] == "http://localhost/data/"
    for res in agg["resources"]:
        obj = walk(res["href"])
        assert obj["urn"] == res["urn"]
        for iface in obj.get("interfaces", []):
            walk(iface["href"])
        for end in obj.get("endpoints", []):
            end_obj = walk(end["href"])
            if "tag" in end_obj:
                walk(end_obj["interface"]["href"])
    assert len(agg["slivers"]) == 2
    for ref in agg["slivers"]:
        sliver = walk(ref["href"])
        assert walk(sliver["aggregate"]["href"]) is agg
        for res in sliver["resources"]:
            walk(res["href"])
    auth = walk(ops["authorities"][0]["href"])
    for ref in auth["slices"]:
        sl = walk(ref["href"])
        assert {m["role"] for m in sl["members"]} >= {"owner"}
        for m in sl["members"]:
            assert walk(m["href"])["urn"] == m["urn"]
    kinds = {o["$schema"].rsplit("/", 1)[1] for o in seen.values()}
    assert kinds == {
        "opsconfig#",
        "aggregate#",
        "node#",
        "interface#",
        "interfacevlan#",
        "link#",
        "sliver#",
        "slice#",
        "authority#",
        "user#",
    }
    # Every per-VLAN interface the slices hold is reachable from a circuit.
    vlans = {o["id"] for o in seen.values() if "tag" in o}
    held = {vlan_id(*v) for vs in facility.vlans.values() for v in vs}
    assert vlans == held


def test_data_of_a_per_vlan_interface_is_the_stored_rates_in_us(facility: Facility) -> None:
    c = client(facility)
    token = collector(facility, "gmoc")
    device, port, tag = facility.vlans["p1"][0]
    q = {
        "filters": {
            "eventType": ["ops_monitoring:rx_bps", "ops_monitoring:tx_pps"],
            "obj": {"type": "interfacevlan", "id": [vlan_id(device, port, tag)]},
            "ts": window(),
        }
    }
    answer = data(c, token, q)
    for item in answer:
        check(item)
    by_type = {a["eventType"]: a for a in answer}
    assert set(by_type) == {"ops_monitoring:rx_bps", "ops_monitoring:tx_pps"}
    rx = by_type["ops_monitoring:rx_bps"]
    assert rx["id"] == f"rx_bps:{vlan_id(device, port, tag)}"
    assert unquote(rx["subject"]).endswith(f"/info/interfacevlan/{vlan_id(device, port, tag)}")
    assert [p["ts"] for p in rx["tsdata"]] == [us(T0) + i * 30_000_000 for i in range(20)]
    assert all(p["v"] == pytest.approx(100 * tag * 8) for p in rx["tsdata"])
    assert all(p["v"] == pytest.approx(10) for p in by_type["ops_monitoring:tx_pps"]["tsdata"])
    # The same numbers the operators' monitoring API gives for that logical unit.
    window_ = queries.Window(T0, T0 + dt.timedelta(minutes=10), 30)
    with facility.ctx.read_sessions() as s:
        mine = queries.device_interfaces(
            s, device, window_, facility.ctx.now(), facility.ctx.settings, f"{port}.{tag}"
        )
    points = mine["interfaces"][0]["points"]
    assert [p["in_octets_per_s"] * 8 for p in points] == pytest.approx(
        [p["v"] for p in rx["tsdata"]]
    )
    # Bounds are exact: gt excludes the first step, lte includes the last start.
    q["filters"]["ts"] = {"gt": us(T0), "lte": us(T0) + 60_000_000}
    rx = {a["eventType"]: a for a in data(c, token, q)}["ops_monitoring:rx_bps"]
    assert [p["ts"] for p in rx["tsdata"]] == [us(T0) + 30_000_000, us(T0) + 60_000_000]


def test_physical_interfaces_nodes_and_the_aggregate(facility: Facility) -> None:
    c = client(facility)
    token = collector(facility, "gmoc")
    iface = f"{AUTHORITY}_interface_prg-mx:ge-0/0/0"
    answer = data(
        c,
        token,
        {
            "filters": {
                "eventType": ["ops_monitoring:rx_bps", "ops_monitoring:tx_bps"],
                "obj": {"type": "interface", "id": [iface, f"{AUTHORITY}_interface_no:such"]},
                "ts": window(),
            }
        },
    )
    by_type = {check(a)["eventType"]: a for a in answer}
    assert {p["v"] for p in by_type["ops_monitoring:rx_bps"]["tsdata"]} == {8000}
    assert {p["v"] for p in by_type["ops_monitoring:tx_bps"]["tsdata"]} == {24000}
    for kind, obj_id in (("node", f"{AUTHORITY}_node_prg-mx"), ("aggregate", "fed")):
        q = {
            "filters": {
                "eventType": ["ops_monitoring:is_available", "ops_monitoring:cpu_util"],
                "obj": {"type": kind, "id": [obj_id]},
                "ts": window(),
            }
        }
        (avail,) = [check(a) for a in data(c, token, q)]
        assert avail["eventType"] == "ops_monitoring:is_available"
        assert [p["v"] for p in avail["tsdata"]] == [1] * 20


def test_v_nodes_cpu_memory_and_availability_from_their_nodes_samples(
    facility: Facility,
) -> None:
    c = client(facility)
    token = collector(facility, "gmoc")
    # The V-nodes a running slice's sliver names (one node of it on each).
    sliver = get(c, token, f"/info/sliver/{AUTHORITY}_sliver_{facility.slices['p1']}")
    hosts = [unquote(r["href"]).rsplit("/", 1)[1] for r in sliver["resources"]
             if r["resource_type"] == "node"]  # fmt: skip
    assert len(hosts) == 2
    for host in hosts:
        node = get(c, token, f"/info/node/{host}")
        assert {m["metric"] for m in node["reported_metrics"]} == {
            "cpu_util", "mem_used_kb", "is_available"
        }  # fmt: skip
    events = ["cpu_util", "mem_used_kb", "is_available"]
    q = {
        "filters": {
            "eventType": [f"ops_monitoring:{e}" for e in events],
            "obj": {"type": "node", "id": hosts},
            "ts": window(),
        }
    }
    answer = data(c, token, q)
    assert {(a["id"].split(":", 1)[1], a["eventType"]) for a in answer} == {
        (h, f"ops_monitoring:{e}") for h in hosts for e in events
    }
    with facility.ctx.read_sessions() as s:
        cores = {h.name: h.cpu_cores for h in s.scalars(select(ComputeHost))}
    polls = [us(T0) + i * 30_000_000 for i in range(20)]
    for a in answer:
        host = a["id"].split(":", 1)[1].removeprefix(f"{AUTHORITY}_node_")
        points = [(p["ts"], p["v"]) for p in a["tsdata"]]
        if a["eventType"].endswith("cpu_util"):
            # Percent of the V-node's cores: none known at the first sampling.
            share = 100 * NODE_CORES / cores[host]
            assert points == [(t, pytest.approx(share)) for t in polls[1:]], a
        elif a["eventType"].endswith("mem_used_kb"):
            assert points == [(t, NODE_MEMORY // 1024) for t in polls], a
        else:
            assert points == [(t, 1) for t in polls], a
    # Over three days the step is 5 minutes: the samplings' mean at each step's start.
    q["filters"]["ts"] = {"gte": us(T0) - 2 * 86400 * 10**6, "lt": us(T0) + 86400 * 10**6}
    by_id = {a["id"]: a for a in data(c, token, q)}
    host = hosts[0]
    mem = by_id[f"mem_used_kb:{host}"]["tsdata"]
    steps = [us(T0) + k * 300 * 10**6 for k in range(3)]  # the 21 samplings' steps
    assert [(p["ts"], p["v"]) for p in mem] == [(t, NODE_MEMORY // 1024) for t in steps]
    cpu = by_id[f"cpu_util:{host}"]["tsdata"]
    assert [p["ts"] for p in cpu] == steps
    avail = by_id[f"is_available:{host}"]["tsdata"]
    assert [(p["ts"], p["v"]) for p in avail] == [(t, 1) for t in steps]
    # A one-project collector reads no V-node's figures (they are every project's).
    mine = collector(facility, "p1-nodes", project="p1")
    assert data(c, mine, q) == []


@pytest.mark.parametrize(
    ("q", "field"),
    [
        ("{not json", "q"),
        ('["filters"]', "q.filters"),
        (
            {
                "filters": {
                    "eventType": ["ops_monitoring:nonsense"],
                    "obj": {"type": "node", "id": ["x"]},
                }
            },
            "filters.eventType[0]",
        ),
        (
            {
                "filters": {
                    "eventType": ["ops_monitoring:rx_bps"],
                    "obj": {"type": "router", "id": ["x"]},
                }
            },
            "filters.obj.type",
        ),
        (
            {
                "filters": {
                    "eventType": ["ops_monitoring:rx_bps"],
                    "obj": {"type": "node", "id": []},
                }
            },
            "filters.obj.id",
        ),
        (
            {
                "filters": {
                    "eventType": ["ops_monitoring:rx_bps"],
                    "obj": {"type": "node", "id": ["x"]},
                    "ts": {"gte": 2000, "lt": 1000},
                }
            },
            "filters.ts",
        ),
        (
            {
                "filters": {
                    "eventType": ["ops_monitoring:rx_bps"],
                    "obj": {"type": "node", "id": ["x"]},
                    "ts": {"gte": "1000", "lt": 2000},
                }
            },
            "filters.ts.gte",
        ),
        (
            {
                "filters": {
                    "eventType": ["ops_monitoring:rx_bps"],
                    "obj": {"type": "node", "id": ["x"]},
                    "ts": {"gte": 1.5e15, "lt": 2000},
                }
            },
            "filters.ts.gte",
        ),
        (
            {
                "filters": {
                    "eventType": ["ops_monitoring:rx_bps"],
                    "obj": {"type": "node", "id": ["x"]},
                    "ts": {"since": 1},
                }
            },
            "filters.ts.since",
        ),
        (
            {
                "filters": {
                    "eventType": ["ops_monitoring:rx_bps"],
                    "obj": {"type": "node", "id": ["x"]},
                    "ts": {"gte": -5, "lt": 2000},
                }
            },
            "filters.ts.gte",
        ),
    ],
)
def test_a_malformed_q_is_400_naming_the_field(facility: Facility, q: Any, field: str) -> None:
    c = client(facility)
    token = collector(facility, "gmoc")
    r = c.get(
        "/data/",
        query_string={"q": q if isinstance(q, str) else json.dumps(q)},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 400 and r.mimetype == "application/problem+json"
    assert field in [e["field"] for e in r.get_json()["errors"]], r.get_json()


def test_missing_q_is_400(facility: Facility) -> None:
    r = client(facility).get(
        "/data/", headers={"Authorization": f"Bearer {collector(facility, 'gmoc')}"}
    )
    assert r.status_code == 400 and r.get_json()["errors"][0]["field"] == "q"


def test_a_one_project_collector_sees_no_other_project(facility: Facility) -> None:
    c = client(facility)
    token = collector(facility, "p1-only", project="p1")
    mine, theirs = facility.slices["p1"], facility.slices["p2"]
    check(get(c, token, f"/info/slice/{AUTHORITY}_slice_{mine}"))
    check(get(c, token, f"/info/sliver/{AUTHORITY}_sliver_{mine}"))
    get(c, token, f"/info/slice/{AUTHORITY}_slice_{theirs}", 404)
    get(c, token, f"/info/sliver/{AUTHORITY}_sliver_{theirs}", 404)
    get(c, token, f"/info/link/{AUTHORITY}_link_slice{theirs}-c", 404)
    get(c, token, f"/info/user/{AUTHORITY}_user_alice", 403)
    agg = check(get(c, token, "/info/aggregate/fed"))
    assert [s["href"].rsplit("/", 1)[1] for s in agg["slivers"]] == [f"{AUTHORITY}_sliver_{mine}"]
    auth = check(get(c, token, f"/info/authority/{AUTHORITY}"))
    assert [s["href"].rsplit("/", 1)[1] for s in auth["slices"]] == [f"{AUTHORITY}_slice_{mine}"]
    assert "users" not in auth
    for device, port, tag in facility.vlans["p2"]:
        get(c, token, f"/info/interfacevlan/{vlan_id(device, port, tag)}", 404)
    ids = [vlan_id(*v) for v in facility.vlans["p1"] + facility.vlans["p2"]]
    q = {
        "filters": {
            "eventType": ["ops_monitoring:rx_bps"],
            "obj": {"type": "interfacevlan", "id": ids},
            "ts": window(),
        }
    }
    got = {unquote(a["subject"].split("/info/interfacevlan/")[1]) for a in data(c, token, q)}
    assert got == {vlan_id(*v) for v in facility.vlans["p1"]}
    # The physical ports carry every project's traffic: not this collector's to read.
    q = {
        "filters": {
            "eventType": ["ops_monitoring:rx_bps"],
            "obj": {"type": "interface", "id": [f"{AUTHORITY}_interface_prg-mx:ge-0/0/0"]},
            "ts": window(),
        }
    }
    assert data(c, token, q) == []


def test_researchers_read_their_own_slices_with_their_api_token(facility: Facility) -> None:
    c = client(facility)
    alice = facility.tokens["alice"]
    check(get(c, alice, f"/info/slice/{AUTHORITY}_slice_{facility.slices['p1']}"))
    get(c, alice, f"/info/slice/{AUTHORITY}_slice_{facility.slices['p2']}", 404)
    get(c, alice, f"/info/user/{AUTHORITY}_user_alice", 403)
    device, port, tag = facility.vlans["p1"][0]
    q = {
        "filters": {
            "eventType": ["ops_monitoring:rx_bps"],
            "obj": {"type": "interfacevlan", "id": [vlan_id(device, port, tag)]},
            "ts": window(),
        }
    }
    (rx,) = data(c, alice, q)
    assert len(rx["tsdata"]) == 20
    # An operator sees everything, users included.
    check(get(c, facility.tokens["noc"], f"/info/user/{AUTHORITY}_user_bob"))


def test_who_may_not_read(facility: Facility, tmp_path: Path) -> None:
    c = client(facility)
    r = c.get("/info/aggregate/fed")
    assert r.status_code == 401 and r.mimetype == "application/problem+json"
    assert (
        c.get("/info/aggregate/fed", headers={"Authorization": "Bearer gmc_nonsense"}).status_code
        == 401
    )
    assert c.get("/info/aggregate/fed", headers={"Authorization": "Basic x"}).status_code == 400
    # A certificate the TLS layer verified, of a collector registered by its URN, and one
    # of nobody registered.
    theirs = identity.init(tmp_path / "gmoc", "gmoc", "gmoc.example", hosts=["127.0.0.1"], now=T0)
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    der = x509.load_pem_x509_certificate(theirs.files.client_cert.read_bytes()).public_bytes(
        Encoding.DER
    )
    r = c.get("/info/aggregate/fed", environ_overrides={CLIENT_CERT: der})
    assert r.status_code == 403 and "no collector" in r.get_json()["detail"]
    collector(facility, "gmoc", cert_name=theirs.urn)
    check(c.get("/info/aggregate/fed", environ_overrides={CLIENT_CERT: der}).get_json())
    get(c, facility.tokens["alice"], "/info/nonsense/x", 404)
    # What PostgreSQL cannot hold in a string is no id (never a 500).
    get(c, facility.tokens["alice"], f"/info/node/{AUTHORITY}_node_a%00b", 404)
    token = collector(facility, "nul")
    q = {
        "filters": {
            "eventType": ["ops_monitoring:rx_bps"],
            "obj": {"type": "node", "id": ["a\x00"]},
        }
    }
    r = c.get(
        "/data/", query_string={"q": json.dumps(q)}, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 400 and r.get_json()["errors"][0]["field"] == "filters.obj.id[0]"
    get(c, facility.tokens["alice"], f"/info/slice/{AUTHORITY}_slice_99999999999999999999999", 404)


def test_the_openapi_document_has_the_datastore_s_routes(facility: Facility) -> None:
    import re

    from federica.web.gmoc import create_gmoc_app, openapi

    app = create_gmoc_app(facility.ctx)
    routes = {
        re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
    }
    assert routes == set(openapi.parts())
