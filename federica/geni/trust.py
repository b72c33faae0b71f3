"""Who may use the aggregate: the GENI authorities this facility trusts (their CA
certificates are the trust roots of the TLS listener and of credential signatures) and
the local project each one's slices are booked under, with that project's quota.

The file (FEDERICA_GENI_AUTHORITIES_FILE, YAML):

    authorities:
      - authority: ch.geni.example      # the URN authority of its users and slices
        ca: /etc/federica/geni/ch.pem   # its root CA certificate(s), PEM
        project: geni-ch                # the local project its slices are charged to
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from cryptography import x509
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from federica import documents
from federica.errors import FieldError, InvalidInput
from federica.geni.urns import Urn
from federica.slices.request import field_errors

LIMIT = 1_000_000


class _Authority(BaseModel):
    model_config = ConfigDict(extra="forbid")
    authority: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{0,252}$")]
    ca: Annotated[str, Field(min_length=1, max_length=4096)]
    project: Annotated[str, Field(min_length=1, max_length=64)]


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    authorities: Annotated[list[_Authority], Field(min_length=1, max_length=100)]


@dataclass(frozen=True)
class Authority:
    name: str
    roots: tuple[x509.Certificate, ...]
    project: str


@dataclass(frozen=True)
class Trust:
    authorities: tuple[Authority, ...]

    @property
    def roots(self) -> list[x509.Certificate]:
        return [c for a in self.authorities for c in a.roots]

    def pem(self) -> str:
        from cryptography.hazmat.primitives.serialization import Encoding

        return "".join(c.public_bytes(Encoding.PEM).decode() for c in self.roots)

    def of(self, urn: Urn) -> Authority | None:
        """The authority that vouches for `urn` (by its top authority)."""
        return next((a for a in self.authorities if a.name == urn.top_authority), None)

    def roots_of(self, urn: Urn) -> Sequence[x509.Certificate]:
        a = self.of(urn)
        return a.roots if a is not None else ()


def load(path: Path) -> Trust:
    """Every problem named by its field (authorities[1].ca: …), all at once."""
    try:
        raw = documents.load_yaml(path.read_bytes(), limit=LIMIT, what=str(path))
    except OSError as exc:
        raise InvalidInput([FieldError(str(path), f"cannot read: {exc}")]) from None
    try:
        spec = _File.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput(
            field_errors(exc),
            detail=f"{path}: not a GENI authorities file",
        ) from None
    errors: list[FieldError] = []
    out: list[Authority] = []
    for i, a in enumerate(spec.authorities):
        ca_path = Path(a.ca) if Path(a.ca).is_absolute() else path.parent / a.ca
        try:
            roots = tuple(x509.load_pem_x509_certificates(ca_path.read_bytes()))
        except (OSError, ValueError) as exc:
            errors.append(FieldError(f"authorities[{i}].ca", f"not a readable PEM file: {exc}"))
            continue
        out.append(Authority(a.authority, roots, a.project))
    names = [a.authority for a in spec.authorities]
    for i, n in enumerate(names):
        if n in names[:i]:
            errors.append(FieldError(f"authorities[{i}].authority", f"{n!r} is listed twice"))
    if errors:
        raise InvalidInput(errors, detail=f"{path}: not a GENI authorities file")
    return Trust(tuple(out))
