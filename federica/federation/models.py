"""The peer registry: the facilities this one trusts, each with its CA and agreement."""

from __future__ import annotations

import datetime as dt
import enum
import json

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from federica.db import Base, UTCDateTime, str_enum, utcnow
from federica.federation.agreement import Form, Operation, granted


class FederationPeer(Base):
    """A trusted peer facility. Its name is the one the topology's border ports name
    (`peer:` of a border port), so the advertisement can show it its border ports."""

    __tablename__ = "federation_peers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # The peer API's base URL (https://host:port).
    url: Mapped[str] = mapped_column(String(500))
    form: Mapped[Form] = mapped_column(str_enum(Form, "federation_form"))
    # The peer's facility CA (PEM) and its SHA-256 fingerprint: a peer is whoever holds a
    # certificate this CA issued. One CA names one peer (else a certificate is ambiguous).
    ca_pem: Mapped[str] = mapped_column(Text)
    ca_fingerprint: Mapped[str] = mapped_column(String(95), unique=True)
    # The operations granted (JSON list); NULL: all its form allows.
    allowed: Mapped[str | None] = mapped_column(Text, default=None)
    # The PoPs it may see (JSON list); NULL: all.
    pops: Mapped[str | None] = mapped_column(Text, default=None)
    # Local border port "device:port" -> the port on the peer's side (JSON object).
    borders: Mapped[str] = mapped_column(Text, default="{}")
    # Concurrent bookings the peer's guests may hold here.
    guest_quota: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (CheckConstraint("guest_quota >= 0", name="guest_quota"),)

    @property
    def operations(self) -> list[Operation]:
        return granted(self.form, json.loads(self.allowed) if self.allowed else None)

    @property
    def pop_names(self) -> list[str] | None:
        return json.loads(self.pops) if self.pops else None

    @property
    def border_map(self) -> dict[str, str]:
        loaded: dict[str, str] = json.loads(self.borders or "{}")
        return loaded


class SeenAssertion(Base):
    """An identity assertion's id (jti) seen from an issuer, kept until the assertion
    expires: the same assertion presented again is a replay."""

    __tablename__ = "federation_seen_assertions"

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(255))
    jti: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)

    __table_args__ = (UniqueConstraint("issuer", "jti", name="issuer_jti"),)


class GuestState(enum.StrEnum):
    HELD = "held"  # booked here, waiting for the peer's commit (or abort, or the timeout)
    COMMITTED = "committed"
    ABORTED = "aborted"  # by the peer, or its hold timed out


class GuestBooking(Base):
    """A booking a peer's user holds here (this facility is the visited one). The peer
    names it by its own request id, so a repeated hold or commit is answered, not redone."""

    __tablename__ = "federation_guest_bookings"

    id: Mapped[int] = mapped_column(primary_key=True)
    peer: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(64))
    # SHA-256 of the request document: the same request id with another request is refused.
    request_hash: Mapped[str] = mapped_column(String(64))
    slice_id: Mapped[int] = mapped_column(ForeignKey("slices.id", ondelete="CASCADE"), index=True)
    user_urn: Mapped[str] = mapped_column(String(255))
    state: Mapped[GuestState] = mapped_column(str_enum(GuestState, "federation_guest_state"))
    hold_until: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("peer", "request_id", name="peer_request"),)


class RemotePart(Base):
    """Part of a local slice booked at a peer (this facility is the home one): the peer's
    booking named by our request id, and the peer's slice."""

    __tablename__ = "federation_remote_parts"

    id: Mapped[int] = mapped_column(primary_key=True)
    slice_id: Mapped[int] = mapped_column(ForeignKey("slices.id", ondelete="CASCADE"), index=True)
    peer: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    remote_slice: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[GuestState] = mapped_column(str_enum(GuestState, "federation_guest_state"))
    # The nodes booked there (JSON list of their names) and the peer's last answer (JSON).
    nodes: Mapped[str] = mapped_column(Text, default="[]")
    answer: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
