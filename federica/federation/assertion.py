"""Identity assertions: the home facility says who its user is, signed; the visited
facility checks it before acting for that user.

An assertion is a compact JWS (ES256, joserfc) signed with the home facility's client key,
its certificate in the `x5c` header. The visited facility accepts it only if that
certificate was issued by the CA it registered for the peer that calls (the same peer the
mutual TLS identified), its issuer (`iss`) is the URN in that certificate, its audience
(`aud`) is the visited facility, it is unexpired and short-lived, its user (`sub`) is under
the issuer's own URN authority (a facility vouches only for its own users), and its id
(`jti`) was never seen from that issuer (replay). Every refusal names why.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from federica.errors import FedericaError
from federica.federation import identity
from federica.federation.models import FederationPeer, SeenAssertion

ALGORITHM = "ES256"
# Longest assertion accepted (bytes of its compact form): a peer cannot make us parse more.
MAX_BYTES = 8192
# Longest life an assertion may claim, and the clock difference tolerated between facilities.
MAX_LIFETIME = dt.timedelta(minutes=10)
LIFETIME = dt.timedelta(minutes=5)
SKEW = dt.timedelta(seconds=60)
JTI = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MAX_PROJECTS = 32
MAX_SSH_KEYS = 8


class _Registry(jws.JWSRegistry):
    # The header carries the signer's certificate (x5c): larger than joserfc's default
    # bound for headers; the whole assertion stays under MAX_BYTES.
    max_header_length = 4096
    max_payload_length = MAX_BYTES


REGISTRY = _Registry(algorithms=[ALGORITHM])


class AssertionRefused(FedericaError):
    """An identity assertion this facility does not accept (4xx naming why)."""

    status = 401
    title = "Identity assertion refused"
    type_slug = "assertion-refused"


def user_urn(authority: str, username: str) -> str:
    return f"urn:publicid:IDN+{authority}+user+{username}"


@dataclass(frozen=True)
class Assertion:
    issuer: str  # the home facility's URN
    user: str  # the user's URN
    username: str
    projects: list[str]
    attributes: dict[str, Any]
    jti: str
    expires_at: dt.datetime
    ssh_keys: list[str] = field(default_factory=list)


def sign(
    facility: identity.Facility,
    *,
    username: str,
    projects: list[str],
    attributes: dict[str, Any],
    audience: str,
    now: dt.datetime,
    lifetime: dt.timedelta = LIFETIME,
    jti: str | None = None,
) -> str:
    """An assertion for one of this facility's users, for the facility `audience` (URN)."""
    files = facility.files
    cert = x509.load_pem_x509_certificate(files.client_cert.read_bytes())
    key = ECKey.import_key(files.client_key.read_bytes())
    claims = {
        "iss": facility.urn,
        "sub": user_urn(facility.authority, username),
        "aud": audience,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "jti": jti or secrets.token_urlsafe(24),
        "username": username,
        "projects": projects,
        "attributes": attributes,
    }
    header = {
        "alg": ALGORITHM,
        "typ": "JWT",
        "x5c": [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()],
    }
    return jws.serialize_compact(
        header, json.dumps(claims), key, algorithms=[ALGORITHM], registry=REGISTRY
    )


def _refuse(why: str) -> AssertionRefused:
    return AssertionRefused(f"identity assertion refused: {why}")


def _signing_cert(token: str, peer: FederationPeer, now: dt.datetime) -> x509.Certificate:
    try:
        header = jws.extract_compact(token.encode(), registry=REGISTRY).headers()
    except (JoseError, ValueError, UnicodeError):
        raise _refuse("not a compact JWS") from None
    if header.get("alg") != ALGORITHM:
        raise _refuse(f"algorithm {str(header.get('alg'))[:20]!r}; only {ALGORITHM} is accepted")
    chain = header.get("x5c")
    if not isinstance(chain, list) or len(chain) != 1 or not isinstance(chain[0], str):
        raise _refuse("the x5c header must hold exactly the signer's certificate")
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(chain[0], validate=True))
    except (ValueError, binascii.Error):
        raise _refuse("the x5c certificate is unreadable") from None
    ca = x509.load_pem_x509_certificate(peer.ca_pem.encode())
    why = identity.issued_by(cert, ca, now)
    if why is not None:
        raise _refuse(f"signer's certificate: {why} (not {peer.name!r}'s)")
    return cert


