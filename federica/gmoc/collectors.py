"""The collector registry, and who a datastore request comes from.

A request is identified, in this order, by the client certificate the TLS layer verified
against the trust root (its SAN URIs and CN, matched to a collector's `cert_name`), by a
collector's token, or by a person's API token (they see what the policy lets them see of
slices). Services: read and write the database.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session

from federica import inputs
from federica.aaa import accounts, tokens
from federica.aaa.models import Project
from federica.aaa.policy import Action, allowed_projects, decide, scope_problem
from federica.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound, Unauthorized
from federica.gmoc.access import Viewer
from federica.gmoc.models import GmocCollector

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
TOKEN_PREFIX = "gmc_"  # noqa: S105  (what a collector token starts with; no secret)


@dataclass(frozen=True)
class Added:
    collector: GmocCollector
    token: str | None  # shown once


def add(
    session: Session,
    name: str,
    *,
    cert_name: str | None,
    token: bool,
    project: str | None,
    users: bool,
) -> Added:
    errors = []
    if not NAME.match(name):
        errors.append(FieldError("name", "lower-case letters, digits and '-', at most 63"))
    if cert_name is not None and not 0 < len(cert_name.strip()) <= 500:
        errors.append(FieldError("cert_name", "a certificate's SAN URI or CN, 1 to 500 characters"))
    elif cert_name is not None and (problem := inputs.text_problem(cert_name)):
        errors.append(FieldError("cert_name", problem))
    if cert_name is None and not token:
        errors.append(FieldError("cert_name", "give a certificate name, ask for a token, or both"))
    if project is not None:
        if session.scalar(select(Project.id).where(Project.name == project)) is None:
            errors.append(FieldError("project", f"no project {project!r}"))
        if users:
            errors.append(FieldError("users", "user objects are for whole-aggregate collectors"))
    if errors:
        raise InvalidInput(errors)
    if session.scalar(select(GmocCollector.id).where(GmocCollector.name == name)) is not None:
        raise Conflict(f"a collector {name!r} is registered already")
    cert = cert_name.strip() if cert_name else None
    if cert and session.scalar(select(GmocCollector.id).where(GmocCollector.cert_name == cert)):
        raise Conflict(f"another collector is registered for certificates named {cert!r}")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32) if token else None
    row = GmocCollector(
        name=name,
        cert_name=cert,
        token_hash=tokens.digest(secret) if secret else None,
        project=project,
        users=users,
    )
    session.add(row)
    session.flush()
    return Added(row, secret)


def listed(session: Session) -> list[GmocCollector]:
    return list(session.scalars(select(GmocCollector).order_by(GmocCollector.name)))


def remove(session: Session, name: str) -> None:
    row = session.scalar(select(GmocCollector).where(GmocCollector.name == name))
    if row is None:
        raise NotFound(f"no collector {name!r}")
    session.delete(row)


def describe(row: GmocCollector) -> dict[str, Any]:
    return {
        "name": row.name,
        "cert_name": row.cert_name,
        "token": row.token_hash is not None,
        "sees": f"project {row.project}" if row.project else "whole aggregate",
        "users": row.users,
        "created_at": row.created_at.isoformat(),
    }


def cert_names(der: bytes) -> list[str]:
    """The names a certificate goes by: its SAN URIs (GENI URNs) and its CN."""
    cert = x509.load_der_x509_certificate(der)
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names.extend(san.get_values_for_type(x509.UniformResourceIdentifier))
    except x509.ExtensionNotFound:
        pass
    names.extend(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME))
    return names


def _viewer(row: GmocCollector) -> Viewer:
    projects = None if row.project is None else frozenset({row.project})
    return Viewer(f"collector:{row.name}", projects, users=row.users)


def identify(
    session: Session, cert_der: bytes | None, bearer: str | None, now: dt.datetime
) -> Viewer:
    if cert_der:
        names = cert_names(cert_der)
        row = session.scalar(select(GmocCollector).where(GmocCollector.cert_name.in_(names)))
        if row is None:
            raise Forbidden(f"no collector is registered for this certificate ({', '.join(names)})")
        return _viewer(row)
    if not bearer:
        raise Unauthorized(
            "present a client certificate from the trust root, a collector token or an API "
            "token (Authorization: Bearer …)"
        )
    if bearer.startswith(TOKEN_PREFIX):
        row = session.scalar(
            select(GmocCollector).where(GmocCollector.token_hash == tokens.digest(bearer))
        )
        if row is None:
            raise Unauthorized("the collector token is not valid")
        return _viewer(row)
    token = tokens.resolve(session, bearer, now)
    who = accounts.principal(token.user, scopes=tokens.scopes_of(token), via="gmoc")
    if missing := scope_problem(who, Action.SLICE_READ):
        raise Forbidden(missing)
    return Viewer(
        who.username,
        allowed_projects(who),
        owner_id=who.user_id,
        users=decide(who, Action.USER_READ).allowed,
    )
