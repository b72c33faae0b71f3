"""NETCONF credential sets, by the name devices carry in the inventory (`credentials`).

Secrets never live in the database or in topology files: a set names a key file, or the
environment variable that holds a password. The set "emulator" is built in (the emulated
facility's client key) unless the file defines it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator

from federica.config import Settings
from federica.documents import load_named_sets
from federica.errors import NotFound


class CredentialSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str
    key_file: Path | None = None
    password_env: str | None = None

    @model_validator(mode="after")
    def one_secret(self) -> CredentialSpec:
        if (self.key_file is None) == (self.password_env is None):
            raise ValueError("give exactly one of key_file and password_env")
        return self


@dataclass(frozen=True)
class Credential:
    username: str
    key_file: str | None
    password: str | None

    def __repr__(self) -> str:  # never print a secret
        return f"Credential({self.username!r}, key_file={self.key_file!r}, password=***)"


def load_sets(settings: Settings) -> dict[str, CredentialSpec]:
    sets = {
        "emulator": CredentialSpec(
            username="root", key_file=settings.emulator_dir.resolve() / "client_key"
        )
    }
    path = settings.netconf_credentials_file
    if path is not None:
        sets |= load_named_sets(path, CredentialSpec)
    return sets


def resolve(settings: Settings, ref: str) -> Credential:
    spec = load_sets(settings).get(ref)
    if spec is None:
        raise NotFound(f"no NETCONF credential set {ref!r} (FEDERICA_NETCONF_CREDENTIALS_FILE)")
    password = None
    if spec.password_env is not None:
        password = os.environ.get(spec.password_env)
        if password is None:
            raise NotFound(
                f"credential set {ref!r}: environment variable {spec.password_env} is not set"
            )
    return Credential(spec.username, str(spec.key_file) if spec.key_file else None, password)
