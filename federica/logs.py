"""Logging of the long-running commands (serve, worker, demo): at INFO, what a person
watching needs (slices booked, started, failed, ended; devices unreachable); the
libraries' per-poll and per-RPC chatter only at DEBUG."""

from __future__ import annotations

import logging

from federica.config import Settings, SettingsError

# Each line per scheduler run (every second), per NETCONF RPC or SSH login: a heartbeat,
# not news. Their warnings ("skipped: maximum number of running instances reached" each
# time a slice takes longer than the poll interval) are the same heartbeat.
# Alembic's "Context impl SQLiteImpl" at every start is the same kind of line.
CHATTY = {
    "apscheduler": logging.ERROR,
    "ncclient": logging.WARNING,
    "paramiko": logging.WARNING,
    "alembic": logging.WARNING,
}
LEVELS = {n: getattr(logging, n) for n in ("DEBUG", "INFO", "WARNING", "ERROR")}
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(settings: Settings) -> None:
    level = LEVELS.get(settings.log_level.upper())
    if level is None:
        raise SettingsError(
            f"FEDERICA_LOG_LEVEL: expected one of {', '.join(LEVELS)}, got {settings.log_level!r}"
        )
    logging.basicConfig(level=level, format=FORMAT, datefmt="%H:%M:%S")
    for name, quiet in CHATTY.items():
        logging.getLogger(name).setLevel(logging.NOTSET if level <= logging.DEBUG else quiet)
