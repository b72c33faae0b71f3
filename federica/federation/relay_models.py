"""E-stop relays: an emergency stop here that a peer must hear of, kept until it is
delivered (an outbox). The local stop never waits for it; the worker retries."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from federica.db import Base, UTCDateTime, str_enum, utcnow


class RelayDirection(enum.StrEnum):
    # This facility is the slice's home: the peer is told to stop its part (our guest
    # booking there, named by our request id).
    TO_VISITED = "to-visited"
    # This facility is the visited one: the peer (the slice's home) is told its part
    # here was stopped (named by its request id).
    TO_HOME = "to-home"


class RelayState(enum.StrEnum):
    PENDING = "pending"  # not delivered yet (retried)
    DELIVERED = "delivered"
    REFUSED = "refused"  # the peer answered 4xx: not retried (an alarm says so)


class EStopRelay(Base):
    __tablename__ = "federation_estop_relays"

    id: Mapped[int] = mapped_column(primary_key=True)
    slice_id: Mapped[int] = mapped_column(ForeignKey("slices.id", ondelete="CASCADE"), index=True)
    estop_id: Mapped[int] = mapped_column(Integer)
    peer: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(64))
    direction: Mapped[RelayDirection] = mapped_column(
        str_enum(RelayDirection, "federation_relay_direction")
    )
    state: Mapped[RelayState] = mapped_column(str_enum(RelayState, "federation_relay_state"))
    by: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    # Not tried again before this instant (a claim: whoever moves it forward delivers).
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    answer: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("estop_id", "peer", "request_id", name="estop_peer_request"),
    )
