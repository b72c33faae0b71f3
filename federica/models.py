"""Every ORM model, imported once so Base.metadata is complete (Alembic, tests)."""

from federica.slices.models import (
    Reservation,
    Slice,
    SliceCircuit,
    SliceNode,
    StatusChange,
)
from federica.substrate.models import (
    BorderPort,
    ComputeHost,
    Device,
    Link,
    PeerFacility,
    Pop,
    Port,
)

__all__ = [
    "BorderPort",
    "ComputeHost",
    "Device",
    "Link",
    "PeerFacility",
    "Pop",
    "Port",
    "Reservation",
    "Slice",
    "SliceCircuit",
    "SliceNode",
    "StatusChange",
]
