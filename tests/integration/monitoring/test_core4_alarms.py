"""Acceptance of the alarms on the real emulated core4, polled over SNMP from the devices'
snmpd: a link set down inside the facility raises a link-down alarm within two polls,
naming the link and the slice crossing it, and clears when it is up; a device whose snmpd
is stopped (SIGSTOP) is unreachable and hides the link's alarm, and clears on SIGCONT; one
whose netconfd is stopped is unreachable once `federica device check` has seen it so for
N polls' time, and clears when it answers again; under a maintenance window the device
is still polled and nothing is raised; a port with nothing plugged in raises nothing."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

import federica.cli.device  # noqa: F401  (registers the device commands)
from federica.alarms import service as alarms
from federica.alarms import webhooks
from federica.app import create_app
from federica.cli import cli
from federica.context import Context, make_context
from federica.db import transaction
from federica.monitoring.models import MonitoredDevice, MonitoredInterface
from federica.monitoring.poller import Poller, Round
from federica.monitoring.service import make_poller
from federica.slices import maintenance
from federica.substrate.models import Device
from federica.worker import Worker
from tests.accounts import client_as, make_user
from tests.integration.conftest import Facility, needs_root
from tests.integration.slice_helpers import book, run_until, show
from tests.webhook_receiver import Receiver, receiving

pytestmark = [pytest.mark.integration, needs_root]
INTERVAL_S = 5.0
# erl-mx's end of prg-erl is set down; prg-mx's end then has no carrier (admin up).
DEVICE, PORT, LINK = "erl-mx", "ge-0/0/0", "prg-erl"


@dataclasses.dataclass
class Watch:
    """The rounds the poller stored, each with the alarms open after it."""

    ctx: Context
    rounds: list[tuple[Round, list[dict[str, Any]]]] = dataclasses.field(default_factory=list)

    def after(self, rnd: Round) -> None:
        alarms.check(self.ctx)
        webhooks.deliver_due(self.ctx)
        with transaction(self.ctx.read_sessions) as s:
            now_open = [alarms.describe(a) for a in alarms.listing(s)]
        self.rounds.append((rnd, now_open))

    def wait(
        self, what: Callable[[list[dict[str, Any]]], bool], since: dt.datetime, within: int
    ) -> int:
        """How many rounds started after `since` until `what` held (at most `within`)."""
        deadline = time.monotonic() + within * INTERVAL_S * 4 + 120
        while time.monotonic() < deadline:
            started = [(r, open_) for r, open_ in list(self.rounds) if r.started > since]
            for n, (_, open_) in enumerate(started[:within], start=1):
                if what(open_):
                    return n
            if len(started) >= within:
                raise AssertionError(f"not within {within} rounds: {started[-1][1]}")
            time.sleep(0.2)
        raise AssertionError("the poller stopped storing rounds")


def about(open_: list[dict[str, Any]], kind: str, subject: str) -> dict[str, Any] | None:
    return next((a for a in open_ if (a["kind"], a["subject"]) == (kind, subject)), None)


def pid_of(fac: Facility, name: str) -> int:
    (pid,) = [t.pid for t in fac.state.processes if t.name == name]
    return pid


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@contextlib.contextmanager
def port_down(fac: Facility) -> Iterator[None]:
    """The port down by hand, its device's agent (which repairs hand-made changes) paused."""
    plan = next(d for d in fac.plan.devices if d.name == DEVICE)
    ifname = plan.port(PORT).ifname
    with stopped(pid_of(fac, f"agent {DEVICE}")):
        r = fac.ns_exec(plan.namespace, "ip", "link", "set", ifname, "down")
        assert r.returncode == 0, r.stderr
        try:
            yield
        finally:
            fac.ns_exec(plan.namespace, "ip", "link", "set", ifname, "up")


@pytest.fixture(scope="module")
def monitored(emulated_core4: Facility) -> Context:
    settings = dataclasses.replace(
        emulated_core4.settings,
        monitor_interval_s=INTERVAL_S,
        snmp_timeout_s=2.0,
        snmp_retries=1,
        # A stopped agent is asked again every round, and is unreachable after two.
        snmp_max_backoff_intervals=1,
        alarm_unreachable_polls=2,
        webhook_private_addresses=True,  # the test's receiver is on loopback
        webhook_timeout_s=2.0,
    )
    return make_context(settings, engine=emulated_core4.context.engine)


