"""How long the audit records stay, and how they leave.

The audit log is append-only and never edited. It is kept online for the current and the
previous calendar year at least. An older year leaves the table only whole, and only
after it has been archived: `export` writes its rows (JSON lines in id order, the shape
`GET /api/v1/audit` shows) and their SHA-256; once that file is in the facility's
write-once store, `remove_year` deletes exactly those rows, in one transaction, after
checking that they still hash to the archived digest (with the append-only guard lifted,
which only the schema owner can do; the application's role cannot). The command that
does it appends an `audit.archive` entry naming the year, the count and the digest.

The counts of anonymous requests are an ordinary table: `forget_anonymous` drops old days.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from federica.aaa import append_only
from federica.aaa.audit import describe
from federica.aaa.models import AnonymousRequest, AuditEntry
from federica.errors import Conflict, FieldError, InvalidInput

KEEP_YEARS = 2  # the current year and the one before it always stay online


def _bounds(year: int) -> tuple[dt.datetime, dt.datetime]:
    return dt.datetime(year, 1, 1, tzinfo=dt.UTC), dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC)


def check_closed(year: int, now: dt.datetime) -> None:
    if not 1970 <= year <= now.year - KEEP_YEARS:
        raise InvalidInput(
            [
                FieldError(
                    "--year",
                    f"{year} may not leave the log: it keeps {now.year - 1} and {now.year} "
                    f"online; {now.year - KEEP_YEARS} and earlier can be archived",
                )
            ]
        )


def export(session: Session, year: int) -> tuple[str, str, int]:
    """The year's rows as JSON lines, their SHA-256, and how many there are."""
    start, end = _bounds(year)
    entries = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.at >= start, AuditEntry.at < end)
        .order_by(AuditEntry.id)
    )
    lines = [json.dumps(describe(e), sort_keys=True) + "\n" for e in entries]
    text = "".join(lines)
    return text, hashlib.sha256(text.encode()).hexdigest(), len(lines)


def remove_year(session: Session, year: int, archived_sha256: str, now: dt.datetime) -> int:
    """Deletes the year's rows if they are exactly the archive with that digest; how many.
    In the caller's transaction (which must be the schema owner's)."""
    check_closed(year, now)
    _, digest, count = export(session, year)
    if digest != archived_sha256.strip().lower():
        raise Conflict(
            f"the rows of {year} do not hash to that digest (they hash to {digest}): "
            "export the year again and archive that file"
        )
    start, end = _bounds(year)
    with append_only.suspended(session.connection()):
        session.execute(delete(AuditEntry).where(AuditEntry.at >= start, AuditEntry.at < end))
    return count


def forget_anonymous(session: Session, before: dt.date) -> int:
    """Drops the counts of days before `before`; how many rows."""
    result = session.execute(delete(AnonymousRequest).where(AnonymousRequest.day < before))
    return int(getattr(result, "rowcount", 0) or 0)
