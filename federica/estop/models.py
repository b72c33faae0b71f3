"""An emergency stop of one slice, kept for good: who, why, which ticket, how the target
was chosen, what was isolated where (and how), and the forensic snapshot of the slice as
it was stopped. At most one stop per slice is in force (not lifted) at a time.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from federica.db import Base, UTCDateTime


class EStop(Base):
    __tablename__ = "estops"

    id: Mapped[int] = mapped_column(primary_key=True)
    slice_id: Mapped[int] = mapped_column(ForeignKey("slices.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # when it was asked for
    by: Mapped[str] = mapped_column(String(100))  # the principal's name
    via: Mapped[str] = mapped_column(String(16))  # api, cli, portal, peer, am-api
    reason: Mapped[str] = mapped_column(String(500))
    ticket: Mapped[str | None] = mapped_column(String(100), default=None)
    selector: Mapped[str] = mapped_column(Text, default="{}")  # how the target was chosen
    # What isolation did, device by device, node by node (JSON; see estop.isolate).
    report: Mapped[str] = mapped_column(Text, default="{}")
    # The slice as it was stopped (JSON): segment configuration per device, node
    # processes, last counters.
    snapshot: Mapped[str] = mapped_column(Text, default="{}")
    isolated_ms: Mapped[float | None] = mapped_column(default=None)
    forensic_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    hold_by: Mapped[str | None] = mapped_column(String(100), default=None)
    lifted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    lifted_by: Mapped[str | None] = mapped_column(String(100), default=None)
    lift_reason: Mapped[str | None] = mapped_column(String(500), default=None)

    __table_args__ = (
        Index(
            "uq_estops_in_force",
            "slice_id",
            unique=True,
            sqlite_where=text("lifted_at IS NULL"),
            postgresql_where=text("lifted_at IS NULL"),
        ),
    )
