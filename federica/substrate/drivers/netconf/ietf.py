"""`ietf` driver: standard NETCONF with ietf-interfaces + federica-l2 (the emulated
devices' model, docs/emulator.md). One persistent session per driver."""

from __future__ import annotations

import difflib

from lxml import etree

from federica.substrate.drivers.base import (
    Change,
    DeviceConfig,
    InterfaceState,
)
from federica.substrate.drivers.netconf import federica_l2 as model
from federica.substrate.drivers.netconf.common import NetconfDriver
from federica.substrate.drivers.netconf.errors import rejected, translated


class IetfDriver(NetconfDriver):
    # -- reading -------------------------------------------------------------------
    def _get(self, source: str) -> etree._Element:
        with translated(self.device, f"get-config {source}"):
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
        with translated(self.device, "edit-config", on_rpc_error=rejected):
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
        with translated(self.device, "get-config candidate"):
            data = self.mgr.get_config(source="candidate").data_ele
        config = etree.Element(f"{{{model.NC}}}config")
        config.extend(list(data))
        with translated(self.device, "validate", on_rpc_error=rejected):
            self.mgr.validate(source=config)

    def commit_confirmed(self, timeout_s: int, persist: str) -> None:
        with translated(self.device, "confirmed commit", on_rpc_error=rejected):
            self.mgr.commit(confirmed=True, timeout=str(timeout_s), persist=persist)

    def confirm(self, persist: str) -> None:
        with translated(self.device, "confirming commit"):
            self.mgr.commit(persist_id=persist)

    def cancel_commit(self, persist: str) -> None:
        with translated(self.device, "cancel-commit"):
            self.mgr.cancel_commit(persist_id=persist)
