"""The one clock. Every "now" in the controller comes from the application context's
clock, so a test can move time for the API, the portal, the CLI and the worker at once."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class MovableClock:
    """A clock a test sets and moves; it stands still unless told otherwise."""

    def __init__(self, at: dt.datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("a clock's time must be timezone-aware")
        self._at = at
        self._guard = threading.Lock()

    def now(self) -> dt.datetime:
        with self._guard:
            return self._at

    def set(self, at: dt.datetime) -> None:
        with self._guard:
            self._at = at

    def advance(self, by: dt.timedelta) -> dt.datetime:
        with self._guard:
            self._at += by
            return self._at
