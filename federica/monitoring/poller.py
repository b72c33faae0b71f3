"""The SNMP poller: every device's IF-MIB and sysUpTime, each interval. Adapter: I/O only.

Two SNMP backends behind the same walk (`backend`, setting FEDERICA_SNMP_BACKEND): pysnmp
(the default, below) and gufo-snmp (federica/monitoring/gufo_backend.py, ~40x less CPU
per interface, bench B5). pysnmp 7's asyncio API with one SnmpEngine for the poller's
life; each device is read with GETBULK (sysUpTime as the non-repeater, the counter and
status columns as repeaters), many devices at once up to a limit, each request with the
device's own timeout and retries. A device that does not answer is tried again after 1,
2, 4 … intervals (capped). ifName and ifAlias change rarely: they are read once and again
only when the agent restarted or the set of rows changed.

What to poll (`targets`) and what to do with each round (`sink`) are callables of the
caller: the poller knows neither the database nor rates. `Poller.start`/`stop` run it in a
thread of its own (for `federica demo`); `run` is the loop itself (`federica monitor`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    usmAesCfb128Protocol,
    usmAesCfb256Protocol,
    usmHMAC192SHA256AuthProtocol,
    usmHMAC384SHA512AuthProtocol,
    usmHMACSHAAuthProtocol,
)

from federica.monitoring.rates import Reading, agent_restarted

if TYPE_CHECKING:
    from federica.monitoring.gufo_backend import GufoWalker

log = logging.getLogger(__name__)

SYS_UPTIME = "1.3.6.1.2.1.1.3"
IF_ENTRY = "1.3.6.1.2.1.2.2.1"
IFX_ENTRY = "1.3.6.1.2.1.31.1.1.1"
# Polled every interval: counters (by the names rates and storage use) and states.
COUNTERS = {
    "in_octets": f"{IFX_ENTRY}.6",  # ifHCInOctets
    "out_octets": f"{IFX_ENTRY}.10",  # ifHCOutOctets
    "in_ucast_pkts": f"{IFX_ENTRY}.7",  # ifHCInUcastPkts
    "out_ucast_pkts": f"{IFX_ENTRY}.11",  # ifHCOutUcastPkts
    "in_errors": f"{IF_ENTRY}.14",  # ifInErrors (Counter32)
    "out_errors": f"{IF_ENTRY}.20",
    "in_discards": f"{IF_ENTRY}.13",
    "out_discards": f"{IF_ENTRY}.19",
}
STATES = {
    "admin_status": f"{IF_ENTRY}.7",
    "oper_status": f"{IF_ENTRY}.8",
    "high_speed": f"{IFX_ENTRY}.15",  # Mb/s
}
# Read when the row set is new or changed.
NAMES = {"name": f"{IFX_ENTRY}.1", "alias": f"{IFX_ENTRY}.18"}
# One PDU asks for at most this many values (well inside a UDP datagram at ~40 B each).
MAX_VALUES_PER_PDU = 600
DEFAULT_ROWS = 16
# The SNMP libraries the poller can read with: pysnmp (pure Python, the default) and
# gufo-snmp (Rust; federica/monitoring/gufo_backend.py).
BACKENDS = ("pysnmp", "gufo")

AUTH_PROTOCOLS = {
    "sha": usmHMACSHAAuthProtocol,
    "sha256": usmHMAC192SHA256AuthProtocol,
    "sha512": usmHMAC384SHA512AuthProtocol,
}
PRIV_PROTOCOLS = {"aes128": usmAesCfb128Protocol, "aes256": usmAesCfb256Protocol}


class SnmpError(RuntimeError):
    """A device's agent did not answer, or answered with an error."""


@dataclass(frozen=True)
class V2c:
    community: str = field(repr=False)


@dataclass(frozen=True)
class V3:
    """SNMPv3 authPriv (USM): the only v3 level federica uses."""

    username: str
    auth_key: str = field(repr=False)
    priv_key: str = field(repr=False)
    auth_protocol: str = "sha256"
    priv_protocol: str = "aes128"


@dataclass(frozen=True)
class Target:
    device: str
    host: str
    port: int
    auth: V2c | V3
    timeout_s: float = 2.0
    retries: int = 1


@dataclass(frozen=True)
class Interface:
    if_index: int
    name: str
    alias: str
    counters: dict[str, int]
    admin_status: int | None
    oper_status: int | None
    high_speed: int | None


@dataclass(frozen=True)
class DeviceSample:
    """One device's answer: its time is when the answer carrying sysUpTime arrived."""

    device: str
    at: dt.datetime
    uptime_ticks: int
    interfaces: list[Interface]
    names_read: bool
    rtt_s: float = 0.0  # that answer's round trip


@dataclass(frozen=True)
class DeviceFailure:
    device: str
    at: dt.datetime
    error: str
    consecutive: int
    retry_in_rounds: int