@pytest.fixture(scope="module")
def crossing(emulated_core4: Facility, monitored: Context) -> Iterator[dict[str, Any]]:
    """A slice booked across prg-erl now (booked is enough: its reservations hold now)."""
    app = create_app(monitored.settings, context=monitored)
    client = client_as(
        app, make_user(emulated_core4.context, f"al-{uuid.uuid4().hex[:8]}", projects=["lab"])
    )
    sl = book(
        client,
        {
            "name": f"al-{uuid.uuid4().hex[:6]}",
            "window": {"start": "now", "duration": "1h"},
            "nodes": [
                {"name": "a", "kind": "host", "pop": "PRG"},
                {"name": "b", "kind": "host", "pop": "ERL"},
            ],
            "circuits": [{"name": "ab", "endpoints": ["a", "b"], "bandwidth_mbps": 10}],
        },
    )
    yield sl
    worker = Worker(emulated_core4.context, name="alarms")
    try:
        r = client.post(f"/api/v1/slices/{sl['id']}/release")
        assert r.status_code in (200, 202), r.get_json()
        run_until(worker.run_once, lambda: show(client, sl["id"])["status"] == "ended", 300)
    finally:
        worker.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as rec:
        yield rec


@pytest.fixture
def watched(monitored: Context) -> Iterator[Watch]:
    watch = Watch(monitored)
    poller: Poller = make_poller(monitored, after=watch.after)
    poller.start()
    try:
        yield watch
    finally:
        poller.stop(timeout=120)


