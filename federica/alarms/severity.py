"""How bad each kind of alarm is, for the NOC's ordering and colours (ITU-T X.733's
levels, as LibreNMS and most NMSs show them). Pure."""

from __future__ import annotations

# Most severe first.
LEVELS = ("critical", "major", "minor", "warning")
# A kind not named here (a new one) is shown as minor until someone decides.
BY_KIND = {
    "device-unreachable": "critical",
    "link-down": "major",
    "node-died": "major",
    "port-down": "minor",
    "over-booking": "minor",
    "utilisation": "warning",
    "errors": "warning",
    "discards": "warning",
}


def severity(kind: str) -> str:
    return BY_KIND.get(kind, "minor")


def rank(kind: str) -> int:
    """Sort key: most severe first."""
    return LEVELS.index(severity(kind))
