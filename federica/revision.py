"""Named revision counters: cheap "has anything changed since I last looked?" checks.

`bump` increments a counter inside the caller's transaction. On PostgreSQL the UPDATE
takes the counter's row lock until commit, so writers of the same counter are
serialised and revisions are committed in increasing order: a reader that has seen
revision N has seen every change up to N. On SQLite writers are serialised anyway
(BEGIN IMMEDIATE).
"""

from __future__ import annotations

from sqlalchemy import Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from federica.db import Base

CALENDAR = "calendar"  # reservations, slices' windows, maintenance windows
SUBSTRATE = "substrate"  # the inventory


class Revision(Base):
    __tablename__ = "revisions"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


def bump(session: Session, name: str) -> int:
    """The next revision of `name`; holds the counter's lock until the transaction ends."""
    # Core on the session's connection: the ORM layer would double this hot query's cost.
    new = (
        session.connection()
        .execute(
            update(Revision)
            .where(Revision.name == name)
            .values(value=Revision.value + 1)
            .returning(Revision.value)
        )
        .scalar()
    )
    if new is None:  # first use of this counter (migrations also seed the known ones)
        session.add(Revision(name=name, value=1))
        session.flush()
        return 1
    return int(new)


def current(session: Session, name: str) -> int:
    value = session.scalar(select(Revision.value).where(Revision.name == name))
    return int(value or 0)


def all_current(session: Session) -> dict[str, int]:
    rows = session.connection().execute(select(Revision.name, Revision.value))
    return {n: int(v) for n, v in rows}
