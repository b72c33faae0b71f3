"""What the aggregate keeps of a GENI slice beside the local slice it books."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from federica.db import Base, UTCDateTime
from federica.slices.models import Slice


class GeniSlice(Base):
    """A local slice booked by an Allocate: the GENI slice URN it serves, who allocated
    it, and how far it got (allocated → provisioned → started)."""

    __tablename__ = "geni_slices"

    id: Mapped[int] = mapped_column(primary_key=True)
    slice_id: Mapped[int] = mapped_column(ForeignKey("slices.id", ondelete="CASCADE"), unique=True)
    slice_urn: Mapped[str] = mapped_column(String(300), index=True)
    user_urn: Mapped[str] = mapped_column(String(300))
    # An allocation not provisioned by then is released (an end event due then).
    allocation_expires: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    provisioned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    stopped_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)

    slice: Mapped[Slice] = relationship(lazy="joined")
