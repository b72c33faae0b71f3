"""What every NETCONF driver shares: one persistent session, capability check, locks,
commit and discard. Model-specific drivers (ietf, junos) add reading and loading."""

from __future__ import annotations

import contextlib

from lxml import etree
from ncclient import manager

from federica.substrate.drivers.base import (
    DomainOperations,
    DriverError,
    Unreachable,
    missing_capabilities,
)
from federica.substrate.drivers.netconf.errors import lock_denied, rejected, translated
from federica.substrate.drivers.netconf.session import Endpoint, connect


def sub(parent: etree._Element, tag: str, text: str | None = None, **attrib: str) -> etree._Element:
    """lxml SubElement with text in one call (for building configuration trees)."""
    el = etree.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


class NetconfDriver(DomainOperations):
    ncclient_device = "default"  # ncclient device handler

    def __init__(self, device: str, endpoint: Endpoint, mgr: manager.Manager | None = None) -> None:
        self.device = device
        self.endpoint = endpoint
        self._mgr = mgr

    def open(self) -> None:
        if self._mgr is not None and self._mgr.connected:
            return
        with translated(self.device, "connect"):
            self._mgr = connect(self.endpoint, device=self.ncclient_device)
        missing = missing_capabilities(self.capabilities())
        if missing:
            self.close()
            raise DriverError(self.device, f"lacks NETCONF capabilities {', '.join(missing)}")

    def close(self) -> None:
        mgr, self._mgr = self._mgr, None
        if mgr is not None and mgr.connected:
            # Closing a dead session fails too: nothing is left to close then.
            with contextlib.suppress(DriverError), translated(self.device, "close"):
                mgr.close_session()

    @property
    def connected(self) -> bool:
        return self._mgr is not None and bool(self._mgr.connected)

    @property
    def mgr(self) -> manager.Manager:
        if self._mgr is None or not self._mgr.connected:
            raise Unreachable(self.device, "no open NETCONF session")
        return self._mgr

    def capabilities(self) -> frozenset[str]:
        return frozenset(self.mgr.server_capabilities)

    def lock(self) -> None:
        with translated(self.device, "lock", on_rpc_error=lock_denied):
            self.mgr.lock(target="candidate")

    def unlock(self) -> None:
        with translated(self.device, "unlock"):
            self.mgr.unlock(target="candidate")

    def commit(self) -> None:
        with translated(self.device, "commit", on_rpc_error=rejected):
            self.mgr.commit()

    def discard(self) -> None:
        with translated(self.device, "discard-changes"):
            self.mgr.discard_changes()
