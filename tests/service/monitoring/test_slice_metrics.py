"""GET /api/v1/slices/{ref}/metrics and `federica stats slice`: a slice's circuits are
measured on the devices' per-VLAN interfaces its hops name, its nodes by their samples;
researchers see their own slices only; bad windows are 422 naming the field."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from federica.app import create_app
from federica.cli import cli
from federica.cli import main as _register  # noqa: F401
from federica.clock import MovableClock
from federica.context import Context, make_context
from federica.monitoring.poller import DeviceSample, Interface, Round
from federica.monitoring.rollup import floor
from federica.monitoring.service import Recorder
from tests.accounts import client_as, make_user
from tests.conftest import EXAMPLES
from tests.helpers import load_file, table_dump

T0 = floor(dt.datetime.now(dt.UTC), 3600) - dt.timedelta(hours=1)
RATE = 125_000  # octets per second the node at a sends into the circuit (1 Mb/s)


@pytest.fixture
def world(db: Context) -> tuple[Context, FlaskClient, dict[str, Any]]:
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    context = make_context(db.settings, engine=db.engine, clock=MovableClock(T0))
    app = create_app(context.settings, context=context)
    researcher = client_as(app, make_user(context, "res", projects=["lab"]))
    r = researcher.post(
        "/api/v1/slices",
        json={
            "name": "mon",
            "window": {"start": "now", "duration": "4h"},
            "nodes": [
                {"name": "a", "kind": "host", "pop": "PRG"},
                {"name": "b", "kind": "host", "pop": "ERL"},
            ],
            "circuits": [{"name": "ab", "endpoints": ["a", "b"], "bandwidth_mbps": 10}],
        },
    )
    assert r.status_code == 201, r.get_json()
    body: dict[str, Any] = r.get_json()["slice"]
    hops = body["circuits"][0]["hops"]
    # 10 minutes of 30 s polls: every hop's VLAN unit carries a -> b at RATE and b -> a
    # at half of it; which way is "in" depends on where the hop faces.
    clock = context.clock
    assert isinstance(clock, MovableClock)
    rec = Recorder(context)
    for n in range(21):
        s = 30.0 * n
        clock.set(T0 + dt.timedelta(seconds=s))
        by_device: dict[str, list[Interface]] = {}
        for k, h in enumerate(hops):
            # Hops run a -> b: a hop's "in" is a's traffic on the first hop of each
            # device pair (a's edge, the core link's far end), its "out" on the other.
            a_in = k % 2 == 0
            fwd, back = int(RATE * s), int(RATE * s / 2)
            counters = {
                "in_octets": fwd if a_in else back,
                "out_octets": back if a_in else fwd,
                "in_discards": 0,
                "out_discards": n if k == 0 else 0,  # one drop per poll on a's edge
            }
            name = f"{h['port']}.{h['vlan']}"
            iface = Interface(10_000 + k, name, f"vlan {h['vlan']}", counters, 1, 1, 1000)
            by_device.setdefault(h["device"], []).append(iface)
        samples = [
            DeviceSample(d, clock.now(), 100_000 + int(s * 100), ifaces, n == 0)
            for d, ifaces in by_device.items()
        ]
        rec.record(Round(n + 1, clock.now(), samples=samples))
    return context, researcher, body


def window(**kw: str) -> dict[str, str]:
    return {"from": T0.isoformat(), "to": (T0 + dt.timedelta(minutes=10)).isoformat(), **kw}


def test_a_circuit_is_measured_on_its_hops_vlan_units(
    world: tuple[Context, FlaskClient, dict[str, Any]],
) -> None:
    _, researcher, body = world
    r = researcher.get(f"/api/v1/slices/{body['id']}/metrics", query_string=window(step="5m"))
    assert r.status_code == 200, r.get_json()
    m = r.get_json()
    assert m["slice"]["name"] == "mon" and m["step_s"] == 300
    (c,) = m["circuits"]
    assert c["measured"] and c["bandwidth_mbps"] == 10
    t = c["total"]
    assert t["covered_s"] == pytest.approx(600)
    # Into the circuit: a's RATE at a's edge plus b's RATE / 2 at b's edge.
    assert t["rx_octets"] == pytest.approx(600 * RATE * 1.5)
    assert t["tx_octets"] == pytest.approx(600 * RATE * 1.5)
    assert t["rx_bps"] == pytest.approx(RATE * 1.5 * 8)
    assert t["drops"] == pytest.approx(20)
    assert [p["rx_bps"] for p in c["points"]] == pytest.approx([RATE * 1.5 * 8] * 2)
    edges = [h for h in c["hops"] if h["link"] is None]
    assert sorted(n for h in edges for n in h["nodes"]) == ["a", "b"]
    assert all(h["interface"] == f"{h['port']}.{h['vlan']}" and h["polled"] for h in c["hops"])
    # Nodes never sampled (no V-node answered): health unknown, no points.
    assert {n["name"]: n["health"] for n in m["nodes"]} == {"a": "unknown", "b": "unknown"}


def test_others_slices_are_not_found_and_operators_see_all(
    world: tuple[Context, FlaskClient, dict[str, Any]],
) -> None:
    context, _, body = world
    app = create_app(context.settings, context=context)
    stranger = client_as(app, make_user(context, "other", projects=["elsewhere"]))
    mine = stranger.get(f"/api/v1/slices/{body['id']}/metrics")
    absent = stranger.get("/api/v1/slices/99999/metrics")
    assert mine.status_code == absent.status_code == 404
    assert mine.get_json()["detail"].replace(str(body["id"]), "N") == absent.get_json()[
        "detail"
    ].replace("99999", "N")
    operator = client_as(app, make_user(context, "noc", "operator"))
    assert operator.get(f"/api/v1/slices/{body['id']}/metrics").status_code == 200


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-11-30T12:00:00"}, "to"),
        ({"step": "fast"}, "step"),
        ({"step": "0"}, "step"),
        ({"step": "1s", "from": "2020-01-01T00:00:00Z", "to": "2021-01-01T00:00:00Z"}, "step"),
        ({"from": "2026-11-30T12:00:00Z", "to": "2026-11-30T11:00:00Z"}, "from"),
    ],
)
def test_bad_windows_are_422_naming_the_field(
    world: tuple[Context, FlaskClient, dict[str, Any]], query: dict[str, str], field: str
) -> None:
    context, researcher, body = world
    before = table_dump(context)
    r = researcher.get(f"/api/v1/slices/{body['id']}/metrics", query_string=query)
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    assert [e["field"] for e in r.get_json()["errors"]] == [field]
    assert table_dump(context) == before


def test_stats_slice_prints_circuits_and_nodes(
    world: tuple[Context, FlaskClient, dict[str, Any]], cli_env: dict[str, str]
) -> None:
    import federica.cli.stats  # noqa: F401  (registers the command group)

    args = ["stats", "slice", "mon", "--from", window()["from"], "--to", window()["to"]]
    r = CliRunner().invoke(cli, args, env=cli_env, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    row = next(line for line in r.output.splitlines() if line.strip().startswith("ab "))
    # booked 10, rx 1.5 Mb/s, tx 1.5 Mb/s
    assert row.split()[:4] == ["ab", "10", "1.500", "1.500"], r.output
    assert any(line.split()[:3] == ["a", "prg-v1", "unknown"] for line in r.output.splitlines())
    r = CliRunner().invoke(cli, [*args, "--json"], env=cli_env, catch_exceptions=False)
    assert json.loads(r.output)["circuits"][0]["total"]["drops"] == pytest.approx(20)
    r = CliRunner().invoke(cli, ["stats", "slice", "mon", "--step", "x"], env=cli_env)
    assert r.exit_code != 0 and "--step" in r.output + (r.stderr or "")
