"""The peer registry: add, change, list and remove trusted peers; know a peer by its
certificate.

A peer is identified only by the certificate it presents: directly issued by the CA
registered for it, valid now, for client authentication. Its address plays no part.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from federica.errors import Conflict, FieldError, InvalidInput, NotFound
from federica.federation import identity
from federica.federation.agreement import Form, Operation, beyond_form
from federica.federation.models import FederationPeer
from federica.substrate.models import Pop

PORT_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}:[A-Za-z0-9][A-Za-z0-9/._:-]{0,63}$")


@dataclass(frozen=True)
class Agreement:
    """What `peer add` / `peer update` set; None leaves a field as it is (update)."""

    url: str | None = None
    form: str | None = None
    ca_pem: str | None = None
    allowed: list[str] | None = None
    pops: list[str] | None = None
    borders: dict[str, str] | None = None
    guest_quota: int | None = None


def _check(session: Session, agreement: Agreement, peer: FederationPeer | None) -> list[FieldError]:
    errors: list[FieldError] = []
    if agreement.url is not None:
        parts = urlsplit(agreement.url)
        if parts.scheme != "https" or not parts.hostname:
            errors.append(FieldError("url", "the peer API's https://host:port URL"))
    form: Form | None = peer.form if peer is not None else None
    if agreement.form is not None:
        try:
            form = Form(agreement.form)
        except ValueError:
            errors.append(FieldError("form", "overlay, partial or integrated"))
    if agreement.allowed is not None:
        unknown = [a for a in agreement.allowed if a not in Operation.__members__.values()]
        if unknown:
            names = ", ".join(o.value for o in Operation)
            errors.append(FieldError("allow", f"unknown operation(s) {unknown}; known: {names}"))
        elif form is not None:
            beyond = beyond_form(form, {Operation(a) for a in agreement.allowed})
            if beyond:
                names = ", ".join(op.value for op in beyond)
                errors.append(FieldError("allow", f"the {form.value} form cannot grant {names}"))
    if agreement.pops is not None:
        known = set(session.scalars(select(Pop.name)))
        missing = sorted(set(agreement.pops) - known)
        if missing:
            errors.append(FieldError("pops", f"no PoP(s) {missing}"))
    if agreement.borders is not None:
        for local, remote in agreement.borders.items():
            if not PORT_REF.match(local) or not PORT_REF.match(remote):
                errors.append(FieldError("border", f"{local}={remote}: LOCAL=REMOTE device:port"))
    if agreement.guest_quota is not None and not 0 <= agreement.guest_quota <= 10_000:
        errors.append(FieldError("guest_quota", "0 to 10000 concurrent bookings"))
    if agreement.ca_pem is not None:
        errors.extend(_check_ca(session, agreement.ca_pem, peer))
    return errors


def _check_ca(session: Session, pem: str, peer: FederationPeer | None) -> list[FieldError]:
    try:
        ca = identity.parse_pem(pem, "ca")
    except InvalidInput as exc:
        return exc.errors
    try:
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = constraints.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        return [FieldError("ca", "not a CA certificate (basicConstraints CA:TRUE)")]
    holder = session.scalar(
        select(FederationPeer).where(FederationPeer.ca_fingerprint == identity.fingerprint(ca))
    )
    if holder is not None and holder is not peer:
        return [FieldError("ca", f"this CA is already registered for peer {holder.name!r}")]
    return []


def _apply(peer: FederationPeer, agreement: Agreement) -> None:
    if agreement.url is not None:
        peer.url = agreement.url.rstrip("/")
    if agreement.form is not None:
        peer.form = Form(agreement.form)
    if agreement.ca_pem is not None:
        ca = identity.parse_pem(agreement.ca_pem, "ca")
        peer.ca_pem = agreement.ca_pem
        peer.ca_fingerprint = identity.fingerprint(ca)
    if agreement.allowed is not None:
        peer.allowed = json.dumps(sorted(set(agreement.allowed)))
    if agreement.pops is not None:
        peer.pops = json.dumps(sorted(set(agreement.pops))) if agreement.pops else None
    if agreement.borders is not None:
        peer.borders = json.dumps(dict(sorted(agreement.borders.items())))
    if agreement.guest_quota is not None:
        peer.guest_quota = agreement.guest_quota


def add(
    session: Session, name: str, agreement: Agreement, also: list[FieldError] | None = None
) -> FederationPeer:
    """`also`: the caller's own problems with the input (an unreadable CA file), reported
    with the rest, each field once."""
    errors = []
    if not identity.NAME.match(name):
        errors.append(FieldError("name", "lower-case letters, digits and '-', at most 63"))
    for field, value in (
        ("url", agreement.url),
        ("form", agreement.form),
        ("ca", agreement.ca_pem),
    ):
        if value is None:
            errors.append(FieldError(field, "required"))
    errors = _merged(also or [], errors + _check(session, agreement, None))
    if errors:
        raise InvalidInput(errors)
    if session.scalar(select(FederationPeer).where(FederationPeer.name == name)) is not None:
        raise Conflict(f"peer {name!r} already exists (`federica peer update` changes it)")
    peer = FederationPeer(name=name, borders="{}", guest_quota=0)
    _apply(peer, agreement)
    session.add(peer)
    session.flush()
    return peer


def get(session: Session, name: str) -> FederationPeer:
    peer = session.scalar(select(FederationPeer).where(FederationPeer.name == name))
    if peer is None:
        raise NotFound(f"no peer {name!r}")
    return peer


def _merged(first: list[FieldError], then: list[FieldError]) -> list[FieldError]:
    named = {e.field for e in first}
    return first + [e for e in then if e.field not in named]


def update(
    session: Session, name: str, agreement: Agreement, also: list[FieldError] | None = None
) -> FederationPeer:
    """Changes an agreement; a new CA (certificate rotation) takes effect on the next
    connection, the old CA's certificates are refused from then on."""
    peer = get(session, name)
    errors = _merged(also or [], _check(session, agreement, peer))
    if errors:
        raise InvalidInput(errors)
    _apply(peer, agreement)
    # A narrower form drops what it no longer allows from an explicit list.
    if peer.allowed is not None:
        peer.allowed = json.dumps([op.value for op in peer.operations])
    session.flush()
    return peer


