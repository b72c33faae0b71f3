"""The poller's second SNMP backend: gufo-snmp (BER and the socket in Rust). Adapter: I/O only.

Chosen with `snmp_backend = "gufo"` where pysnmp's CPU per interface is too high (bench B5:
pyasn1's decoding is most of pysnmp's cost). Same contract as the pysnmp walk in
poller.py, checked by the same tests (tests/integration/monitoring/test_poller.py): every
row of the columns, sysUpTime with the first answer, the first answer's time and round
trip, errors as `SnmpError` naming the device and never the keys.

gufo walks one column per GETBULK series (not all columns side by side as the pysnmp walk
does); its per-request cost is small enough that more requests still cost less CPU. The
columns are read one after the other after sysUpTime, the same way every round, so a
rate over an interval is not skewed by it. A timeout starts the device's walk again, up
to the target's retries; each walk opens its own session (for v3: engine discovery).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from gufo.snmp import (
    Aes128Key,
    Aes256Key,
    KeyExpansion,
    Sha1Key,
    Sha256Key,
    Sha512Key,
    SnmpDecodeError,
    User,
)
from gufo.snmp import SnmpError as GufoError
from gufo.snmp.aio.client import SnmpSession

if TYPE_CHECKING:
    from federica.monitoring.poller import V3, Target

SYS_UPTIME_0 = "1.3.6.1.2.1.1.3.0"
NO_RESPONSE = "No SNMP response received before timeout"  # pysnmp's words: one message for both

AUTH_KEYS = {"sha": Sha1Key, "sha256": Sha256Key, "sha512": Sha512Key}
PRIV_KEYS = {"aes128": Aes128Key, "aes256": Aes256Key}

Table = dict[str, dict[int, int | str]]


class GufoWalker:
    def __init__(self, clock: Callable[[], dt.datetime], error: type[Exception]) -> None:
        self._clock = clock
        self._error = error  # the poller's SnmpError (this module may not import the poller)

    async def walk(
        self, target: Target, columns: dict[str, str], rows: int, *, uptime: bool
    ) -> tuple[dt.datetime, float, int, Table]:
        where = f"{target.device} ({target.host}:{target.port})"
        for attempt in range(target.retries + 1):
            try:
                return await self._walk_once(target, columns, rows, uptime=uptime)
            except TimeoutError:
                if attempt == target.retries:
                    raise self._error(f"{where}: {NO_RESPONSE}") from None
            except GufoError as exc:
                raise self._error(f"{where}: {type(exc).__name__}: {exc}") from None
            except OSError as exc:
                raise self._error(f"{where}: {exc.strerror or exc}") from None
        raise AssertionError("unreachable")

    async def _walk_once(
        self, target: Target, columns: dict[str, str], rows: int, *, uptime: bool
    ) -> tuple[dt.datetime, float, int, Table]:
        max_repetitions = max(1, min(rows + 1, MAX_REPETITIONS))
        session = _session(target, max_repetitions=max_repetitions)
        out: Table = {name: {} for name in columns}
        at: dt.datetime | None = None
        rtt = 0.0
        ticks = 0
        async with session:
            if uptime:
                sent = time.monotonic()
                value = await session.get(SYS_UPTIME_0)
                at, rtt = self._clock(), time.monotonic() - sent
                if not isinstance(value, int):
                    raise self._error(f"{target.device}: no sysUpTime in the answer")
                ticks = value
            for name, column in columns.items():
                prefix = column + "."
                reps = max_repetitions
                while True:
                    sent = time.monotonic()
                    try:
                        async for oid, value in session.getbulk(column, max_repetitions=reps):
                            if at is None:
                                at, rtt = self._clock(), time.monotonic() - sent
                            if not oid.startswith(prefix):
                                break
                            index = oid[len(prefix) :]
                            if index.isdigit() and value is not None:
                                out[name][int(index)] = _value(value)
                        break
                    except SnmpDecodeError:
                        # gufo reads answers of up to ~4 KB: 100 ifAlias strings are more.
                        # Ask for fewer values per request and read the column again.
                        if reps == 1:
                            raise
                        reps = max(1, reps // 2)
        if at is None:  # every column empty: the time of the last answer will do
            at = self._clock()
        return at, rtt, ticks, out

    def close(self) -> None:
        """Sessions are per walk; nothing stays open."""


# net-snmp answers at most 100 values per GETBULK by default (maxGetbulkResponses).
MAX_REPETITIONS = 100


def _session(target: Target, *, max_repetitions: int) -> SnmpSession:
    from federica.monitoring.poller import V2c

    common = {
        "addr": target.host,
        "port": target.port,
        "timeout": target.timeout_s,
        "max_repetitions": max_repetitions,
    }
    if isinstance(target.auth, V2c):
        return SnmpSession(community=target.auth.community, **common)  # type: ignore[arg-type]
    return SnmpSession(user=_user(target.auth), **common)  # type: ignore[arg-type]


def _user(auth: V3) -> User:
    return User(
        auth.username,
        auth_key=AUTH_KEYS[auth.auth_protocol](auth.auth_key.encode()),
        priv_key=PRIV_KEYS[auth.priv_protocol](auth.priv_key.encode()),
        # pysnmp's usmAesCfb256Protocol is the Reeder ("Cisco") expansion: the same keys.
        key_expansion=KeyExpansion.Cisco,
    )


def _value(value: int | float | str | bytes) -> int | str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    return int(value)
