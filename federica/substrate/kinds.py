"""Kinds of substrate things and the VLAN range: pure, shared by the schema, topology
validation and the embedding (which must not import the database layer)."""

from __future__ import annotations

import enum

VLAN_MIN, VLAN_MAX = 1, 4094


class PopRole(enum.StrEnum):
    CORE = "core"
    NON_CORE = "non-core"


class DeviceKind(enum.StrEnum):
    ROUTER = "router"
    SWITCH = "switch"


class PortKind(enum.StrEnum):
    INTERNAL = "internal"  # faces another device of the facility
    EDGE = "edge"  # faces a V-node or the outside world
    BORDER = "border"  # faces a peer facility (inter-domain stitching)