@dataclass
class Round:
    number: int
    started: dt.datetime
    samples: list[DeviceSample] = field(default_factory=list)
    failures: list[DeviceFailure] = field(default_factory=list)
    # Devices in back-off this round (not asked).
    waiting: list[str] = field(default_factory=list)


@dataclass
class _DeviceState:
    names: dict[int, tuple[str, str]] = field(default_factory=dict)
    last: Reading | None = None
    failures: int = 0
    next_round: int = 0


Clock = Callable[[], dt.datetime]


class Poller:
    def __init__(
        self,
        targets: Callable[[], Sequence[Target]],
        sink: Callable[[Round], None],
        *,
        clock: Clock,
        interval_s: float = 30.0,
        concurrency: int = 200,
        max_backoff_intervals: int = 10,
        backend: str = "pysnmp",
    ) -> None:
        if interval_s <= 0:
            raise ValueError("the polling interval must be positive")
        if backend not in BACKENDS:
            raise ValueError(f"unknown SNMP backend {backend!r}; one of {', '.join(BACKENDS)}")
        # gufo-snmp (Rust) where pysnmp's CPU per interface is too high (bench B5); imported
        # only when chosen.
        self._gufo: GufoWalker | None = None
        if backend == "gufo":
            from federica.monitoring.gufo_backend import GufoWalker

            self._gufo = GufoWalker(clock, SnmpError)
        self._targets = targets
        self._sink = sink
        self._clock = clock
        self.interval_s = interval_s
        self._concurrency = max(1, concurrency)
        self._max_backoff = max(1, max_backoff_intervals)
        self._devices: dict[str, _DeviceState] = {}
        self._rounds = 0
        self._engine: SnmpEngine | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    # -- the loop ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, rounds: int | None = None) -> None:
        """Poll every interval until `stop` is set (or `rounds` rounds are done).

        Rounds start on a fixed grid; one that overran its interval skips the starts it
        missed rather than polling twice in a row."""
        start = time.monotonic()
        done = 0
        try:
            while not stop.is_set() and (rounds is None or done < rounds):
                # A round that fails as a whole (the database to read the targets from is
                # away) is logged; the poller itself goes on.
                try:
                    result = await self.poll_round()
                    await asyncio.to_thread(self._sink, result)
                except Exception:
                    log.exception("monitoring: round %d failed", self._rounds)
                done += 1
                elapsed = time.monotonic() - start
                wait = self.interval_s - elapsed % self.interval_s
                if rounds is not None and done >= rounds:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)
        finally:
            self.close()

    async def poll_round(self) -> Round:
        """Ask every device that is not backing off, all at once (up to the limit)."""
        self._rounds += 1
        number = self._rounds
        targets = await asyncio.to_thread(self._targets)
        result = Round(number, self._clock())
        limit = asyncio.Semaphore(self._concurrency)
        due = []
        for target in targets:
            state = self._devices.setdefault(target.device, _DeviceState())
            if state.next_round > number:
                result.waiting.append(target.device)
            else:
                due.append((target, state))

        async def one(target: Target, state: _DeviceState) -> None:
            async with limit:
                try:
                    sample = await self._poll_device(target, state)
                except SnmpError as exc:
                    state.failures += 1
                    backoff = min(2 ** (state.failures - 1), self._max_backoff)
                    state.next_round = number + backoff
                    failure = DeviceFailure(
                        target.device, self._clock(), str(exc), state.failures, backoff
                    )
                    result.failures.append(failure)
                    return
                state.failures = 0
                state.next_round = 0
                result.samples.append(sample)

        await asyncio.gather(*(one(t, s) for t, s in due))
        known = {t.device for t in targets}
        for gone in set(self._devices) - known:
            del self._devices[gone]
        return result

    async def _poll_device(self, target: Target, state: _DeviceState) -> DeviceSample:
        rows = len(state.names) or DEFAULT_ROWS
        at, rtt, uptime, table = await self._walk(target, {**COUNTERS, **STATES}, rows, uptime=True)
        indexes = set().union(*(col.keys() for col in table.values()))
        reading = Reading(at, uptime, {}, rtt_s=rtt)
        restarted = state.last is not None and agent_restarted(state.last, reading)
        names_read = False
        if restarted or set(state.names) != indexes:
            *_, names = await self._walk(target, NAMES, len(indexes) or rows, uptime=False)
            state.names = {
                i: (str(names["name"].get(i, "")), str(names["alias"].get(i, ""))) for i in indexes
            }
            names_read = True
        state.last = reading
        interfaces = []
        for i in sorted(indexes):
            name, alias = state.names.get(i, ("", ""))
            counters = {k: int(table[k][i]) for k in COUNTERS if i in table[k]}
            states = {k: table[k].get(i) for k in STATES}
            interfaces.append(
                Interface(
                    i,
                    name,
                    alias,
                    counters,
                    _int_or_none(states["admin_status"]),
                    _int_or_none(states["oper_status"]),
                    _int_or_none(states["high_speed"]),
                )
            )
        return DeviceSample(target.device, at, uptime, interfaces, names_read, rtt)

    async def _walk(
        self, target: Target, columns: dict[str, str], rows: int, *, uptime: bool
    ) -> tuple[dt.datetime, float, int, dict[str, dict[int, int | str]]]:
        """Every row of `columns` with GETBULK; the first PDU also asks for sysUpTime.
        Returns the first answer's arrival and round trip, sysUpTime, and the columns."""
        if self._gufo is not None:
            return await self._gufo.walk(target, columns, rows, uptime=uptime)
        engine = self._snmp_engine()
        transport = await UdpTransportTarget.create(
            (target.host, target.port), timeout=target.timeout_s, retries=target.retries
        )
        auth = _auth(target.auth)
        out: dict[str, dict[int, int | str]] = {name: {} for name in columns}
        cursor = dict(columns)
        pending = list(columns)
        at: dt.datetime | None = None
        rtt = 0.0
        ticks = 0
        while pending:
            ask_uptime = uptime and at is None
            reps = max(1, min(rows + 1, MAX_VALUES_PER_PDU // len(pending)))
            binds = [ObjectType(ObjectIdentity(cursor[name])) for name in pending]
            if ask_uptime:
                binds.insert(0, ObjectType(ObjectIdentity(SYS_UPTIME)))
            sent = time.monotonic()
            err_ind, err_status, err_index, answer = await bulk_cmd(
                engine,
                auth,
                transport,
                ContextData(),
                1 if ask_uptime else 0,
                reps,
                *binds,
                lookupMib=False,
            )
            if at is None:
                at, rtt = self._clock(), time.monotonic() - sent
            where = f"{target.device} ({target.host}:{target.port})"
            if err_ind:
                raise SnmpError(f"{where}: {err_ind}")
            if err_status:
                raise SnmpError(f"{where}: {err_status.prettyPrint()} at {err_index}")
            values = list(answer)
            if ask_uptime:
                if not values or not str(values[0][0]).startswith(SYS_UPTIME + "."):
                    raise SnmpError(f"{where}: no sysUpTime in the answer")
                ticks = int(values.pop(0)[1])
            finished: set[str] = set()
            for n, (oid_obj, value) in enumerate(values):
                name = pending[n % len(pending)]
                if name in finished:
                    continue
                oid, prefix = str(oid_obj), columns[name] + "."
                kind = value.__class__.__name__
                if (
                    not oid.startswith(prefix)
                    or kind in {"EndOfMibView", "NoSuchObject", "NoSuchInstance"}
                    or not _after(oid, cursor[name])
                ):
                    finished.add(name)
                    continue
                cursor[name] = oid
                index = oid[len(prefix) :]
                if index.isdigit():
                    out[name][int(index)] = _value(value)
            if not values:
                break
            pending = [name for name in pending if name not in finished]
        assert at is not None
        return at, rtt, ticks, out

    def _snmp_engine(self) -> SnmpEngine:
        if self._engine is None:
            self._engine = SnmpEngine()
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None

    # -- in a thread of its own -------------------------------------------------------------

    def start(self) -> None:
        """Poll in a daemon thread with its own event loop until `stop`."""
        if self._thread is not None:
            raise RuntimeError("the poller is already running")
        ready = threading.Event()

        def main() -> None:
            async def body() -> None:
                self._loop = asyncio.get_running_loop()
                self._stop = asyncio.Event()
                ready.set()
                await self.run(self._stop)

            asyncio.run(body())

        self._thread = threading.Thread(target=main, name="federica-poller", daemon=True)
        self._thread.start()
        ready.wait()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to stop after the round in progress, and wait for it."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None or loop is None or stop is None:
            return
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"the poller did not stop within {timeout} s")
        self._thread = None


def _auth(auth: V2c | V3) -> CommunityData | UsmUserData:
    if isinstance(auth, V2c):
        return CommunityData(auth.community, mpModel=1)  # noqa: S508  (v2c where configured)
    return UsmUserData(
        auth.username,
        authKey=auth.auth_key,
        privKey=auth.priv_key,
        authProtocol=AUTH_PROTOCOLS[auth.auth_protocol],
        privProtocol=PRIV_PROTOCOLS[auth.priv_protocol],
    )


def _after(oid: str, cursor: str) -> bool:
    """Whether `oid` is past `cursor` (an agent that answers out of order ends the walk)."""
    return tuple(map(int, oid.split("."))) > tuple(map(int, cursor.split(".")))


def _value(value: Any) -> int | str:
    if value.__class__.__name__ == "OctetString":
        return bytes(value).decode("utf-8", "replace")
    return int(value)


def _int_or_none(value: int | str | None) -> int | None:
    return value if isinstance(value, int) else None
