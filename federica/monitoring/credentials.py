"""SNMP credential sets, kept like the NETCONF ones (substrate/credentials.py).

A device is polled with the SNMP set of the same name as its NETCONF set (`credentials`
in the inventory). Secrets never live in the database or in files the controller writes:
a set names the environment variables that hold them. The set "emulator" is built in
unless the file defines it: the device's management port (where the emulated agents
listen), SNMPv3 authPriv with the facility's own random secret (substrate/emulator/
snmpv3.py), or v2c with the emulator's community for agents set up without a v3 user.

    # FEDERICA_SNMP_CREDENTIALS_FILE
    backbone:                 # v2c
      community_env: FEDERICA_SNMP_BACKBONE_COMMUNITY
    core:                     # v3 authPriv
      username: federica
      auth_protocol: sha256   # sha | sha256 | sha512
      auth_key_env: FEDERICA_SNMP_CORE_AUTH
      priv_protocol: aes128   # aes128 | aes256
      priv_key_env: FEDERICA_SNMP_CORE_PRIV
      port: 161               # default 161
      timeout_s: 5            # optional: these devices' own timeout and retries
      retries: 2
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from federica.config import Settings
from federica.documents import load_named_sets
from federica.errors import NotFound
from federica.monitoring.poller import V3, V2c
from federica.substrate.emulator import snmpv3


class SnmpCredentialSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    community_env: str | None = None
    username: str | None = None
    auth_protocol: Literal["sha", "sha256", "sha512"] = "sha256"
    auth_key_env: str | None = None
    priv_protocol: Literal["aes128", "aes256"] = "aes128"
    priv_key_env: str | None = None
    # None: the device's management port (the emulated agents' convention).
    port: int | None = Field(default=161, ge=1, le=65535)
    # These devices' own request timeout and retries (default: the settings').
    timeout_s: float | None = Field(default=None, gt=0, le=60)
    retries: int | None = Field(default=None, ge=0, le=10)

    @model_validator(mode="after")
    def one_version(self) -> SnmpCredentialSpec:
        v3 = [self.username, self.auth_key_env, self.priv_key_env]
        if self.community_env is not None:
            if any(x is not None for x in v3):
                raise ValueError("give community_env (v2c) or a v3 user, not both")
        elif any(x is None for x in v3):
            raise ValueError(
                "give community_env (v2c), or username, auth_key_env and priv_key_env (v3)"
            )
        return self


def load_sets(settings: Settings) -> dict[str, SnmpCredentialSpec]:
    path = settings.snmp_credentials_file
    return load_named_sets(path, SnmpCredentialSpec) if path is not None else {}


def timing(settings: Settings, sets: dict[str, SnmpCredentialSpec], ref: str) -> tuple[float, int]:
    """The request timeout and retries for devices of the set `ref`."""
    spec = sets.get(ref)
    timeout = spec.timeout_s if spec is not None and spec.timeout_s is not None else None
    retries = spec.retries if spec is not None and spec.retries is not None else None
    return (
        settings.snmp_timeout_s if timeout is None else timeout,
        settings.snmp_retries if retries is None else retries,
    )


def resolve(
    settings: Settings, sets: dict[str, SnmpCredentialSpec], ref: str, management_port: int
) -> tuple[int, V2c | V3]:
    """The port and authentication to poll a device whose credential set is `ref`."""
    spec = sets.get(ref)
    if spec is None:
        if ref == "emulator":
            # v3 authPriv with the facility's secret; v2c for agents set up without one.
            secret = snmpv3.read_secret(settings.emulator_dir)
            if secret is None:
                return management_port, V2c(settings.emulator_community)
            return management_port, V3(snmpv3.USER, secret, secret)
        raise NotFound(f"no SNMP credential set {ref!r} (FEDERICA_SNMP_CREDENTIALS_FILE)")
    port = management_port if spec.port is None else spec.port
    if spec.community_env is not None:
        return port, V2c(_env(ref, spec.community_env))
    assert spec.username and spec.auth_key_env and spec.priv_key_env
    return port, V3(
        spec.username,
        _env(ref, spec.auth_key_env),
        _env(ref, spec.priv_key_env),
        spec.auth_protocol,
        spec.priv_protocol,
    )


def shape(
    settings: Settings, sets: dict[str, SnmpCredentialSpec], ref: str, management_port: int
) -> tuple[int, str]:
    """The port and SNMP version ("2c" or "3") of set `ref`, without reading its secrets
    (what another poller needs to be told; it keeps the secrets itself)."""
    spec = sets.get(ref)
    if spec is None:
        if ref == "emulator":
            secret = snmpv3.read_secret(settings.emulator_dir)
            return management_port, "2c" if secret is None else "3"
        raise NotFound(f"no SNMP credential set {ref!r} (FEDERICA_SNMP_CREDENTIALS_FILE)")
    port = management_port if spec.port is None else spec.port
    return port, "2c" if spec.community_env is not None else "3"


def _env(ref: str, var: str) -> str:
    value = os.environ.get(var)
    if value is None:
        raise NotFound(f"SNMP credential set {ref!r}: environment variable {var} is not set")
    return value
