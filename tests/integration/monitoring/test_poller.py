"""The poller against a real net-snmp agent: GETBULK reads, the ifName cache, back-off,
many devices at once, and the thread the demo runs it in. Every test runs with each SNMP
backend (pysnmp, gufo-snmp): this is their conformance suite."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import threading
import time

import pytest

from federica.monitoring.poller import BACKENDS, V3, Poller, Round, Target, V2c
from tests.integration.monitoring.conftest import (
    COMMUNITY,
    V3_AUTH,
    V3_PRIV,
    V3_USER,
    Agent,
    free_udp_port,
)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def target(port: int, name: str = "dev", timeout_s: float = 10.0) -> Target:
    # Generous timeout: a busy machine's agent and helper may take seconds on first use.
    return Target(name, "127.0.0.1", port, V2c(COMMUNITY), timeout_s=timeout_s, retries=1)


def rounds(poller: Poller, n: int) -> list[Round]:
    return [asyncio.run(_round(poller)) for _ in range(n)]


async def _round(poller: Poller) -> Round:
    try:
        return await poller.poll_round()
    finally:
        poller.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make(
    targets: list[Target],
    backend: str,
    sink: list[Round] | None = None,
    interval_s: float = 30,
) -> Poller:
    out = sink if sink is not None else []
    return Poller(lambda: targets, out.append, clock=now, interval_s=interval_s, backend=backend)


def test_a_poll_reads_counters_states_names_and_uptime(agent: Agent, backend: str) -> None:
    rows = {
        i: {"name": f"ge-0/0/{i}", "alias": f"to p{i}", "in_octets": 2**40 + i, "out_octets": i}
        for i in range(1, 31)  # more rows than one GETBULK answer carries
    }
    rows[7]["oper"] = 2
    rows[9]["in_errors"] = 2**32 - 1
    agent.write(rows)
    before = now()
    (rnd,) = rounds(make([target(agent.port)], backend), 1)
    assert rnd.failures == [] and len(rnd.samples) == 1
    sample = rnd.samples[0]
    assert before <= sample.at <= now()
    assert sample.uptime_ticks > 0 and sample.names_read
    assert [i.if_index for i in sample.interfaces] == list(range(1, 31))
    by_index = {i.if_index: i for i in sample.interfaces}
    assert by_index[12].name == "ge-0/0/12" and by_index[12].alias == "to p12"
    assert by_index[12].counters["in_octets"] == 2**40 + 12
    assert by_index[12].counters["out_octets"] == 12
    assert by_index[9].counters["in_errors"] == 2**32 - 1
    assert (by_index[7].oper_status, by_index[8].oper_status) == (2, 1)
    assert by_index[1].admin_status == 1 and by_index[1].high_speed == 1000


def test_many_long_aliases_are_read_whole(agent: Agent, backend: str) -> None:
    # 120 rows of 64-octet aliases (the most IF-MIB allows): an answer of 100 of them is
    # larger than some libraries read at once (gufo-snmp: ~4 KB).
    alias = "a" * 50 + "slice vlan {:04d}"
    agent.write({i: {"name": f"xe-0/0/{i}", "alias": alias.format(i)} for i in range(1, 121)})
    (rnd,) = rounds(make([target(agent.port)], backend), 1)
    assert rnd.failures == []
    interfaces = rnd.samples[0].interfaces
    assert [(i.if_index, i.alias) for i in interfaces] == [
        (i, alias.format(i)) for i in range(1, 121)
    ]


def test_snmpv3_authpriv_reads_the_same_and_a_wrong_key_is_refused(
    agent: Agent, backend: str
) -> None:
    v3 = dataclasses.replace(target(agent.port), auth=V3(V3_USER, V3_AUTH, V3_PRIV))
    (rnd,) = rounds(make([v3], backend), 1)
    assert rnd.failures == []
    assert [(i.name, i.counters["in_octets"]) for i in rnd.samples[0].interfaces] == [
        ("ge-0/0/0", 100)
    ]
    wrong = dataclasses.replace(
        target(agent.port, timeout_s=2.0), auth=V3(V3_USER, "not-the-passphrase", V3_PRIV)
    )
    (rnd,) = rounds(make([wrong], backend), 1)
    assert rnd.samples == [] and len(rnd.failures) == 1
    # The error names the device, never the keys.
    assert "not-the-passphrase" not in rnd.failures[0].error
    assert "not-the-passphrase" not in repr(wrong)


def test_names_are_cached_and_read_again_when_the_rows_change(agent: Agent, backend: str) -> None:
    poller = make([target(agent.port)], backend)
    first, second = rounds(poller, 2)
    assert first.samples[0].names_read and not second.samples[0].names_read
    # A renamed row with the same ifIndex set is not seen: names are not polled...
    agent.write({1: {"name": "renamed", "in_octets": 150}})
    (third,) = rounds(poller, 1)
    assert not third.samples[0].names_read
    assert [(i.name, i.counters["in_octets"]) for i in third.samples[0].interfaces] == [
        ("ge-0/0/0", 150)
    ]
    # ... until the set of rows changes.
    agent.write({1: {"name": "renamed"}, 2: {"name": "vlan-1042", "alias": "slice x"}})
    (fourth,) = rounds(poller, 1)
    assert fourth.samples[0].names_read
    assert [i.name for i in fourth.samples[0].interfaces] == ["renamed", "vlan-1042"]


def test_names_are_read_again_after_the_agent_restarted(agent: Agent, backend: str) -> None:
    # A restart is told by sysUpTime, which cannot tell one within a second of the previous
    # answer from none: let the agent be up for longer than that first.
    while agent.uptime_ticks() < 300:
        time.sleep(0.5)
    poller = make([target(agent.port)], backend)
    rounds(poller, 1)
    agent.write({1: {"name": "after-restart"}})
    agent.stop()
    agent.start()
    (rnd,) = rounds(poller, 1)
    assert rnd.samples[0].names_read
    assert rnd.samples[0].interfaces[0].name == "after-restart"


def test_a_silent_device_backs_off_while_the_others_are_polled(agent: Agent, backend: str) -> None:
    silent = target(free_udp_port(), "silent", timeout_s=0.5)
    poller = make([target(agent.port), silent], backend)
    seen = []
    for rnd in rounds(poller, 8):
        assert [s.device for s in rnd.samples] == ["dev"]
        failed = [(f.consecutive, f.retry_in_rounds) for f in rnd.failures]
        seen.append((failed, rnd.waiting))
    # Tried at rounds 1, 2, 4 and 8: after the n-th failure it waits 2**(n-1) rounds.
    assert seen == [
        ([(1, 1)], []),
        ([(2, 2)], []),
        ([], ["silent"]),
        ([(3, 4)], []),
        ([], ["silent"]),
        ([], ["silent"]),
        ([], ["silent"]),
        ([(4, 8)], []),
    ]


def test_devices_are_polled_at_once_each_with_its_own_timeout(agent: Agent, backend: str) -> None:
    # 20 silent devices with a 2 s timeout: one after the other that would take 40 s.
    silent = [
        dataclasses.replace(target(free_udp_port(), f"silent{i}", timeout_s=2.0), retries=0)
        for i in range(20)
    ]
    poller = make([*silent, target(agent.port)], backend)
    started = time.monotonic()
    (rnd,) = rounds(poller, 1)
    assert time.monotonic() - started < 20
    assert len(rnd.failures) == 20 and [s.device for s in rnd.samples] == ["dev"]
    assert all("No SNMP response" in f.error for f in rnd.failures)


def test_start_and_stop_run_the_poller_in_a_thread(agent: Agent, backend: str) -> None:
    got: list[Round] = []
    arrived = threading.Event()

    def sink(rnd: Round) -> None:
        got.append(rnd)
        if len(got) >= 2:
            arrived.set()

    poller = Poller(lambda: [target(agent.port)], sink, clock=now, interval_s=1.0, backend=backend)
    poller.start()
    try:
        assert arrived.wait(60), "two rounds within a minute at a 1 s interval"
    finally:
        poller.stop(timeout=60)
    assert not any(t.name == "federica-poller" for t in threading.enumerate())
    assert [r.number for r in got[:2]] == [1, 2]
    # Rounds start on the interval's grid (a slow first round delays none after it).
    assert got[1].started - got[0].started >= dt.timedelta(seconds=0.9)
