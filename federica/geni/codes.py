"""GENI AM API v3 answers: `{code: {geni_code}, value, output}`, never an XML-RPC fault
for a domain error (clients such as omni treat a fault as a broken aggregate)."""

from __future__ import annotations

import enum
from typing import Any


class Code(enum.IntEnum):
    SUCCESS = 0
    BADARGS = 1
    ERROR = 2
    FORBIDDEN = 3
    BADVERSION = 4
    SERVERERROR = 5
    TOOBIG = 6
    REFUSED = 7
    TIMEDOUT = 8
    DBERROR = 9
    RPCERROR = 10
    UNAVAILABLE = 11
    SEARCHFAILED = 12
    UNSUPPORTED = 13
    BUSY = 14
    EXPIRED = 15
    INPROGRESS = 16
    ALREADYEXISTS = 17
    VLAN_UNAVAILABLE = 24
    INSUFFICIENT_BANDWIDTH = 25


class GeniError(Exception):
    """A refusal the caller gets as a code (and the message as `output`)."""

    def __init__(self, code: Code, output: str) -> None:
        super().__init__(output)
        self.code = code
        self.output = output


def answer(value: Any, output: str = "", code: Code = Code.SUCCESS) -> dict[str, Any]:
    # int(): XML-RPC must carry a plain <int>, whatever IntEnum marshals to.
    return {"code": {"geni_code": int(code)}, "value": value, "output": output}


def refusal(exc: GeniError) -> dict[str, Any]:
    # value is "" not None: XML-RPC has no nil unless both ends allow it.
    return answer("", exc.output, exc.code)
