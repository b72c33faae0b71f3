"""Persistent driver sessions, one per device, reused across transactions.

`checkout(names)` hands out open drivers and holds each device's mutex (taken in name
order: two transactions never deadlock and never interleave RPCs on one session). A
driver whose session died is reopened on the next checkout.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager

from federica.substrate.drivers.base import DeviceDriver, Unreachable


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
            for driver in out.values():
                driver.open()  # no-op while the session lives; reconnects otherwise
            try:
                yield out
            except Unreachable as exc:
                # A lost session is reopened next time rather than reused half-dead.
                if exc.device in out:
                    out[exc.device].close()
                raise

    def close_all(self) -> None:
        with self._guard:
            drivers = list(self._drivers.values())
            self._drivers.clear()
        for d in drivers:
            d.close()
