"""GET /metrics and the http_sd target list: what Prometheus reads, parsed by
prometheus_client's own parser; who may read them."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from federica.app import create_app
from federica.clock import MovableClock
from federica.context import Context, make_context
from federica.monitoring.poller import DeviceFailure, DeviceSample, Interface, Round
from federica.monitoring.service import Recorder
from tests.accounts import client_as, make_user
from tests.conftest import EXAMPLES
from tests.helpers import load_file

T0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
SCRAPE = "s" * 40
COMMUNITY = "c0mmunity-n0t-t0-share"
BIG = 2**64 - 5  # a Counter64 near its end: past a signed BIGINT


def _iface(index: int, name: str, octets: int, oper: int = 1) -> Interface:
    counters = {"in_octets": octets, "out_octets": BIG, "in_errors": 7, "out_discards": 2}
    return Interface(index, name, "", counters, 1, oper, 1000)


@pytest.fixture
def mon(db: Context) -> Context:
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    settings = dataclasses.replace(db.settings, metrics_token=SCRAPE, emulator_community=COMMUNITY)
    context = make_context(settings, engine=db.engine, clock=MovableClock(T0))
    rec = Recorder(context)
    for n, octets in enumerate([1000, 61_000]):
        at = T0 + dt.timedelta(seconds=30 * n)
        sample = DeviceSample(
            "prg-mx",
            at,
            100_000 + 3000 * n,
            [_iface(1, "ge-0/0/0", octets), _iface(2, 'we"ird\\name', 0, oper=2)],
            n == 0,
        )
        failure = DeviceFailure("erl-mx", at, "timeout", n + 1, 1)
        rec.record(Round(n + 1, at, samples=[sample], failures=[failure]))
    return context


@pytest.fixture
def operator(mon: Context) -> FlaskClient:
    return client_as(create_app(mon.settings, context=mon), make_user(mon, "noc", "operator"))


def _families(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_metrics_carry_the_raw_counters_in_prometheus_naming(operator: FlaskClient) -> None:
    r = operator.get("/metrics")
    assert r.status_code == 200
    assert r.content_type.startswith("text/plain; version=")
    metrics = _families(r.get_data(as_text=True))
    port = (("device", "prg-mx"), ("port", "ge-0/0/0"))
    # The latest raw value, not a rate: Prometheus computes rates from counters.
    assert metrics["federica_interface_receive_bytes_total"][port] == 61_000
    assert metrics["federica_interface_transmit_bytes_total"][port] == float(BIG)
    assert metrics["federica_interface_receive_errors_total"][port] == 7
    assert metrics["federica_interface_transmit_drop_total"][port] == 2
    # Counters the agent did not give are absent, not zero.
    assert port not in metrics.get("federica_interface_receive_packets_total", {})
    weird = (("device", "prg-mx"), ("port", 'we"ird\\name'))
    assert metrics["federica_interface_oper_up"][weird] == 0
    assert metrics["federica_interface_oper_up"][port] == 1
    assert metrics["federica_interface_speed_bits_per_second"][port] == 1e9
    assert metrics["federica_device_snmp_up"] == {
        (("device", "erl-mx"),): 0.0,
        (("device", "prg-mx"),): 1.0,
    }
    assert metrics["federica_device_snmp_consecutive_failures"][(("device", "erl-mx"),)] == 2
    # The controller's own.
    assert metrics["federica_slices"][(("status", "active"),)] == 0
    assert metrics["federica_info"][(("version", "0.1.0"),)] == 1
    assert any(name.startswith("process_") for name in metrics)


def test_the_request_counter_counts_this_process_s_answers(operator: FlaskClient) -> None:
    operator.get("/api/v1/substrate")
    operator.get("/api/v1/slices/none-such")
    metrics = _families(operator.get("/metrics").get_data(as_text=True))
    counted = metrics["federica_http_requests_total"]
    assert counted[(("endpoint", "api.substrate"), ("method", "GET"), ("status", "200"))] == 1
    assert sum(v for k, v in counted.items() if ("status", "404") in k) == 1


def test_http_sd_lists_every_polled_agent_in_prometheus_format(operator: FlaskClient) -> None:
    r = operator.get("/api/v1/monitoring/prometheus-targets")
    assert r.status_code == 200 and r.content_type == "application/json"
    groups = r.get_json()
    assert isinstance(groups, list) and len(groups) == 4
    for group in groups:
        # Prometheus' http_sd: exactly targets (strings "host:port") and labels (strings).
        assert set(group) == {"targets", "labels"}
        assert all(isinstance(t, str) and t.rsplit(":", 1)[1].isdigit() for t in group["targets"])
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in group["labels"].items())
    prg = next(g for g in groups if g["labels"]["device"] == "prg-mx")
    assert prg["labels"]["pop"] == "PRG"
    assert prg["labels"]["__meta_federica_snmp_auth"] == "emulator"
    # No secret goes out: the v2c community these agents are polled with is not in it.
    assert prg["labels"]["__meta_federica_snmp_version"] == "2c"
    assert COMMUNITY not in r.get_data(as_text=True)


def test_neither_is_anonymous_and_researchers_are_refused(mon: Context) -> None:
    app = create_app(mon.settings, context=mon)
    researcher = client_as(app, make_user(mon, "ann", projects=["alpha"]))
    anonymous = app.test_client()
    for url in ("/metrics", "/api/v1/monitoring/prometheus-targets"):
        assert anonymous.get(url).status_code == 401
        assert researcher.get(url).status_code == 403
        wrong = anonymous.get(url, headers={"Authorization": "Bearer " + "t" * 40})
        assert wrong.status_code == 401


def test_the_scrape_token_opens_the_two_and_nothing_else(mon: Context) -> None:
    app = create_app(mon.settings, context=mon)
    scraper = app.test_client()
    auth = {"Authorization": f"Bearer {SCRAPE}"}
    assert scraper.get("/metrics", headers=auth).status_code == 200
    assert scraper.get("/api/v1/monitoring/prometheus-targets", headers=auth).status_code == 200
    for url in ("/api/v1/substrate", "/api/v1/monitoring/devices/prg-mx/interfaces"):
        assert scraper.get(url, headers=auth).status_code == 401, url


def test_http_sd_needs_no_secrets_in_the_api_s_process(
    mon: Context, operator: FlaskClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sets = tmp_path / "snmp.yaml"
    sets.write_text(
        "emulator: {username: poller, auth_key_env: NOT_SET_A, priv_key_env: NOT_SET_P, "
        "port: 1161}\n"
    )
    monkeypatch.delenv("NOT_SET_A", raising=False)
    settings = dataclasses.replace(mon.settings, snmp_credentials_file=sets)
    app = create_app(settings, context=dataclasses.replace(mon, settings=settings))
    client = client_as(app, make_user(mon, "noc2", "operator"))
    groups = client.get("/api/v1/monitoring/prometheus-targets").get_json()
    assert len(groups) == 4
    assert all(g["targets"][0] == "127.0.0.1:1161" for g in groups)
    assert {g["labels"]["__meta_federica_snmp_version"] for g in groups} == {"3"}


def test_a_row_gone_from_the_device_s_answer_leaves_the_series(mon: Context) -> None:
    """A per-VLAN row whose slice ended is no longer in the agent's table: its series stop
    (its stored rates stay)."""
    rec = Recorder(mon)
    for n, rows in enumerate([["ge-0/0/0", "ge-0/0/0.1203"], ["ge-0/0/0"]], start=2):
        at = T0 + dt.timedelta(seconds=30 * n)
        ifaces = [_iface(10_000 * (k + 1), name, 1000 * n) for k, name in enumerate(rows)]
        rec.record(Round(n + 1, at, samples=[DeviceSample("prg-mx", at, 100_000 + 3000 * n,
                                                          ifaces, True)]))  # fmt: skip
        app = create_app(mon.settings, context=mon)
        text = client_as(app, make_user(mon, f"noc{n}", "operator")).get("/metrics")
        ports = {
            labels
            for labels in _families(text.get_data(as_text=True))[
                "federica_interface_receive_bytes_total"
            ]
        }
        unit = (("device", "prg-mx"), ("port", "ge-0/0/0.1203"))
        assert (unit in ports) == (n == 2), ports
