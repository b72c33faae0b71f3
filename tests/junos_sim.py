"""A small simulated Junos device behind a real ncclient Manager (junos device handler).

For tests only: it lets the `junos` driver run the shared conformance suite and shows
the exact RPCs ncclient's junos handler puts on the wire. It implements just what
federica sends: Junos load semantics (merge; replace="replace"; delete="delete"),
candidate and committed databases with rollback history, an exclusive candidate lock,
commit confirmed with a timer, commit check, compare, discard, interface information.
It is a fake; it does not prove anything about a real MX/EX.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import threading
from typing import Any

from lxml import etree
from ncclient import manager
from ncclient.capabilities import Capabilities
from ncclient.manager import make_device_handler
from ncclient.transport.session import Session

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
JUNOS_CAPS = [
    "urn:ietf:params:netconf:base:1.0",
    "urn:ietf:params:netconf:capability:candidate:1.0",
    "urn:ietf:params:netconf:capability:confirmed-commit:1.0",
    "urn:ietf:params:netconf:capability:validate:1.0",
    "urn:ietf:params:netconf:capability:url:1.0?scheme=http,ftp,file",
    "http://xml.juniper.net/netconf/junos/1.0",
]
_ids = itertools.count(100)


def _local(tag: str) -> str:
    return etree.QName(tag).localname if tag.startswith("{") else tag


def _strip(el: etree._Element) -> etree._Element:
    """Copy without namespaces and without Junos operation attributes."""
    out = etree.Element(_local(el.tag))
    out.text = el.text
    for child in el:
        if isinstance(child.tag, str):
            out.append(_strip(child))
    return out


def _key(el: etree._Element) -> tuple[str, ...]:
    name = el.find("name")
    if name is not None:
        return (_local(el.tag), name.text or "")
    if _local(el.tag) == "apply-groups":  # a leaf-list: its value is its identity
        return ("apply-groups", (el.text or "").strip())
    return (_local(el.tag),)


def merge(target: etree._Element, source: etree._Element) -> None:
    for child in source:
        if not isinstance(child.tag, str):
            continue
        key = _key(child)
        existing = next((t for t in target if _key(t) == key), None)
        if child.get("delete") == "delete":
            if existing is not None:
                target.remove(existing)
            continue
        if child.get("replace") == "replace" and existing is not None:
            target.remove(existing)
            existing = None
        if existing is None:
            target.append(_strip(child))
        elif len(child):
            merge(existing, child)
        else:
            existing.text = child.text


class JunosError(Exception):
    def __init__(self, tag: str, message: str, path: str = "", info: str = "") -> None:
        super().__init__(message)
        self.tag, self.message, self.path, self.info = tag, message, path, info


class SimJunos:
    def __init__(self, name: str, ports: list[str], *, minute_s: float = 60.0) -> None:
        self.name = name
        self.ports = ports
        self.minute_s = minute_s  # tests shrink Junos' minute so confirm timeouts pass quickly
        self.guard = threading.RLock()
        self.committed = etree.Element("configuration")
        self.history: list[etree._Element] = [copy.deepcopy(self.committed)]
        self.candidate = copy.deepcopy(self.committed)
        self.lock_owner: int | None = None
        self.timer: threading.Timer | None = None
        self.sent: list[str] = []  # every RPC as received, for golden tests

    # -- the operations ------------------------------------------------------------
    def handle(self, session: int, op: etree._Element) -> etree._Element | None:
        name = _local(op.tag)
        with self.guard:
            if name in {"lock", "unlock"}:
                if self.lock_owner not in (None, session):
                    raise JunosError(
                        "lock-denied",
                        "configuration database locked by: another session",
                        info=f"<session-id>{self.lock_owner}</session-id>",
                    )
                self.lock_owner = session if name == "lock" else None
                return None
            if name == "close-session":
                self.release(session)
                return None
            if name == "get-configuration":
                if op.get("compare") == "rollback":
                    out = etree.Element("configuration-output")
                    out.text = self._diff()
                    return out
                db = self.committed if op.get("database") == "committed" else self.candidate
                return copy.deepcopy(db)
            if name == "get-interface-information":
                info = etree.Element("interface-information")
                for p in self.ports:
                    phy = etree.SubElement(info, "physical-interface")
                    etree.SubElement(phy, "name").text = p
                    disabled = self.committed.find(f"interfaces/interface[name='{p}']/disable")
                    etree.SubElement(phy, "admin-status").text = (
                        "down" if disabled is not None else "up"
                    )
                    etree.SubElement(phy, "oper-status").text = (
                        "down" if disabled is not None else "up"
                    )
                return info
            self._writable(session)
            if name == "load-configuration":
                if op.get("rollback") is not None:
                    n = int(op.get("rollback") or 0)
                    self.candidate = copy.deepcopy(self.history[min(n, len(self.history) - 1)])
                    return None
                new = copy.deepcopy(self.candidate)
                cfg = op.find("{*}configuration")
                if cfg is None:
                    cfg = op.find("configuration")
                assert cfg is not None
                merge(new, cfg)
                self._check_syntax(new)
                self.candidate = new
                return None
            if name == "discard-changes":
                self.candidate = copy.deepcopy(self.committed)
                return None
            if name == "commit-configuration":
                self._check(self.candidate)
                if op.find("check") is not None:
                    return None
                confirmed = op.find("confirmed") is not None
                if self.timer is not None:
                    self.timer.cancel()
                    self.timer = None
                self.history.insert(0, copy.deepcopy(self.candidate))
                self.committed = copy.deepcopy(self.candidate)
                if confirmed:
                    minutes = int(op.findtext("confirm-timeout") or "10")
                    self.timer = threading.Timer(minutes * self.minute_s, self._auto_rollback)
                    self.timer.daemon = True
                    self.timer.start()
                return None
        raise JunosError("operation-not-supported", f"syntax error, expecting <rpc>: {name}")

    def release(self, session: int) -> None:
        with self.guard:
            if self.lock_owner == session:
                self.lock_owner = None
                self.candidate = copy.deepcopy(self.committed)

    def _writable(self, session: int) -> None:
        if self.lock_owner not in (None, session):
            raise JunosError(
                "lock-denied",
                "configuration database locked by another session",
                info=f"<session-id>{self.lock_owner}</session-id>",
            )

    def _auto_rollback(self) -> None:
        with self.guard:
            self.timer = None
            previous = copy.deepcopy(self.history[1])
            self.history.insert(0, previous)
            self.committed = copy.deepcopy(previous)
            self.candidate = copy.deepcopy(previous)

    def _diff(self) -> str:
        a = etree.tostring(self.committed, pretty_print=True, encoding="unicode").splitlines()
        b = etree.tostring(self.candidate, pretty_print=True, encoding="unicode").splitlines()
        return "\n".join(difflib.unified_diff(a, b, "committed", "candidate", lineterm=""))

    def _check_syntax(self, cfg: etree._Element) -> None:
        for vid in cfg.iter("vlan-id"):
            if vid.text == "none":
                continue
            if not (vid.text or "").isdigit() or not 1 <= int(vid.text or "0") <= 4094:
                raise JunosError(
                    "invalid-value",
                    f"Value {vid.text} is not within range (1..4094)",
                    path="[edit interfaces interface unit vlan-id]",
                )

    def _check(self, cfg: etree._Element) -> None:
        seen: dict[str, str] = {}
        for dom in cfg.iter("domain"):
            for itf in dom.findall("interface"):
                unit = itf.findtext("name") or ""
                if unit in seen:
                    raise JunosError(
                        "operation-failed",
                        f"Interface {unit} is in bridge domains {seen[unit]} and "
                        f"{dom.findtext('name')}",
                        path="[edit bridge-domains]",
                    )
                seen[unit] = dom.findtext("name") or ""


class SimSession(Session):  # type: ignore[misc]
    """An ncclient Session that answers in-process from a SimJunos."""

    def __init__(self, sim: SimJunos, device_handler: Any) -> None:
        super().__init__(Capabilities(device_handler.get_capabilities()))
        self.sim = sim
        self._device_handler = device_handler
        self._server_capabilities = Capabilities(JUNOS_CAPS)
        self._id = next(_ids)
        self._connected = True

    def send(self, message: str) -> None:
        self.sim.sent.append(message)
        rpc = etree.fromstring(message.encode())
        msg_id = rpc.get("message-id")
        op = rpc[0]
        reply = etree.Element(f"{{{NC}}}rpc-reply", nsmap={None: NC})  # type: ignore[dict-item]
        reply.set("message-id", msg_id or "")
        try:
            data = self.sim.handle(self._id, op)
            if data is None:
                etree.SubElement(reply, f"{{{NC}}}ok")
            else:
                reply.append(data)
        except JunosError as exc:
            err = etree.SubElement(reply, f"{{{NC}}}rpc-error")
            for tag, text in (
                ("error-type", "application"),
                ("error-tag", exc.tag),
                ("error-severity", "error"),
                ("error-path", exc.path),
                ("error-message", exc.message),
            ):
                if text:
                    etree.SubElement(err, f"{{{NC}}}{tag}").text = text
            if exc.info:
                info = etree.fromstring(f'<error-info xmlns="{NC}">{exc.info}</error-info>')
                err.append(info)
        self._dispatch_message(etree.tostring(reply, encoding="unicode"))

    def close(self) -> None:
        self.sim.release(self._id)
        self._connected = False


def sim_manager(sim: SimJunos) -> manager.Manager:
    handler = make_device_handler({"name": "junos"})
    return manager.Manager(SimSession(sim, handler), handler, timeout=5)