def remove(session: Session, name: str) -> None:
    session.delete(get(session, name))
    session.flush()


def listing(session: Session) -> list[FederationPeer]:
    return list(session.scalars(select(FederationPeer).order_by(FederationPeer.name)))


def describe(peer: FederationPeer) -> dict[str, Any]:
    return {
        "name": peer.name,
        "url": peer.url,
        "form": peer.form.value,
        "ca_fingerprint": peer.ca_fingerprint,
        "operations": [op.value for op in peer.operations],
        "pops": peer.pop_names,
        "borders": peer.border_map,
        "guest_quota": peer.guest_quota,
    }


def trusted_cas(session: Session) -> list[tuple[str, str]]:
    """(fingerprint, PEM) of every registered peer's CA: what the listener trusts."""
    rows = session.execute(
        select(FederationPeer.ca_fingerprint, FederationPeer.ca_pem).order_by(
            FederationPeer.ca_fingerprint
        )
    )
    return [(fp, pem) for fp, pem in rows]


@dataclass(frozen=True)
class Known:
    peer: FederationPeer | None
    subject: str
    fingerprint: str
    reason: str = ""


def identify(session: Session, der: bytes | None, now: dt.datetime) -> Known:
    """The peer that holds this client certificate, or why none does."""
    if not der:
        return Known(None, "", "", "no client certificate")
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return Known(None, "", "", "client certificate unreadable")
    subject, fp = cert.subject.rfc4514_string(), identity.fingerprint(cert)
    reasons = []
    for peer in listing(session):
        reason = identity.issued_by(cert, x509.load_pem_x509_certificate(peer.ca_pem.encode()), now)
        if reason is None:
            return Known(peer, subject, fp)
        if reason != "issued by another CA":
            reasons.append(f"{peer.name}: {reason}")
    why = "; ".join(reasons) or "issued by no registered peer's CA (unknown or removed peer)"
    return Known(None, subject, fp, why)
