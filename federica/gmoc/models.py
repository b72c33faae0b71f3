"""The collectors registered to read the datastore, each with its allow list."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from federica.db import Base, UTCDateTime, utcnow


class GmocCollector(Base):
    """A monitoring collector (e.g. GENI's GMOC) allowed to poll this datastore. It proves
    who it is by a client certificate chaining to the configured trust root whose subject
    names `cert_name` (a SAN URI or the CN), or by its token (only the digest is kept)."""

    __tablename__ = "gmoc_collectors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    cert_name: Mapped[str | None] = mapped_column(String(500), unique=True, default=None)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    # The one project whose slices it sees; None: the whole aggregate.
    project: Mapped[str | None] = mapped_column(String(64), default=None)
    users: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
