"""`junos` driver: Juniper MX/EX over NETCONF (ncclient's junos device handler).

Proven here: the RPCs it sends, byte for byte (golden files, through ncclient's junos
handler), and the parsing of Junos configuration replies. Not yet proven against a real
MX/EX — see docs/drivers.md for what remains to check on hardware.

Differences from `ietf`, all of them Junos facts: ncclient's junos handler sends
<commit-configuration><confirmed/><confirm-timeout>, which Junos counts in minutes, so a
timeout is rounded up to whole minutes; Junos implements confirmed-commit 1.0, which has
no persist id, so `persist` is accepted and ignored and any later commit confirms;
cancel-commit is "load rollback 1, commit" (what `rollback 1; commit` does). Junos
accepts configuration for interfaces that are not installed, so the driver itself checks
ports against the inventory, and refuses a (port, VLAN) another federica segment holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lxml import etree
from ncclient import manager
from ncclient.operations import RPCError

from federica.substrate.drivers.base import (
    Change,
    ConfigIssue,
    ConfigRejected,
    DeviceConfig,
    DriverError,
    InterfaceState,
    Segment,
)
from federica.substrate.drivers.netconf import junos_xml as jx
from federica.substrate.drivers.netconf.common import NetconfDriver
from federica.substrate.drivers.netconf.errors import rejected
from federica.substrate.drivers.netconf.session import Endpoint


class JunosDriver(NetconfDriver):
    ncclient_device = "junos"

    def __init__(
        self,
        device: str,
        endpoint: Endpoint,
        *,
        ports: tuple[str, ...],
        style: jx.Style = "mx",
        mgr: manager.Manager | None = None,
    ) -> None:
        super().__init__(device, endpoint, mgr)
        self.ports = ports  # from the inventory
        self.style = style

    def _rpc(
        self,
        what: str,
        rpc: etree._Element,
        on_error: Callable[[str, RPCError], DriverError] | None = None,
    ) -> etree._Element:
        with self._call(what, on_rpc_error=on_error):
            reply = self.mgr.rpc(rpc)
        # The junos handler returns an NCElement with namespaces stripped.
        ele: etree._Element = etree.fromstring(reply.tostring)
        return ele

    def _config(self, database: str) -> etree._Element:
        return self._rpc(
            f"get-configuration {database}",
            jx.get_configuration("committed" if database == "running" else "candidate"),
        )

    def get_config(self, source: str = "running") -> DeviceConfig:
        cfg = jx.parse_configuration(self._config(source))
        # Junos lists only configured interfaces; the inventory's ports are enabled unless
        # the configuration disables them.
        ports = {p: cfg.port_enabled.get(p, True) for p in self.ports}
        return DeviceConfig(port_enabled=ports, segments=cfg.segments)

    def get_config_text(self, source: str = "running") -> str:
        return str(etree.tostring(self._config(source), pretty_print=True, encoding="unicode"))

    def interfaces(self) -> list[InterfaceState]:
        reply = self._rpc("get-interface-information", jx.interface_information())
        out = []
        for phy in reply.iter("physical-interface"):
            name = (phy.findtext("name") or "").strip()
            admin = (phy.findtext("admin-status") or "").strip() == "up"
            oper = (phy.findtext("oper-status") or "").strip() == "up"
            out.append(InterfaceState(name, admin, oper))
        return out

    def load(self, change: Change, base: DeviceConfig | None = None) -> None:
        current = base if base is not None else self.get_config("candidate")
        add = [s for s in change.add if current.segments.get(s.name) != s]
        for name, enabled in change.segment_state:
            seg = current.segments.get(name)
            if seg is not None and seg.enabled != enabled and name not in {s.name for s in add}:
                add.append(
                    Segment(
                        seg.name,
                        seg.attachments,
                        owner=seg.owner,
                        enabled=enabled,
                        bandwidth_mbps=seg.bandwidth_mbps,
                    )
                )
        remove = [n for n in change.remove if n in current.segments]
        unknown = [p for p, _ in change.port_state if p not in self.ports]
        if unknown:
            raise ConfigRejected(
                self.device,
                [
                    ConfigIssue(f"interfaces {p}", f"port {p} is not on this device")
                    for p in unknown
                ],
            )
        ports = [(p, e) for p, e in change.port_state if current.port_enabled.get(p, True) != e]
        if not (add or remove or ports):
            return
        self._check(add, current, set(remove))
        self._rpc(
            "load-configuration",
            jx.load_configuration(jx.change_configuration(add, remove, ports, self.style)),
            rejected,
        )

    def _check(self, add: list[Segment], current: DeviceConfig, removed: set[str]) -> None:
        """What netconfd's schema refuses and Junos would accept or refuse only at commit."""
        issues: list[ConfigIssue] = []
        held = {
            (a.port, a.vlan): s.name
            for s in current.segments.values()
            if s.name not in removed
            for a in s.attachments
        }
        for s in add:
            where = f"segment {s.name}"
            for a in s.attachments:
                if a.port not in self.ports:
                    issues.append(
                        ConfigIssue(
                            f"{where} {a.port}",
                            f"port {a.port} is not on "
                            "this device (required value instance not found)",
                        )
                    )
                owner = held.get((a.port, a.vlan))
                if owner is not None and owner != s.name:
                    issues.append(
                        ConfigIssue(f"{where} {a.port}.{a.vlan}", f"data exists (used by {owner})")
                    )
            if self.style == "ex" and len({a.vlan for a in s.attachments}) > 1:
                issues.append(
                    ConfigIssue(
                        where,
                        "this device cannot translate VLAN tags: all "
                        "attachments of a cross-connect must use the same VLAN",
                    )
                )
        if issues:
            raise ConfigRejected(self.device, issues)

    def diff(self) -> str:
        reply = self._rpc("compare", jx.compare_rollback())
        text = "".join(str(t) for t in reply.itertext()).strip()
        return "" if not text or re.fullmatch(r"\s*", text) else text

    def validate(self) -> None:
        self._rpc("commit check", jx.commit_check(), rejected)

    def commit_confirmed(self, timeout_s: int, persist: str) -> None:
        with self._call("confirmed commit", on_rpc_error=rejected):
            self.mgr.commit(confirmed=True, timeout=str(timeout_s))

    def confirm(self, persist: str) -> None:
        with self._call("confirming commit"):
            self.mgr.commit()

    def cancel_commit(self, persist: str) -> None:
        self._rpc("load rollback 1", jx.rollback(1))
        with self._call("commit (cancel)"):
            self.mgr.commit()
