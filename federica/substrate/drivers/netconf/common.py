"""What every NETCONF driver shares: one persistent session, capability check, locks,
commit and discard. Model-specific drivers (ietf, junos) add reading and loading."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from lxml import etree
from ncclient import manager
from ncclient.operations import RPCError

from federica.substrate.drivers.base import (
    DomainOperations,
    DriverError,
    Unreachable,
    missing_capabilities,
)
from federica.substrate.drivers.netconf.errors import lock_denied, rejected, translated
from federica.substrate.drivers.netconf.session import Endpoint, connect, drop


def sub(parent: etree._Element, tag: str, text: str | None = None, **attrib: str) -> etree._Element:
    """lxml SubElement with text in one call (for building configuration trees)."""
    el = etree.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


class NetconfDriver(DomainOperations):
    """Every RPC waits at most `endpoint.timeout` for its reply, and opening a session at
    most as long. A device that does not answer in time, or whose session breaks, loses
    its session at once (`lost` says why): later calls fail fast with Unreachable instead
    of waiting again, and the next open() connects afresh."""

    ncclient_device = "default"  # ncclient device handler

    def __init__(self, device: str, endpoint: Endpoint, mgr: manager.Manager | None = None) -> None:
        self.device = device
        self.endpoint = endpoint
        self._mgr = mgr
        self.lost: str | None = None

    def open(self) -> None:
        if self._mgr is not None and self._mgr.connected:
            return
        with self._call("connect"):
            self._mgr = connect(self.endpoint, device=self.ncclient_device)
        self.lost = None
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
            drop(mgr)  # if <close-session> got no answer, the transport is still up

    @contextlib.contextmanager
    def _call(
        self, action: str, on_rpc_error: Callable[[str, RPCError], DriverError] | None = None
    ) -> Iterator[None]:
        """One RPC, translated (errors name the device and the action); a device that does
        not answer loses its session."""
        try:
            with translated(self.device, action, on_rpc_error=on_rpc_error):
                yield
        except Unreachable as exc:
            mgr, self._mgr = self._mgr, None
            if mgr is not None:  # else it was lost before: keep that reason
                self.lost = exc.reason
                drop(mgr)
            raise

    @property
    def connected(self) -> bool:
        return self._mgr is not None and bool(self._mgr.connected)

    @property
    def mgr(self) -> manager.Manager:
        if self._mgr is None or not self._mgr.connected:
            why = f" (lost: {self.lost})" if self.lost else ""
            raise Unreachable(self.device, f"no open NETCONF session{why}")
        return self._mgr

    def capabilities(self) -> frozenset[str]:
        return frozenset(self.mgr.server_capabilities)

    def lock(self) -> None:
        with self._call("lock", on_rpc_error=lock_denied):
            self.mgr.lock(target="candidate")

    def unlock(self) -> None:
        with self._call("unlock"):
            self.mgr.unlock(target="candidate")

    def commit(self) -> None:
        with self._call("commit", on_rpc_error=rejected):
            self.mgr.commit()

    def discard(self) -> None:
        with self._call("discard-changes"):
            self.mgr.discard_changes()
