"""Named revision counters: cheap "has anything changed since I last looked?" checks.

`bump` increments a counter inside the caller's transaction. On PostgreSQL the UPDATE
takes the counter's row lock until commit, so writers of the same counter are
serialised and revisions are committed in increasing order: a reader that has seen
revision N has seen every change up to N. On SQLite writers are serialised anyway
(BEGIN IMMEDIATE).
"""

from __future__ import annotations

from sqlalchemy import Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from federica.db import Base, driver_sql

CALENDAR = "calendar"  # reservations, slices' windows, maintenance windows
SUBSTRATE = "substrate"  # the inventory


class Revision(Base):
    __tablename__ = "revisions"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


def bump(session: Session, name: str) -> int:
    """The next revision of `name`; holds the counter's lock until the transaction ends."""
    return bump_reading(session, name, name)[0]


def bump_reading(session: Session, name: str, other: str) -> tuple[int, int]:
    """Bump `name` as `bump` does and read counter `other` in the same statement (one
    round trip on the booking path, which needs the substrate's revision too)."""
    # Plain SQL: SQLAlchemy's statement handling would cost more than the query here.
    bump_sql = (
        "UPDATE revisions SET value = value + 1 WHERE name = ? "
        "RETURNING value, (SELECT o.value FROM revisions AS o WHERE o.name = ?)"
    )
    conn = session.connection()
    row = driver_sql(conn, bump_sql, (name, other)).first()
    if row is None:
        # First use of this counter (migrations seed the known ones). Writers that race
        # here all create it without error (the losers wait for the winner's commit on
        # PostgreSQL), then bump it one after the other.
        driver_sql(
            conn,
            "INSERT INTO revisions (name, value) VALUES (?, 0) ON CONFLICT (name) DO NOTHING",
            (name,),
        )
        row = driver_sql(conn, bump_sql, (name, other)).first()
        assert row is not None
    return int(row[0]), int(row[1] or 0)


def current(session: Session, name: str) -> int:
    value = session.scalar(select(Revision.value).where(Revision.name == name))
    return int(value or 0)


def all_current(session: Session) -> dict[str, int]:
    rows = driver_sql(session.connection(), "SELECT name, value FROM revisions")
    return {n: int(v) for n, v in rows}
