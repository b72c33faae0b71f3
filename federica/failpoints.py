"""Failpoints: a testing aid (in the style of etcd's gofail) that stops a process at a
named point of its code so a test can kill it there, deterministically, however busy
the machine is.

A point does nothing unless the FEDERICA_FAILPOINTS environment variable of the process
names it (comma-separated names). A named point logs that it was reached (the test waits
for that line, or for what the process did just before) and then blocks the calling
thread for good: the test kills the process (SIGKILL) while it stands there. Never set
FEDERICA_FAILPOINTS on a real facility.

Points:
* ``federation.between-hold-and-commit``: a booking across facilities, after every
  peer held its part and the local part was booked, before any peer is told to commit.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)
ENV = "FEDERICA_FAILPOINTS"
BETWEEN_HOLD_AND_COMMIT = "federation.between-hold-and-commit"


def armed(name: str) -> bool:
    names = os.environ.get(ENV, "")
    return name in {n.strip() for n in names.split(",") if n.strip()}


def hit(name: str) -> None:
    """Blocks here for good if the failpoint `name` is armed (see the module)."""
    if not armed(name):
        return
    log.warning("failpoint %s reached: blocking until the process is killed", name)
    threading.Event().wait()
