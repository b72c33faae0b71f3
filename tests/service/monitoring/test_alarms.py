"""Alarms from stored poll rounds: raised, deduplicated, listed with the slices they touch,
acknowledged, suppressed by their device, silent in maintenance, cleared; who sees what."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Collection
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from federica.alarms import service
from federica.app import create_app
from federica.cli import cli
from federica.clock import MovableClock
from federica.context import Context, make_context
from federica.db import transaction
from federica.monitoring.poller import DeviceFailure, DeviceSample, Interface, Round
from federica.monitoring.service import Recorder
from federica.slices import maintenance
from federica.substrate import reachability
from tests.accounts import client_as, make_user
from tests.conftest import EXAMPLES
from tests.helpers import load_file, table_dump

UP, DOWN = 1, 2
PORTS = {"prg-mx": ["ge-0/0/0", "ge-0/0/1", "ge-1/0/1"], "erl-mx": ["ge-0/0/0"]}


class Facility:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.recorder = Recorder(ctx)
        self.rounds = 0
        self.failures: dict[str, int] = {}

    def poll(self, down: Collection[str] = (), away: Collection[str] = ()) -> None:
        """One round: `down` ports ("device:port") oper-down, `away` devices not answering."""
        self.rounds += 1
        at = self.ctx.now()
        rnd = Round(self.rounds, at)
        for device, ports in PORTS.items():
            if device in away:
                self.failures[device] = self.failures.get(device, 0) + 1
                rnd.failures.append(DeviceFailure(device, at, "timeout", self.failures[device], 1))
                continue
            self.failures[device] = 0
            ifaces = [
                Interface(
                    i, p, "", {"in_octets": 0}, UP, DOWN if f"{device}:{p}" in down else UP, 1000
                )
                for i, p in enumerate(ports, start=1)
            ]
            rnd.samples.append(DeviceSample(device, at, 1000 * self.rounds, ifaces, True))
        self.recorder.record(rnd)
        service.check(self.ctx)

    def alarms(self, include_cleared: bool = False) -> list[dict[str, Any]]:
        with transaction(self.ctx.read_sessions) as s:
            return [
                service.describe(a) for a in service.listing(s, include_cleared=include_cleared)
            ]


@pytest.fixture
def fac(db: Context) -> Facility:
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    settings = dataclasses.replace(db.settings, alarm_unreachable_polls=3)
    return Facility(make_context(settings, engine=db.engine))


@pytest.fixture
def app_clients(fac: Facility) -> dict[str, Any]:
    app = create_app(fac.ctx.settings, context=fac.ctx)
    ann = client_as(app, make_user(fac.ctx, "ann", projects=["alpha"]))
    r = ann.post(
        "/api/v1/slices",
        json={
            "name": f"cross-{uuid.uuid4().hex[:6]}",
            "project": "alpha",
            "window": {"start": "now", "duration": "2h"},
            "nodes": [{"name": "a", "pop": "PRG"}, {"name": "b", "pop": "ERL"}],
            "circuits": [{"name": "ab", "endpoints": ["a", "b"], "bandwidth_mbps": 10}],
        },
    )
    assert r.status_code == 201, r.get_json()
    return {
        "slice": r.get_json()["slice"],
        "ann": ann,
        "bob": client_as(app, make_user(fac.ctx, "bob", projects=["beta"])),
        "noc": client_as(app, make_user(fac.ctx, "noc", "operator")),
    }


def test_a_link_down_is_one_alarm_naming_the_link_and_its_slices_until_it_is_up(
    fac: Facility, app_clients: dict[str, Any]
) -> None:
    fac.poll()
    assert fac.alarms() == []
    fac.poll(down={"prg-mx:ge-0/0/0", "erl-mx:ge-0/0/0"})
    fac.poll(down={"prg-mx:ge-0/0/0"})  # still down: not raised again
    (alarm,) = fac.alarms()
    assert (alarm["kind"], alarm["subject"], alarm["link"]) == ("link-down", "prg-erl", "prg-erl")
    assert "prg-mx:ge-0/0/0" in alarm["detail"]
    assert [s["name"] for s in alarm["slices"]] == [app_clients["slice"]["name"]]
    fac.poll()
    (cleared,) = fac.alarms(include_cleared=True)
    assert cleared["state"] == "cleared" and cleared["cleared_at"] is not None
    assert fac.alarms() == []
    # Down again: a new occurrence, a new alarm.
    fac.poll(down={"prg-mx:ge-0/0/0"})
    assert [a["id"] for a in fac.alarms()] != [cleared["id"]]


def test_a_port_on_no_link_is_a_port_alarm_touching_no_slice(fac: Facility) -> None:
    fac.poll(down={"prg-mx:ge-1/0/1"})
    (alarm,) = fac.alarms()
    assert (alarm["kind"], alarm["subject"], alarm["slices"]) == (
        "port-down",
        "prg-mx:ge-1/0/1",
        [],
    )


def test_an_unreachable_device_suppresses_its_links_alarm_and_both_clear(fac: Facility) -> None:
    fac.poll(down={"prg-mx:ge-0/0/0"})
    for _ in range(2):
        fac.poll(away={"erl-mx"}, down={"prg-mx:ge-0/0/0"})
    assert [a["kind"] for a in fac.alarms()] == ["link-down"]  # two failures: not yet
    fac.poll(away={"erl-mx"}, down={"prg-mx:ge-0/0/0"})
    by_kind = {a["kind"]: a for a in fac.alarms()}
    assert by_kind["device-unreachable"]["subject"] == "erl-mx"
    assert "timeout" in by_kind["device-unreachable"]["detail"]
    assert by_kind["link-down"]["suppressed"] is True
    fac.poll()
    assert fac.alarms() == []
    assert {a["kind"] for a in fac.alarms(include_cleared=True)} == {
        "device-unreachable",
        "link-down",
    }


def test_a_device_unreachable_over_netconf_for_n_polls_time_raises_and_clears(
    db: Context,
) -> None:
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    clock = MovableClock(dt.datetime.now(dt.UTC))
    settings = dataclasses.replace(db.settings, alarm_unreachable_polls=3, monitor_interval_s=30)
    fac = Facility(make_context(settings, engine=db.engine, clock=clock))
    fac.poll()
    with transaction(db.sessions) as s:
        reachability.record(
            s, "mil-mx", False, clock.now(), "no NETCONF session within 10 s", "worker"
        )
    fac.poll()
    assert fac.alarms() == []  # not for as long as three polls take yet
    clock.advance(dt.timedelta(seconds=61))
    fac.poll()
    (alarm,) = fac.alarms()
    assert (alarm["kind"], alarm["subject"]) == ("device-unreachable", "mil-mx")
    assert "NETCONF" in alarm["detail"] and "no NETCONF session within 10 s" in alarm["detail"]
    fac.poll()
    assert len(fac.alarms()) == 1  # deduplicated
    with transaction(db.sessions) as s:
        reachability.record(s, "mil-mx", True, clock.now(), seen_by="device check")
    fac.poll()
    assert fac.alarms() == []
    assert fac.alarms(include_cleared=True)[0]["state"] == "cleared"


def test_maintenance_on_a_device_keeps_it_polled_and_silent(fac: Facility) -> None:
    now = fac.ctx.now()
    with transaction(fac.ctx.sessions) as s:
        maintenance.create(
            s,
            target_kind="device",
            target="prg-mx",
            start=(now - dt.timedelta(minutes=1)).isoformat(),
            end=(now + dt.timedelta(hours=1)).isoformat(),
            reason="optics",
            now=now,
        )
    for _ in range(4):
        fac.poll(away={"prg-mx"})
    fac.poll(down={"prg-mx:ge-0/0/0", "prg-mx:ge-1/0/1", "erl-mx:ge-0/0/0"})
    assert fac.alarms(include_cleared=True) == []
    assert fac.rounds == 5 and fac.failures["prg-mx"] == 0


def test_maintenance_on_a_device_never_polled_silences_its_links(fac: Facility) -> None:
    """erl-mx is under maintenance and has not answered once (no port states of it are
    stored): its link's far end, prg-mx:ge-0/0/0, losing carrier is the maintenance."""
    now = fac.ctx.now()
    with transaction(fac.ctx.sessions) as s:
        maintenance.create(
            s,
            target_kind="device",
            target="erl-mx",
            start=(now - dt.timedelta(minutes=1)).isoformat(),
            end=(now + dt.timedelta(hours=1)).isoformat(),
            reason="replacing the chassis",
            now=now,
        )
    for _ in range(3):
        fac.poll(down={"prg-mx:ge-0/0/0"}, away={"erl-mx"})
    assert fac.alarms(include_cleared=True) == []
    # The same fault on a link whose ends are not under maintenance is raised.
    fac.poll(down={"prg-mx:ge-0/0/0", "prg-mx:ge-0/0/1"}, away={"erl-mx"})
    assert [a["subject"] for a in fac.alarms(include_cleared=True)] == ["prg-mil"]


