"""`libvirt` compute driver: virtual nodes as KVM (or Xen) domains on a real facility's
V-nodes, through libvirt (`qemu+ssh://root@<V-node>/system` by default).

A node is a domain named by its node id, with a copy-on-write disk over its image's base
volume in a storage pool, and one interface per circuit on the VLAN its circuit uses on
the V-node's uplink (libvirt_xml.Networking). The node spec is kept in the domain's
metadata, so the driver can tell its domains from anyone else's and a controller that
died half-way finds what it made. The console is libvirt's serial console.

Not done here: putting the researcher's SSH keys and addresses into the guest (that is
the image's business, e.g. cloud-init; the gateway's login uses the console meanwhile).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from federica.substrate.drivers.compute.base import (
    ComputeError,
    InterfaceState,
    NodeSpec,
    NodeState,
    NodeUsage,
)
from federica.substrate.drivers.compute.libvirt_xml import (
    Networking,
    domain_xml,
    spec_from_domain,
    volume_xml,
)

try:
    import libvirt
except ImportError:  # optional: only controllers of real facilities need it
    libvirt = None


def available() -> bool:
    return libvirt is not None


class LibvirtCompute:
    def __init__(
        self,
        host: str,
        uri: str,
        *,
        domain_type: str = "kvm",
        pool: str = "default",
        networking: Networking | None = None,
        disk_mb: int = 8192,
        connect: Callable[[str], Any] | None = None,
    ) -> None:
        if libvirt is None and connect is None:
            raise ComputeError(host, "-", "the libvirt Python binding is not installed")
        self.host = host
        self.uri = uri
        self.domain_type = domain_type
        self.pool = pool
        self.net = networking or Networking()
        self.disk_mb = disk_mb
        self._connect = connect or (lambda u: libvirt.open(u))
        self._conn: Any = None

    # -- helpers -------------------------------------------------------------------
    def _c(self, node: str = "-") -> Any:
        if self._conn is None:
            try:
                self._conn = self._connect(self.uri)
            except Exception as exc:  # libvirt.libvirtError, without importing it
                why = f"cannot reach libvirt at {self.uri}: {_message(exc)}"
                raise ComputeError(self.host, node, why) from exc
        return self._conn

    def _fail(self, node: str, what: str, exc: Exception) -> ComputeError:
        return ComputeError(self.host, node, f"{what}: {_message(exc)}")

    def _domain(self, node_id: str) -> Any | None:
        try:
            dom = self._c(node_id).lookupByName(node_id)
        except Exception as exc:
            if _code(exc) == _const("VIR_ERR_NO_DOMAIN"):
                return None
            raise self._fail(node_id, "cannot look the domain up", exc) from exc
        return dom if spec_from_domain(dom.XMLDesc(0)) is not None else None

    def _pool(self, node: str) -> Any:
        try:
            return self._c(node).storagePoolLookupByName(self.pool)
        except Exception as exc:
            raise self._fail(node, f"no storage pool {self.pool!r}", exc) from exc

    def _volume(self, pool: Any, name: str) -> Any | None:
        try:
            return pool.storageVolLookupByName(name)
        except Exception as exc:
            if _code(exc) == _const("VIR_ERR_NO_STORAGE_VOL"):
                return None
            raise

    # -- contract ------------------------------------------------------------------
    def define(self, spec: NodeSpec) -> None:
        dom = self._domain(spec.id)
        if dom is not None:
            if spec_from_domain(dom.XMLDesc(0)) == spec:
                return
            raise ComputeError(self.host, spec.id, "a different node with this id is defined")
        pool = self._pool(spec.id)
        base = self._volume(pool, f"{spec.image}.qcow2")
        if base is None:
            have = sorted(
                n.removesuffix(".qcow2") for n in pool.listVolumes() if n.endswith(".qcow2")
            )
            raise ComputeError(
                self.host,
                spec.id,
                f"image {spec.image!r} is not available in storage pool {self.pool!r} "
                f"(available: {', '.join(have) or 'none'})",
            )
        try:
            disk = self._volume(pool, f"{spec.id}.qcow2")
            if disk is None:
                xml = volume_xml(f"{spec.id}.qcow2", self.disk_mb, base.path())
                disk = pool.createXML(xml, 0)
            self._c(spec.id).defineXML(
                domain_xml(spec, self.host, disk.path(), domain_type=self.domain_type, net=self.net)
            )
        except Exception as exc:
            raise self._fail(spec.id, "cannot define the domain", exc) from exc

    def _existing(self, node_id: str) -> Any:
        dom = self._domain(node_id)
        if dom is None:
            raise ComputeError(self.host, node_id, "no such node")
        return dom

    def boot(self, node_id: str) -> None:
        dom = self._existing(node_id)
        try:
            if not dom.isActive():
                dom.create()
        except Exception as exc:
            raise self._fail(node_id, "cannot start the domain", exc) from exc

    def stop(self, node_id: str) -> None:
        dom = self._existing(node_id)
        try:
            if dom.isActive():
                dom.destroy()  # power off: a slice's end does not wait for the guest
        except Exception as exc:
            raise self._fail(node_id, "cannot stop the domain", exc) from exc

    def destroy(self, node_id: str) -> None:
        dom = self._domain(node_id)
        try:
            if dom is not None:
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
            pool = self._pool(node_id)
            disk = self._volume(pool, f"{node_id}.qcow2")
            if disk is not None:
                disk.delete(0)
        except ComputeError:
            raise
        except Exception as exc:
            raise self._fail(node_id, "cannot remove the domain", exc) from exc

    # -- emergency stop: a paused domain keeps its memory and runs nothing -------------
    def freeze(self, node_id: str) -> None:
        dom = self._existing(node_id)
        try:
            if dom.isActive():
                dom.suspend()
        except Exception as exc:
            raise self._fail(node_id, "cannot pause the domain", exc) from exc

    def thaw(self, node_id: str) -> None:
        dom = self._existing(node_id)
        try:
            if dom.isActive():
                dom.resume()
        except Exception as exc:
            raise self._fail(node_id, "cannot resume the domain", exc) from exc

    def is_frozen(self, node_id: str) -> bool:
        dom = self._domain(node_id)
        try:
            return dom is not None and dom.state()[0] == _const("VIR_DOMAIN_PAUSED")
        except Exception:
            return False

    def processes(self, node_id: str) -> list[dict[str, object]]:
        return []  # a VM's processes are not visible from the host

    def probe(self, node_id: str) -> tuple[str, ...]:
        return self.console(node_id)  # a paused VM sends nothing either

    def set_links(self, node_id: str, up: bool) -> list[str]:
        raise ComputeError(self.host, node_id, "taking a domain's links down is not supported")

    def status(self, node_id: str) -> NodeState:
        dom = self._domain(node_id)
        if dom is None:
            return NodeState.ABSENT
        state, reason = dom.state(0)
        # Paused (an emergency stop's freeze): alive, its memory kept, just not scheduled.
        running = ("VIR_DOMAIN_RUNNING", "VIR_DOMAIN_BLOCKED", "VIR_DOMAIN_PAUSED")
        if state in {_const(name) for name in running}:
            return NodeState.RUNNING
        if state == _const("VIR_DOMAIN_CRASHED"):
            return NodeState.FAILED
        if state == _const("VIR_DOMAIN_SHUTOFF"):
            if reason == _const("VIR_DOMAIN_SHUTOFF_FAILED"):
                return NodeState.FAILED
            if reason == _const("VIR_DOMAIN_SHUTOFF_UNKNOWN"):
                return NodeState.DEFINED  # never started
            return NodeState.STOPPED
        return NodeState.STOPPED  # suspended to disk, shutting down

    def usage(self, node_id: str) -> NodeUsage:
        state = self.status(node_id)
        dom = self._domain(node_id) if state is NodeState.RUNNING else None
        if dom is None:
            return NodeUsage(state)
        # virDomainGetInfo: [state, max KiB, current KiB, vCPUs, CPU time in ns].
        info = dom.info()
        return NodeUsage(state, int(info[4]) / 1e9, int(info[2]) * 1024)

    def nodes(self) -> list[str]:
        return sorted(
            d.name()
            for d in self._c().listAllDomains(0)
            if spec_from_domain(d.XMLDesc(0)) is not None
        )

    def interfaces(self, node_id: str) -> list[InterfaceState]:
        dom = self._existing(node_id)
        spec = spec_from_domain(dom.XMLDesc(0))
        assert spec is not None
        up = bool(dom.isActive())
        return [InterfaceState(i.name, i.circuit, i.address, up) for i in spec.interfaces]

    def console(self, node_id: str) -> tuple[str, ...]:
        self._existing(node_id)
        # Interactive only: the serial console takes no command.
        return ("virsh", "-c", self.uri, "console", "--force", node_id)


def _const(name: str) -> int:
    value = getattr(libvirt, name, None)
    return int(value) if value is not None else -1


def _code(exc: Exception) -> int | None:
    get = getattr(exc, "get_error_code", None)
    return int(get()) if callable(get) else None


def _message(exc: Exception) -> str:
    get = getattr(exc, "get_error_message", None)
    return str(get()) if callable(get) else str(exc)
