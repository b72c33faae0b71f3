"""SNMP v2c GET over UDP (pysnmp). Adapter: I/O only."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    get_cmd,
)

IF_HC_IN_OCTETS = "1.3.6.1.2.1.31.1.1.1.6"
IF_HC_OUT_OCTETS = "1.3.6.1.2.1.31.1.1.1.10"
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_ADMIN_STATUS = "1.3.6.1.2.1.2.2.1.7"
IF_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8"


class SnmpError(RuntimeError):
    pass


async def aget(
    host: str,
    port: int,
    community: str,
    oids: Sequence[str],
    timeout: float = 2.0,
    retries: int = 1,
) -> dict[str, int | str]:
    engine = SnmpEngine()
    try:
        target = await UdpTransportTarget.create((host, port), timeout=timeout, retries=retries)
        err_ind, err_status, err_index, binds = await get_cmd(
            engine,
            CommunityData(community, mpModel=1),  # noqa: S508  (v2c: what the agents speak)
            target,
            ContextData(),
            *[ObjectType(ObjectIdentity(o)) for o in oids],
        )
    finally:
        engine.close_dispatcher()
    if err_ind:
        raise SnmpError(f"{host}:{port}: {err_ind}")
    if err_status:
        raise SnmpError(f"{host}:{port}: {err_status.prettyPrint()} at {err_index}")
    out: dict[str, int | str] = {}
    for name, value in binds:
        cls = value.__class__.__name__
        if cls in {"NoSuchObject", "NoSuchInstance", "EndOfMibView"}:
            raise SnmpError(f"{host}:{port}: {name.prettyPrint()} does not exist")
        out[str(name)] = value.prettyPrint() if cls == "OctetString" else int(value)
    return out


def get(
    host: str, port: int, community: str, oids: Sequence[str], timeout: float = 2.0
) -> dict[str, int | str]:
    """Blocking GET of `oids` (numeric, without leading dot) → {oid: value}."""
    return asyncio.run(aget(host, port, community, oids, timeout=timeout))