def _cert_urn(cert: x509.Certificate) -> str | None:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    urns = [u for u in names.get_values_for_type(x509.UniformResourceIdentifier)]
    return urns[0] if len(urns) == 1 else None


def verify(
    session: Session,
    token: Any,
    *,
    peer: FederationPeer,
    audience: str,
    now: dt.datetime,
) -> Assertion:
    """The assertion's content, if the calling peer signed it for us, now; else
    AssertionRefused naming why. Does not consume it (see `consume`)."""
    if not isinstance(token, str) or not token:
        raise _refuse("missing (a compact JWS string)")
    if len(token.encode()) > MAX_BYTES:
        raise _refuse(f"larger than {MAX_BYTES} bytes")
    cert = _signing_cert(token, peer, now)
    try:
        key = ECKey.import_key(cert.public_key())  # type: ignore[arg-type]
        signed = jws.deserialize_compact(token, key, algorithms=[ALGORITHM], registry=REGISTRY)
        claims = json.loads(signed.payload)
    except JoseError as exc:
        raise _refuse(f"bad signature ({exc.error})") from None
    except ValueError:
        raise _refuse("its payload is not JSON") from None
    if not isinstance(claims, dict):
        raise _refuse("its payload is not a JSON object")
    return _checked(claims, _cert_urn(cert), audience, now)


def _checked(
    claims: dict[str, Any], signer: str | None, audience: str, now: dt.datetime
) -> Assertion:
    issuer = claims.get("iss")
    if signer is None or issuer != signer:
        raise _refuse("its issuer is not the facility whose certificate signed it")
    if claims.get("aud") != audience:
        raise _refuse(f"its audience is not this facility ({audience})")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int) or not isinstance(iat, int) or isinstance(exp | iat, bool):
        raise _refuse("exp and iat must be whole seconds since the epoch")
    try:
        expires = dt.datetime.fromtimestamp(exp, dt.UTC)
        issued = dt.datetime.fromtimestamp(iat, dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise _refuse("exp or iat out of range") from None
    if expires <= now - SKEW:
        raise _refuse(f"expired at {expires.isoformat()}")
    if issued > now + SKEW:
        raise _refuse("issued in the future")
    if expires - issued > MAX_LIFETIME:
        raise _refuse(f"lives longer than {int(MAX_LIFETIME.total_seconds())} s")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not JTI.match(jti):
        raise _refuse("jti must be 16 to 64 characters of A-Z a-z 0-9 _ -")
    username = claims.get("username")
    authority = str(issuer).split("+")[1] if str(issuer).count("+") == 3 else ""
    if not isinstance(username, str) or not USERNAME.match(username):
        raise _refuse("username missing or malformed")
    if claims.get("sub") != user_urn(authority, username):
        raise _refuse("its user is not one of the issuing facility's (sub)")
    projects = claims.get("projects")
    if (
        not isinstance(projects, list)
        or len(projects) > MAX_PROJECTS
        or not all(isinstance(p, str) and 0 < len(p) <= 64 for p in projects)
    ):
        raise _refuse(f"projects must be a list of at most {MAX_PROJECTS} names")
    attributes = claims.get("attributes")
    if not isinstance(attributes, dict):
        raise _refuse("attributes must be an object")
    keys = attributes.get("ssh_keys", [])
    if (
        not isinstance(keys, list)
        or len(keys) > MAX_SSH_KEYS
        or not all(isinstance(k, str) for k in keys)
    ):
        raise _refuse(f"attributes.ssh_keys must be a list of at most {MAX_SSH_KEYS} keys")
    return Assertion(
        issuer=str(issuer),
        user=str(claims["sub"]),
        username=username,
        projects=list(projects),
        attributes=attributes,
        jti=jti,
        expires_at=expires,
        ssh_keys=list(keys),
    )


def consume(session: Session, assertion: Assertion, now: dt.datetime) -> None:
    """Remember the assertion's id until it expires (in the caller's transaction, so an
    action that fails leaves it unused); one seen before is a replay."""
    session.execute(delete(SeenAssertion).where(SeenAssertion.expires_at < now - SKEW))
    seen = session.scalar(
        select(SeenAssertion.id).where(
            SeenAssertion.issuer == assertion.issuer, SeenAssertion.jti == assertion.jti
        )
    )
    if seen is not None:
        raise _refuse(f"replayed (jti {assertion.jti} was used already)")
    session.add(
        SeenAssertion(issuer=assertion.issuer, jti=assertion.jti, expires_at=assertion.expires_at)
    )
    session.flush()
