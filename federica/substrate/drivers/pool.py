"""Persistent driver sessions, one per device, reused across transactions.

`checkout(names)` hands out open drivers and holds each device's mutex (taken in name
order: two transactions never deadlock and never interleave RPCs on one session). A
driver whose session died is reopened on the next checkout. `on_state(device, reachable,
reason)` hears, at every checkout, whether each device could be reached (a session opened,
or a driver lost its session because the device stopped answering).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager

from federica.substrate.drivers.base import DeviceDriver, DriverError, Unreachable

StateObserver = Callable[[str, bool, str], None]


class DriverPool:
    def __init__(
        self, factory: Callable[[str], DeviceDriver], on_state: StateObserver | None = None
    ) -> None:
        self._factory = factory
        self._on_state: StateObserver = on_state or (lambda _d, _r, _why: None)
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
                    self._on_state(name, False, exc.reason)
                    raise
                except DriverError:
                    raise  # reached, but refused (host key, capabilities): not a loss
                self._on_state(name, True, "")
            try:
                yield out
            except Unreachable as exc:
                # A lost session is reopened next time rather than reused half-dead.
                if exc.device in out:
                    out[exc.device].close()
                raise
            finally:
                for name, driver in out.items():
                    lost = getattr(driver, "lost", None)
                    if lost:
                        self._on_state(name, False, lost)

    def close_all(self) -> None:
        with self._guard:
            drivers = list(self._drivers.values())
            self._drivers.clear()
        for d in drivers:
            d.close()
