"""The peer registry: the facilities this one trusts, each with its CA and agreement."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import CheckConstraint, Integer, String, Text
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
