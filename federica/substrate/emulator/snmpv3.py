"""The emulated agents' SNMPv3 user: one random secret per emulated facility, kept in a
private file beside the facility's client key, read by the agents' configuration and by
the controller's built-in "emulator" SNMP credential set."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

USER = "federica"
SECRET_FILE = "snmp_v3_secret"  # noqa: S105  (a file name, not a secret)


def secret_path(emulator_dir: Path) -> Path:
    return emulator_dir / SECRET_FILE


def ensure_secret(emulator_dir: Path) -> str:
    """The facility's secret, made once even when devices are configured at the same time
    (a hard link publishes a fully written file, or fails if another was first)."""
    path = secret_path(emulator_dir)
    if not path.exists():
        emulator_dir.mkdir(parents=True, exist_ok=True)
        tmp = emulator_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(24))
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        tmp.unlink()
    return path.read_text().strip()


def read_secret(emulator_dir: Path) -> str | None:
    try:
        return secret_path(emulator_dir).read_text().strip() or None
    except FileNotFoundError:
        return None
