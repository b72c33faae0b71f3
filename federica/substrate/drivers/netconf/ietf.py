"""`ietf` driver: standard NETCONF with ietf-interfaces + federica-l2 (the emulated
devices' model, docs/emulator.md). One persistent session per driver."""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator
from typing import Any

from lxml import etree

from federica.substrate.drivers.base import (
    Change,
    DeviceConfig,
    DriverError,
    InterfaceState,
    Unreachable,
)
from federica.substrate.drivers.netconf import federica_l2 as model
from federica.substrate.drivers.netconf.common import NetconfDriver
from federica.substrate.drivers.netconf.errors import rejected


class IetfDriver(NetconfDriver):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Confirmed commits (persist ids) whose outcome is unknown: the device stopped
        # answering around them. The next session cancels them, so the device goes back at
        # once instead of holding the change (and refusing other commits) until the
        # confirm timeout.
        self.orphaned: set[str] = set()

    def open(self) -> None:
        was_open = self.connected
        super().open()
        if was_open:
            return
        for persist in sorted(self.orphaned):
            # Refused when it already ended (timed out, or never arrived): fine either way.
            with contextlib.suppress(DriverError):
                self.cancel_commit(persist)
            if self.connected:
                self.orphaned.discard(persist)

    @contextlib.contextmanager
    def _commit_call(self, action: str, persist: str, rejects: bool = False) -> Iterator[None]:
        try:
            with self._call(action, on_rpc_error=rejected if rejects else None):
                yield
        except Unreachable:
            self.orphaned.add(persist)
            raise

    # -- reading -------------------------------------------------------------------
    def _get(self, source: str) -> etree._Element:
        with self._call(f"get-config {source}"):
            reply = self.mgr.get_config(source=source, filter=model.FILTER)
        ele: etree._Element = reply.data_ele
        return ele

    def get_config(self, source: str = "running") -> DeviceConfig:
        return model.parse_config(self._get(source))

    def get_config_text(self, source: str = "running") -> str:
        return str(etree.tostring(self._get(source), pretty_print=True, encoding="unicode"))

    def interfaces(self) -> list[InterfaceState]:
        # netconfd keeps no operational state for these ports; SNMP has oper status.
        return [InterfaceState(p, up) for p, up in sorted(self.get_config().port_enabled.items())]

    def load(self, change: Change, base: DeviceConfig | None = None) -> None:
        el = model.change_config(change, base if base is not None else self.get_config("candidate"))
        if el is None:
            return
        with self._call("edit-config", on_rpc_error=rejected):
            self.mgr.edit_config(
                target="candidate", config=model.to_xml(el), error_option="rollback-on-error"
            )

    def diff(self) -> str:
        running = self.get_config_text("running").splitlines()
        candidate = self.get_config_text("candidate").splitlines()
        return "\n".join(
            difflib.unified_diff(running, candidate, "running", "candidate", lineterm="")
        )

    def validate(self) -> None:
        # The candidate's content is validated inline (<source><config>), not as
        # <source><candidate/>: on netconfd 2.13 validating the candidate datastore makes the
        # next commit silently drop the candidate's changes (tests/…/test_ietf_conformance).
        with self._call("get-config candidate"):
            data = self.mgr.get_config(source="candidate").data_ele
        config = etree.Element(f"{{{model.NC}}}config")
        config.extend(list(data))
        with self._call("validate", on_rpc_error=rejected):
            self.mgr.validate(source=config)

    def commit_confirmed(self, timeout_s: int, persist: str) -> None:
        with self._commit_call("confirmed commit", persist, rejects=True):
            self.mgr.commit(confirmed=True, timeout=str(timeout_s), persist=persist)

    def confirm(self, persist: str) -> None:
        with self._commit_call("confirming commit", persist):
            self.mgr.commit(persist_id=persist)

    def cancel_commit(self, persist: str) -> None:
        with self._commit_call("cancel-commit", persist):
            self.mgr.cancel_commit(persist_id=persist)