def test_operators_see_and_acknowledge_researchers_see_only_their_slices_alarms(
    fac: Facility, app_clients: dict[str, Any]
) -> None:
    ann, bob, noc = app_clients["ann"], app_clients["bob"], app_clients["noc"]
    fac.poll(down={"prg-mx:ge-0/0/0", "prg-mx:ge-0/0/1"})
    listed = noc.get("/api/v1/monitoring/alarms").get_json()
    assert sorted(a["subject"] for a in listed) == ["prg-erl", "prg-mil"]
    link = next(a for a in listed if a["subject"] == "prg-erl")
    # ann's slice crosses prg-erl, not prg-mil.
    assert [a["id"] for a in ann.get("/api/v1/monitoring/alarms").get_json()] == [link["id"]]
    assert ann.get(f"/api/v1/monitoring/alarms/{link['id']}").status_code == 200
    assert bob.get("/api/v1/monitoring/alarms").get_json() == []
    hidden, missing = (
        bob.get(f"/api/v1/monitoring/alarms/{i}") for i in (link["id"], link["id"] + 1000)
    )
    assert hidden.status_code == missing.status_code == 404
    assert hidden.get_json()["detail"].replace(str(link["id"]), "X") == missing.get_json()[
        "detail"
    ].replace(str(link["id"] + 1000), "X")
    assert ann.post(f"/api/v1/monitoring/alarms/{link['id']}/ack").status_code == 403
    r = noc.post(f"/api/v1/monitoring/alarms/{link['id']}/ack")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["acknowledged"]["by"] == "noc"
    assert r.get_json()["state"] == "open"  # seen, not gone
    before = table_dump(fac.ctx)
    again = noc.post(f"/api/v1/monitoring/alarms/{link['id']}/ack")
    assert again.status_code == 409 and "noc" in again.get_json()["detail"]
    bad = noc.get("/api/v1/monitoring/alarms?state=closed")
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "state"
    assert noc.post("/api/v1/monitoring/alarms/999999/ack").status_code == 404
    assert _without_audit(table_dump(fac.ctx)) == _without_audit(before)
    assert len(noc.get("/api/v1/monitoring/alarms?state=all").get_json()) == 2
    metrics = noc.get("/metrics").get_data(as_text=True)
    open_alarms = {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "federica_alarms_open"
        for s in family.samples
    }
    assert open_alarms[(("kind", "link-down"), ("suppressed", "false"))] == 2
    assert open_alarms[(("kind", "device-unreachable"), ("suppressed", "false"))] == 0


def _without_audit(dump: Any) -> Any:
    return {k: v for k, v in dump.items() if k not in {"audit_log", "api_tokens"}}


def test_the_cli_lists_and_acknowledges(fac: Facility, cli_env: dict[str, str]) -> None:
    import federica.cli.monitor  # noqa: F401  (registers the command)

    fac.poll(down={"prg-mx:ge-1/0/1"})
    runner = CliRunner()
    listed = runner.invoke(cli, ["alarms"], env=cli_env)
    assert listed.exit_code == 0, listed.output
    assert "port-down" in listed.output and "prg-mx:ge-1/0/1" in listed.output
    (alarm,) = fac.alarms()
    acked = runner.invoke(cli, ["alarms", "--ack", str(alarm["id"])], env=cli_env)
    assert acked.exit_code == 0, acked.output
    assert fac.alarms()[0]["acknowledged"]["by"].startswith("local:")
    assert "acked by local:" in runner.invoke(cli, ["alarms"], env=cli_env).output
    missing = runner.invoke(cli, ["alarms", "--ack", "999999"], env=cli_env)
    assert missing.exit_code != 0 and "no alarm 999999" in missing.output
