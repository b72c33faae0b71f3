"""Alarms: one row per occurrence of a condition, from raised to cleared.

At most one open (not cleared) alarm per kind and subject: a partial unique index holds
that even with two evaluators at once. `slices` is the list of slices the subject
carried when last evaluated (JSON: id, name, project), for their owners' views.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from federica.db import Base, UTCDateTime


class Alarm(Base):
    __tablename__ = "alarms"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # see alarms.evaluate.Kind
    # What it is about: a device's name, "device:port", or a link's name.
    subject: Mapped[str] = mapped_column(String(160))
    device: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    link: Mapped[str | None] = mapped_column(String(64), default=None)
    detail: Mapped[str] = mapped_column(String(500), default="")
    raised_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    cleared_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    acked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    acked_by: Mapped[str | None] = mapped_column(String(128), default=None)
    # Hidden by the alarm of what it depends on (its device unreachable).
    suppressed: Mapped[bool] = mapped_column(Boolean, default=False)
    slices: Mapped[str] = mapped_column(Text, default="[]")

    __table_args__ = (
        Index(
            "uq_alarms_open",
            "kind",
            "subject",
            unique=True,
            sqlite_where=text("cleared_at IS NULL"),
            postgresql_where=text("cleared_at IS NULL"),
        ),
        Index("ix_alarms_raised_at", "raised_at"),
    )
