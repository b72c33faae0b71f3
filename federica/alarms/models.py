"""Alarms: one row per occurrence of a condition, from raised to cleared.

At most one open (not cleared) alarm per kind and subject: a partial unique index holds
that even with two evaluators at once. `slices` is the list of slices the subject
carried when last evaluated (JSON: id, name, project), for their owners' views.
A project may have a webhook: its alarms' events are queued as deliveries, sent by the
monitor's loop (federica.alarms.webhooks).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, text
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


class ProjectWebhook(Base):
    """Where a project's alarms are POSTed. The secret signs each body (HMAC-SHA256); it
    is shown once, when set, and never logged."""

    __tablename__ = "project_webhooks"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(String(128))
    set_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    set_by: Mapped[str] = mapped_column(String(128), default="")


class WebhookDelivery(Base):
    """One alarm event for one project's webhook, from queued to delivered or given up.
    `body` is frozen when queued: every retry sends (and signs) the same bytes."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarms.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(16))  # raised | cleared
    body: Mapped[str] = mapped_column(Text)
    queued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    last_status: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str] = mapped_column(String(500), default="")

    __table_args__ = (
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_project", "project_id", "id"),
    )
