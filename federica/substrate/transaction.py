"""All-or-nothing configuration of several devices.

1. lock every candidate, one at a time in name order (two controllers never deadlock;
   a lock held elsewhere is retried until `lock_wait_s`, then refused);
2. load and validate the change on every device, in parallel; a device whose candidate
   then equals its running configuration is left alone (re-applying is a no-op);
3. confirmed-commit everywhere in parallel, with a timeout and a persist id: if this
   process dies from here on, every device rolls back by itself when the timeout ends;
4. confirm everywhere in parallel.

Any failure before the confirms cancels/discards everywhere, so every device's running
configuration is exactly what it was. If a confirm fails after others succeeded, the
confirmed ones are put back by an inverse change. Errors name the device and the reason.

A device that stops answering costs one RPC bound (the drivers' timeout, e.g. the
netconf_rpc_timeout_s setting): its driver drops the session, so the clean-up calls to it
fail at once while the others are put back. A confirmed commit that may have reached it
is cancelled by its next session, or rolls back by itself when the confirm timeout ends.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from federica.substrate.drivers.base import (
    Change,
    DeviceConfig,
    DeviceDriver,
    DriverError,
    LockDenied,
    Unreachable,
    change_between,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
Observer = Callable[[str], None]


class TransactionFailed(DriverError):
    """The transaction did not happen; `device` and `reason` say where and why first."""

    def __init__(
        self,
        device: str,
        reason: str,
        *,
        phase: str,
        others: Sequence[DriverError] = (),
        cleanup: Sequence[str] = (),
    ) -> None:
        self.phase = phase
        self.others = list(others)
        self.cleanup = list(cleanup)
        super().__init__(device, reason)

    def __str__(self) -> str:
        text = f"device {self.device}: {self.reason} (during {self.phase}; nothing was changed)"
        if self.others:
            text += "; also " + "; ".join(str(e) for e in self.others)
        if self.cleanup:
            text += "; clean-up problems: " + "; ".join(self.cleanup)
        return text


@dataclass
class TxReport:
    id: str
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    phases_ms: dict[str, float] = field(default_factory=dict)


def _each(
    pool: ThreadPoolExecutor, names: Sequence[str], fn: Callable[[str], T]
) -> tuple[dict[str, T], dict[str, DriverError]]:
    futures = {n: pool.submit(fn, n) for n in names}
    ok: dict[str, T] = {}
    bad: dict[str, DriverError] = {}
    for n, fut in futures.items():
        try:
            ok[n] = fut.result()
        except DriverError as exc:
            bad[n] = exc
        except Exception as exc:  # a bug or an unexpected library error: still a failure
            log.exception("device %s: unexpected error", n)
            bad[n] = DriverError(n, f"unexpected error: {exc!r}")
    return ok, bad


def run_transaction(
    drivers: Mapping[str, DeviceDriver],
    changes: Mapping[str, Change],
    *,
    confirm_timeout_s: int = 30,
    lock_wait_s: float = 2.0,
    tx_id: str | None = None,
    observer: Observer | None = None,
) -> TxReport:
    names = sorted(n for n, c in changes.items() if not c.is_empty())
    report = TxReport(id=tx_id or f"federica-{uuid.uuid4().hex[:12]}")
    if not names:
        return report
    notify = observer or (lambda _phase: None)
    t0 = time.perf_counter()

    def mark(phase: str) -> None:
        report.phases_ms[phase] = round((time.perf_counter() - t0) * 1000, 3)
        notify(phase)

    def fail(phase: str, errors: Mapping[str, DriverError], cleanup: Sequence[str] = ()) -> None:
        mark("failed")
        first = min(errors)
        raise TransactionFailed(
            first,
            errors[first].reason,
            phase=phase,
            others=[e for n, e in sorted(errors.items()) if n != first],
            cleanup=cleanup,
        )

    locked: list[str] = []
    committed: list[str] = []
    before: dict[str, DeviceConfig] = {}
    with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="netconf-tx") as pool:
        try:
            # Optimistic: lock everything at once; if any lock is held elsewhere, release
            # ours and lock one by one in name order (so two controllers never deadlock).
            got, bad = _each(pool, names, lambda n: drivers[n].lock())
            locked.extend(n for n in names if n in got)
            if bad:
                if any(not isinstance(e, LockDenied) for e in bad.values()):
                    fail("lock", {n: e for n, e in bad.items() if not isinstance(e, LockDenied)})
                _release(pool, drivers, locked)
                locked.clear()
                for n in names:
                    try:
                        _lock(drivers[n], lock_wait_s)
                    except DriverError as exc:
                        fail("lock", {n: exc})
                    locked.append(n)
            mark("locked")

            def load(n: str) -> bool:
                # A granted candidate lock means a clean candidate (RFC 6241 §7.5), so the
                # candidate equals running and one read serves as both.
                d = drivers[n]
                before[n] = d.get_config("running")
                if changes[n].apply_to(before[n]) == before[n]:
                    return False  # already so: re-applying is a no-op
                d.load(changes[n], base=before[n])
                d.validate()
                return True

            needed, bad = _each(pool, names, load)
            if bad:
                fail("load and validate", bad, _abort(pool, drivers, locked, []))
            to_commit = [n for n in names if needed[n]]
            report.unchanged = [n for n in names if not needed[n]]
            mark("validated")

            _, bad = _each(
                pool, to_commit, lambda n: drivers[n].commit_confirmed(confirm_timeout_s, report.id)
            )
            committed = [n for n in to_commit if n not in bad]
            if bad:
                fail(
                    "confirmed commit",
                    bad,
                    _abort(pool, drivers, locked, committed, persist=report.id)
                    + [
                        f"device {n}: if the confirmed commit reached it, its next session "
                        f"cancels it, or it rolls back by itself within {confirm_timeout_s} s"
                        for n, e in sorted(bad.items())
                        if isinstance(e, Unreachable)
                    ],
                )
            mark("committed")

            _, bad = _each(pool, committed, lambda n: drivers[n].confirm(report.id))
            if bad:
                # Those that did not confirm roll back by themselves (or now, if we can
                # still reach them); those that did are put back by the inverse change.
                done = [n for n in committed if n not in bad]
                problems = _abort(pool, drivers, locked, list(bad), persist=report.id)
                problems += _undo(pool, drivers, done, before, changes)
                fail("confirm", bad, problems)
            mark("confirmed")
            report.changed = committed
        finally:
            problems = _release(pool, drivers, locked)
            if problems:
                log.warning("transaction %s: unlock problems: %s", report.id, "; ".join(problems))
    return report


def _lock(driver: DeviceDriver, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    delay = 0.01
    while True:
        try:
            driver.lock()
            return
        except LockDenied:
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _abort(
    pool: ThreadPoolExecutor,
    drivers: Mapping[str, DeviceDriver],
    locked: Sequence[str],
    committed: Sequence[str],
    persist: str | None = None,
) -> list[str]:
    """Cancel pending confirmed commits, discard every candidate; returns what failed."""
    problems: list[str] = []
    if committed and persist is not None:
        _, bad = _each(pool, committed, lambda n: drivers[n].cancel_commit(persist))
        problems += [
            f"{e} (it rolls back by itself when the confirm timeout ends)" for e in bad.values()
        ]
    _, bad = _each(pool, locked, lambda n: drivers[n].discard())
    problems += [str(e) for e in bad.values()]
    return problems


def _undo(
    pool: ThreadPoolExecutor,
    drivers: Mapping[str, DeviceDriver],
    names: Sequence[str],
    before: Mapping[str, DeviceConfig],
    changes: Mapping[str, Change],
) -> list[str]:
    def undo(n: str) -> None:
        after = changes[n].apply_to(before[n])
        drivers[n].load(change_between(after, before[n]))
        drivers[n].commit()

    _, bad = _each(pool, names, undo)
    return [f"{e} (its change stays: repair by hand)" for e in bad.values()]


def _release(
    pool: ThreadPoolExecutor, drivers: Mapping[str, DeviceDriver], locked: Sequence[str]
) -> list[str]:
    _, bad = _each(pool, locked, lambda n: drivers[n].unlock())
    return [str(e) for e in bad.values()]
