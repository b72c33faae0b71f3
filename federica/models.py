"""Every ORM model, imported once so Base.metadata is complete (Alembic, tests)."""

from federica.aaa.models import (
    ApiToken,
    AuditEntry,
    Identity,
    LoginFailure,
    Membership,
    Project,
    User,
)
from federica.alarms.models import Alarm, ProjectWebhook, WebhookDelivery
from federica.estop.models import EStop
from federica.federation.models import FederationPeer, GuestBooking, RemotePart, SeenAssertion
from federica.federation.relay_models import EStopRelay
from federica.geni.models import GeniSlice
from federica.gmoc.models import GmocCollector
from federica.monitoring.models import (
    InterfaceRate,
    MonitoredDevice,
    MonitoredInterface,
    RollupMark,
)
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
    "Alarm",
    "ApiToken",
    "AuditEntry",
    "BorderPort",
    "ComputeHost",
    "Device",
    "EStop",
    "EStopRelay",
    "FederationPeer",
    "GeniSlice",
    "GmocCollector",
    "GuestBooking",
    "Identity",
    "InterfaceRate",
    "Link",
    "LoginFailure",
    "MaintenanceWindow",
    "Membership",
    "MonitoredDevice",
    "MonitoredInterface",
    "PeerFacility",
    "Pop",
    "Port",
    "Project",
    "ProjectQuota",
    "ProjectWebhook",
    "RemotePart",
    "Reservation",
    "Revision",
    "RollupMark",
    "SeenAssertion",
    "Slice",
    "SliceCircuit",
    "SliceEvent",
    "SliceNode",
    "StatusChange",
    "User",
    "WebhookDelivery",
]
