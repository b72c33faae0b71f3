"""How bad each kind of alarm is, for the NOC's ordering and colours (ITU-T X.733's
levels, as LibreNMS and most NMSs show them). Pure."""

from __future__ import annotations

# Most severe first.
LEVELS = ("critical", "major", "minor", "warning")
# A kind not named here (a new one) is shown as minor until someone decides.
BY_KIND = {
    "device-unreachable": "critical",
    "estop-device": "critical",  # an emergency stop could not reach a device
    "peer-estop-undelivered": "critical",  # a peer has not heard of an emergency stop
    "link-down": "major",
    "config-drift": "major",  # a device or V-node differed from the database's intent
    "peer-alarm": "major",  # a peer's alarm on its border link or this facility's slices
    "node-died": "major",
    "port-down": "minor",
    "circuit-over-booking": "minor",
    "utilisation-high": "warning",
    "errors-high": "warning",
    "discards-high": "warning",
}


def severity(kind: str) -> str:
    return BY_KIND.get(kind, "minor")


def rank(kind: str) -> int:
    """Sort key: most severe first."""
    return LEVELS.index(severity(kind))
