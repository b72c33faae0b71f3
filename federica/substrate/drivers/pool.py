"""Persistent driver sessions, one per device, reused across transactions.

`checkout(names)` hands out open drivers and holds each device's mutex (taken in name
order: two transactions never deadlock and never interleave RPCs on one session). A
driver whose session died is reopened on the next checkout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager

from federica.substrate.drivers.base import DeviceDriver, DriverError, Unreachable

log = logging.getLogger(__name__)
CLOSE_WAIT_S = 2.0


class DriverPool:
    def __init__(self, factory: Callable[[str], DeviceDriver]) -> None:
        self._factory = factory
        self._drivers: dict[str, DeviceDriver] = {}
        self._mutex: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _slot(self, name: str) -> tuple[DeviceDriver, threading.Lock]:
        with self._guard:
            if name not in self._drivers:
                self._drivers[name] = self._factory(name)
                self._mutex[name] = threading.Lock()
            return self._drivers[name], self._mutex[name]

    @contextmanager
    def checkout(self, names: Iterable[str]) -> Iterator[dict[str, DeviceDriver]]:
        with ExitStack() as stack:
            out: dict[str, DeviceDriver] = {}
            for name in sorted(set(names)):
                driver, mutex = self._slot(name)
                stack.enter_context(mutex)
                out[name] = driver
            for name, driver in out.items():
                try:
                    driver.open()  # no-op while the session lives; reconnects otherwise
                except Unreachable as exc:
                    log.warning("device %s unreachable: %s", name, exc.reason)
                    raise
            try:
                yield out
            except Unreachable as exc:
                # A lost session is reopened next time rather than reused half-dead.
                if exc.device in out:
                    out[exc.device].close()
                raise

    def warm(self, names: Iterable[str]) -> dict[str, str]:
        """Open these devices' sessions now, all at once, so that the first transaction
        does not open them one after the other (SSH key exchange and NETCONF hello:
        0.3-0.4 s a device on a busy 2-core machine). Returns device -> why it could not
        be opened; such a device is tried again at its next checkout."""

        def one(name: str) -> None:
            driver, mutex = self._slot(name)
            with mutex:
                driver.open()

        wanted = sorted(set(names))
        if not wanted:
            return {}
        with ThreadPoolExecutor(max_workers=min(len(wanted), 16)) as pool:
            futures = {name: pool.submit(one, name) for name in wanted}
        failed = {}
        for name, future in futures.items():
            exc = future.exception()
            if exc is not None:
                failed[name] = exc.reason if isinstance(exc, DriverError) else str(exc)
                log.warning("device %s unreachable: %s", name, failed[name])
        return failed

    def close_all(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """Close every session, all at once, waiting at most `wait_s` for the devices'
        replies: a device that does not answer its close-session would hold a stopping
        worker for its RPC timeout (10 s; one after the other, 40 s for four). Its session
        ends anyway when this process does."""
        with self._guard:
            drivers = list(self._drivers.items())
            self._drivers.clear()
        # Daemon threads: an unanswered close must not hold the interpreter's exit either.
        threads = [threading.Thread(target=d.close, daemon=True) for _, d in drivers]
        for t in threads:
            t.start()
        deadline = time.monotonic() + wait_s
        for (name, _), t in zip(drivers, threads, strict=True):
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                log.warning("device %s did not answer close-session; left to time out", name)
