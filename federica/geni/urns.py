"""GENI URNs: urn:publicid:IDN+<authority>+<type>+<name>."""

from __future__ import annotations

import re
from dataclasses import dataclass

# The authority may carry a sub-authority after ':' (a project at a clearinghouse:
# ch.geni.net:myproject); the name is free text without '+' or spaces.
_URN = re.compile(r"^urn:publicid:IDN\+([A-Za-z0-9.:_-]{1,255})\+([a-z_]{1,32})\+([^+\s]{1,255})$")
SLICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,18}$")


@dataclass(frozen=True)
class Urn:
    authority: str
    kind: str
    name: str

    def __str__(self) -> str:
        return f"urn:publicid:IDN+{self.authority}+{self.kind}+{self.name}"

    @property
    def top_authority(self) -> str:
        """The authority without its sub-authority (ch.geni.net of ch.geni.net:proj)."""
        return self.authority.split(":", 1)[0]


def parse(text: object, kind: str | None = None) -> Urn | None:
    """The URN, or None if `text` is not one (of `kind`, when given)."""
    if not isinstance(text, str):
        return None
    m = _URN.match(text.strip())
    if m is None or (kind is not None and m.group(2) != kind):
        return None
    return Urn(m.group(1), m.group(2), m.group(3))


def make(authority: str, kind: str, name: str) -> str:
    return str(Urn(authority, kind, name))