def test_link_down_then_device_unreachable_then_both_clear(
    emulated_core4: Facility,
    monitored: Context,
    crossing: dict[str, Any],
    watched: Watch,
    receiver: Receiver,
) -> None:
    fac = emulated_core4
    with transaction(monitored.sessions) as s:
        _, secret = webhooks.set_webhook(
            s, crossing["project"], receiver.url, "test", monitored.now(), monitored.settings
        )
    watched.wait(lambda o: about(o, "link-down", LINK) is None, monitored.now(), 3)
    t_down = monitored.now()
    with port_down(fac):
        rounds = watched.wait(lambda o: about(o, "link-down", LINK) is not None, t_down, 2)
        assert rounds <= 2
        alarm = about(watched.rounds[-1][1], "link-down", LINK)
        assert alarm is not None and alarm["link"] == LINK
        assert "prg-mx:ge-0/0/0" in alarm["detail"]
        assert crossing["name"] in [s["name"] for s in alarm["slices"]]

        t_stop = monitored.now()
        with stopped(pid_of(fac, f"snmpd {DEVICE}")):
            watched.wait(lambda o: about(o, "device-unreachable", DEVICE) is not None, t_stop, 4)
            link = about(watched.rounds[-1][1], "link-down", LINK)
            assert link is not None and link["suppressed"] is True
            assert link["id"] == alarm["id"]  # the same alarm, not a second one
        t_cont = monitored.now()
        watched.wait(lambda o: about(o, "device-unreachable", DEVICE) is None, t_cont, 3)
        link = about(watched.rounds[-1][1], "link-down", LINK)
        assert link is not None and link["suppressed"] is False
    t_up = monitored.now()
    watched.wait(lambda o: about(o, "link-down", LINK) is None, t_up, 3)
    with transaction(monitored.read_sessions) as s:
        history = [
            alarms.describe(a)
            for a in alarms.listing(s, include_cleared=True)
            if a.raised_at >= t_down and a.subject in {LINK, DEVICE}
        ]
    assert sorted((a["kind"], a["state"]) for a in history) == [
        ("device-unreachable", "cleared"),
        ("link-down", "cleared"),
    ]
    # The slice's project was told of the link's alarm, raised then cleared, signed.
    deadline = time.monotonic() + 120
    while True:
        calls = [(json.loads(c.body), c) for c in receiver.received]
        link_events = [b["event"] for b, _ in calls if b["alarm"]["subject"] == LINK]
        if link_events == ["alarm.raised", "alarm.cleared"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert link_events == ["alarm.raised", "alarm.cleared"], [b for b, _ in calls]
    for body, call in calls:
        expected = hmac.new(secret.encode(), call.body, hashlib.sha256).hexdigest()
        assert call.headers["X-Federica-Signature"] == f"sha256={expected}"
        assert [sl["name"] for sl in body["alarm"]["slices"]] == [crossing["name"]]


def test_under_maintenance_the_device_is_polled_and_nothing_is_raised(
    emulated_core4: Facility, monitored: Context, watched: Watch
) -> None:
    fac = emulated_core4
    now = monitored.now()
    with transaction(monitored.sessions) as s:
        window, _ = maintenance.create(
            s,
            target_kind="device",
            target=DEVICE,
            start=(now - dt.timedelta(minutes=1)).isoformat(),
            end=(now + dt.timedelta(hours=1)).isoformat(),
            reason="alarm test",
            now=now,
        )
        window_id = window.id
    try:
        start = monitored.now()
        with port_down(fac), stopped(pid_of(fac, f"snmpd {DEVICE}")):
            # Polled: its failures are counted round after round.
            deadline = time.monotonic() + 20 * INTERVAL_S + 120
            while failures(monitored) < 3:
                assert time.monotonic() < deadline, "the device was not polled"
                time.sleep(0.5)
        watched.wait(lambda o: True, monitored.now(), 2)
        raised = [
            (r.number, a["kind"], a["subject"])
            for r, open_ in watched.rounds
            if r.started > start
            for a in open_
            if a["subject"] in {LINK, DEVICE}
        ]
        assert raised == []
    finally:
        with transaction(monitored.sessions) as s:
            maintenance.cancel(s, window_id, monitored.now())


def failures(ctx: Context) -> int:
    with transaction(ctx.read_sessions) as s:
        n = s.scalar(
            select(MonitoredDevice.consecutive_failures)
            .join(Device, Device.id == MonitoredDevice.device_id)
            .where(Device.name == DEVICE)
        )
    return n or 0


def test_a_port_with_nothing_plugged_in_is_shut_down_and_raises_nothing(
    monitored: Context, watched: Watch
) -> None:
    """psn-mx's border port to GTS has no far end in the emulator: it starts admin-down,
    as an operator leaves an unused port, so it is not a port-down alarm."""
    since = monitored.now()
    watched.wait(lambda o: True, since, 2)
    with transaction(monitored.read_sessions) as s:
        admin, oper = s.execute(
            select(MonitoredInterface.admin_status, MonitoredInterface.oper_status)
            .join(Device, Device.id == MonitoredInterface.device_id)
            .where(Device.name == "psn-mx", MonitoredInterface.name == "xe-2/0/0")
        ).one()
    assert (admin, oper) == (2, 2)  # polled: down(2), down(2)
    raised = [
        (a["kind"], a["subject"])
        for r, open_ in watched.rounds
        if r.started > since
        for a in open_
        if a["device"] == "psn-mx"
    ]
    assert raised == []


def test_a_device_unreachable_over_netconf_raises_and_clears(
    emulated_core4: Facility, monitored: Context, watched: Watch
) -> None:
    fac = emulated_core4
    env = {
        "FEDERICA_DATA_DIR": str(fac.settings.data_dir),
        "FEDERICA_DATABASE_URL": fac.settings.effective_database_url,
        "FEDERICA_EMULATOR_PREFIX": fac.settings.emulator_prefix,
        "FEDERICA_NETCONF_RPC_TIMEOUT_S": "3",
    }
    watched.wait(lambda o: about(o, "device-unreachable", DEVICE) is None, monitored.now(), 3)
    with stopped(pid_of(fac, f"netconfd {DEVICE}")):
        checked = CliRunner().invoke(cli, ["device", "check", DEVICE], env=env)
        assert checked.exit_code == 1 and f"FAIL  {DEVICE}" in checked.output, checked.output
        t_seen = monitored.now()
        # alarm_unreachable_polls=2: raised once the mark is one interval old, and SNMP
        # (still answering) hides nothing.
        watched.wait(lambda o: about(o, "device-unreachable", DEVICE) is not None, t_seen, 3)
        alarm = about(watched.rounds[-1][1], "device-unreachable", DEVICE)
        assert alarm is not None and "NETCONF" in alarm["detail"], alarm
        assert "SNMP" not in alarm["detail"]
    checked = CliRunner().invoke(cli, ["device", "check", DEVICE], env=env)
    assert checked.exit_code == 0, checked.output
    watched.wait(lambda o: about(o, "device-unreachable", DEVICE) is None, monitored.now(), 2)
