"""Every ORM model, imported once so Base.metadata is complete (Alembic, tests)."""

from federica.revision import Revision
from federica.slices.models import (
    MaintenanceWindow,
    ProjectQuota,
    Reservation,
    Slice,
    SliceCircuit,
    SliceEvent,
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
    "MaintenanceWindow",
    "PeerFacility",
    "Pop",
    "Port",
    "ProjectQuota",
    "Reservation",
    "Revision",
    "Slice",
    "SliceCircuit",
    "SliceEvent",
    "SliceNode",
    "StatusChange",
]
