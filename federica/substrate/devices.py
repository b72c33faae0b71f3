"""Device access for operators and services: inventory + credentials → drivers."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from federica.config import Settings
from federica.errors import NotFound
from federica.substrate import credentials
from federica.substrate.drivers import registry
from federica.substrate.drivers.base import DeviceDriver, DriverError, missing_capabilities
from federica.substrate.models import Device


def targets(
    session: Session, settings: Settings, names: Sequence[str] | None = None
) -> list[registry.DeviceTarget]:
    query = select(Device).options(selectinload(Device.ports)).order_by(Device.name)
    if names is not None:
        query = query.where(Device.name.in_(names))
    devices = session.scalars(query).all()
    missing = sorted(set(names or []) - {d.name for d in devices})
    if missing:
        raise NotFound(f"no device named {', '.join(repr(m) for m in missing)} in the inventory")
    out = []
    for d in devices:
        cred = credentials.resolve(settings, d.credentials_ref)
        out.append(
            registry.DeviceTarget(
                name=d.name,
                driver=d.driver,
                host=d.mgmt_host,
                port=d.netconf_port,
                host_key_fingerprint=d.host_key_fingerprint,
                vlan_translation=d.vlan_translation,
                ports=tuple(p.name for p in d.ports),
                kind=d.kind.value,
                username=cred.username,
                key_file=cred.key_file,
                password=cred.password,
                rpc_timeout_s=settings.netconf_rpc_timeout_s,
            )
        )
    return out


@dataclass
class CheckResult:
    device: str
    address: str
    ok: bool
    connect_ms: float | None = None
    host_key: str | None = None
    capabilities: list[str] | None = None
    missing: list[str] | None = None
    error: str | None = None


def check(drivers: registry.DeviceDrivers, target: registry.DeviceTarget) -> CheckResult:
    """Reachability, host key, capabilities: what an operator asks first."""
    res = CheckResult(
        target.name, f"{target.host}:{target.port}", ok=False, host_key=target.host_key_fingerprint
    )
    try:
        driver: DeviceDriver = registry.create(drivers, target)
    except registry.UnknownDriver as exc:
        res.error = str(exc)
        return res
    t0 = time.perf_counter()
    try:
        driver.open()
        res.connect_ms = round((time.perf_counter() - t0) * 1000, 1)
        caps = driver.capabilities()
        res.capabilities = sorted(caps)
        res.missing = missing_capabilities(caps)
        res.ok = not res.missing
    except DriverError as exc:
        res.error = exc.reason
    finally:
        with contextlib.suppress(DriverError):
            driver.close()
    return res
