"""What a federation agreement allows: pure logic, no I/O.

FEDERICA's three forms (REFERENCES.md): overlay (each facility uses the other's services;
monitoring and fault information exchanged), partially integrated (calendar and AAA
information exchanged as well) and integrated (a common control plane: one request spans
facilities). A form bounds the operations an agreement may grant; an agreement may grant
fewer.
"""

from __future__ import annotations

import enum

# The peer API's version: in its paths (/federation/v1) and in every answer's `version`.
API_VERSION = "federica.federation/v1"


class Form(enum.StrEnum):
    OVERLAY = "overlay"
    PARTIAL = "partial"
    INTEGRATED = "integrated"


class Operation(enum.StrEnum):
    """A peer API operation an agreement may grant."""

    ADVERTISEMENT = "advertisement"
    MONITORING = "monitoring"
    ESTOP = "estop"
    AVAILABILITY = "availability"
    IDENTITY = "identity"
    BOOKING = "booking"


_OVERLAY = (Operation.ADVERTISEMENT, Operation.MONITORING, Operation.ESTOP)
_PARTIAL = (*_OVERLAY, Operation.AVAILABILITY, Operation.IDENTITY)
FORM_OPERATIONS: dict[Form, tuple[Operation, ...]] = {
    Form.OVERLAY: _OVERLAY,
    Form.PARTIAL: _PARTIAL,
    Form.INTEGRATED: (*_PARTIAL, Operation.BOOKING),
}


def beyond_form(form: Form, operations: set[Operation]) -> list[Operation]:
    """The operations a form of agreement cannot grant, in a stable order."""
    return sorted(operations - set(FORM_OPERATIONS[form]))


def granted(form: Form, allowed: list[str] | None) -> list[Operation]:
    """What an agreement grants: its list if it has one (never beyond its form), else
    everything its form allows."""
    if allowed is None:
        return list(FORM_OPERATIONS[form])
    ops = {Operation(a) for a in allowed if a in Operation.__members__.values()}
    return [op for op in FORM_OPERATIONS[form] if op in ops]
