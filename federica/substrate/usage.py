"""Who uses a piece of the substrate, so the inventory never removes what is in use.

`substrate` must not import the packages that build on it (slices, federation): the
application context gives the sessions it makes their reporters, and the inventory asks
every one before it removes anything.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session, sessionmaker


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

REPORTERS_KEY = "federica.usage.reporters"


def attach(factory: sessionmaker[Session], reporters: Sequence[UsageReporter]) -> None:
    """Sessions from `factory` ask these reporters (the application context's) before the
    inventory removes anything."""
    factory.configure(info={**(factory.kw.get("info") or {}), REPORTERS_KEY: tuple(reporters)})


def users_of(session: Session, kind: Resource, ids: Sequence[int]) -> list[str]:
    if not ids:
        return []
    try:
        reporters: tuple[UsageReporter, ...] = session.info[REPORTERS_KEY]
    except KeyError:
        # Fail closed: without the reporters nobody could say what is in use.
        raise RuntimeError(
            "this session knows no usage reporters: make sessions with the application "
            "context's factories (federica.context.make_context)"
        ) from None
    found: list[str] = []
    for reporter in reporters:
        found.extend(reporter(session, kind, ids))
    return found
