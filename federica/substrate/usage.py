"""Who uses a piece of the substrate, so the inventory never removes what is in use.

`substrate` must not import the packages that build on it (slices, federation), so they
register a reporter here; the inventory asks every reporter before it removes anything.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session


class Resource(enum.StrEnum):
    POP = "pop"
    DEVICE = "device"
    PORT = "port"
    LINK = "link"
    HOST = "host"
    PEER = "peer"


# (session, kind, database ids about to be removed) -> human descriptions of their users,
# e.g. "slice 'bgp-lab' (reserved until 2026-12-01 12:00 UTC)".
UsageReporter = Callable[[Session, Resource, Sequence[int]], list[str]]

_reporters: list[UsageReporter] = []


def register_usage_reporter(reporter: UsageReporter) -> None:
    if reporter not in _reporters:
        _reporters.append(reporter)


def unregister_usage_reporter(reporter: UsageReporter) -> None:
    if reporter in _reporters:
        _reporters.remove(reporter)


def users_of(session: Session, kind: Resource, ids: Sequence[int]) -> list[str]:
    if not ids:
        return []
    found: list[str] = []
    for reporter in _reporters:
        found.extend(reporter(session, kind, ids))
    return found
