"""Names of the facility's things in the GENI monitoring form. Pure: no I/O.

Ids follow the GENI datastores' convention `<authority>_<type>_<name>` (an aggregate's id
is the facility's short name); URNs are `urn:publicid:IDN+<authority>+<type>+<name>`; a
per-VLAN interface appends `:<tag>` to its interface's id and URN. A slice's URN carries
its project as a sub-authority (`<authority>:<project>`), as GENI slice URNs do. Every
`selfRef`/`href` is the datastore's own URL of the object, its id percent-encoded but for
':' and '/' (port names hold '/'; the routes take ids with slashes).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import quote

SCHEMA_VERSION = "20151105"
SCHEMA_BASE = f"http://www.gpolab.bbn.com/monitoring/schema/{SCHEMA_VERSION}"
MONITORING_VERSION = "federica-gmoc-1"
# The datastore's types, in the order opsconfig lists them.
INFO_TYPES = (
    "aggregate",
    "node",
    "interface",
    "interfacevlan",
    "link",
    "sliver",
    "slice",
    "user",
    "authority",
    "opsconfig",
)
# A name space for the deterministic UUIDs of slices and slivers.
UUID_SPACE = uuid.UUID("4d0f3b5e-6a1c-5e0b-9a57-7f3c1e2d9b40")


@dataclass(frozen=True)
class Site:
    """Who this datastore speaks for and where it is reached."""

    name: str  # the facility's short name: the aggregate's and the opsconfig's id
    authority: str  # the URN authority, e.g. federica.example.org
    base_url: str  # the datastore's root URL, no trailing '/'
    period_s: int = 30  # how often the poller measures (reported_metrics' period)

    def schema(self, kind: str) -> str:
        return f"{SCHEMA_BASE}/{kind}#"

    def urn(self, kind: str, name: str) -> str:
        return f"urn:publicid:IDN+{self.authority}+{kind}+{name}"

    def id(self, kind: str, name: str) -> str:
        return f"{self.authority}_{kind}_{name}"

    def href(self, kind: str, obj_id: str) -> str:
        return f"{self.base_url}/info/{kind}/{quote(obj_id, safe=':/')}"

    @property
    def aggregate_urn(self) -> str:
        return self.urn("authority", "am")

    @property
    def authority_urn(self) -> str:
        return self.urn("authority", "sa")

    @property
    def measref(self) -> str:
        return f"{self.base_url}/data/"

    # The facility's things, by their natural keys.
    def node_id(self, node: str) -> str:
        return self.id("node", node)

    def node_urn(self, node: str) -> str:
        return self.urn("node", node)

    def interface_id(self, device: str, port: str) -> str:
        return self.id("interface", f"{device}:{port}")

    def interface_urn(self, device: str, port: str) -> str:
        return self.urn("interface", f"{device}:{port}")

    def vlan_id(self, device: str, port: str, tag: int) -> str:
        return f"{self.interface_id(device, port)}:{tag}"

    def vlan_urn(self, device: str, port: str, tag: int) -> str:
        return f"{self.interface_urn(device, port)}:{tag}"

    def link_id(self, name: str) -> str:
        return self.id("link", name)

    def link_urn(self, name: str) -> str:
        return self.urn("link", name)

    def circuit_name(self, slice_id: int, circuit: str) -> str:
        return f"slice{slice_id}-{circuit}"

    def slice_id(self, slice_id: int) -> str:
        return self.id("slice", str(slice_id))

    def slice_urn(self, project: str | None, name: str) -> str:
        authority = f"{self.authority}:{project}" if project else self.authority
        return f"urn:publicid:IDN+{authority}+slice+{name}"

    def sliver_id(self, slice_id: int) -> str:
        return self.id("sliver", str(slice_id))

    def sliver_urn(self, slice_id: int) -> str:
        return self.urn("sliver", str(slice_id))

    def user_id(self, username: str) -> str:
        return self.id("user", username)

    def user_urn(self, username: str) -> str:
        return self.urn("user", username)

    def uuid(self, kind: str, key: int) -> str:
        return str(uuid.uuid5(UUID_SPACE, f"{self.authority}/{kind}/{key}"))


def split_prefix(site: Site, kind: str, obj_id: str) -> str | None:
    """The name inside an id of `kind` (None: not one of this site's ids of that kind)."""
    prefix = f"{site.authority}_{kind}_"
    return obj_id[len(prefix) :] if obj_id.startswith(prefix) else None
