"""This facility's identity: a name, a URN authority, a CA and the certificates it issues.

`federica federation init` makes them in data_dir/federation: the CA (whose certificate
peers register), a server certificate for the peer API listener and a client certificate
this facility presents when it calls a peer. Keys are written 0600 and never logged.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from federica.errors import Conflict, FedericaError, FieldError, InvalidInput
from federica.files import write_private

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# A URN authority is a DNS-like name (GENI: urn:publicid:IDN+<authority>+...).
AUTHORITY = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
CA_DAYS = 3650
LEAF_DAYS = 825


class NoIdentity(FedericaError):
    status = 409
    title = "No facility identity"
    type_slug = "no-facility-identity"


@dataclass(frozen=True)
class FacilityFiles:
    """Where one facility's identity lives (data_dir/federation)."""

    root: Path

    @property
    def facility(self) -> Path:
        return self.root / "facility.json"

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.root / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.root / "server.key"

    @property
    def client_cert(self) -> Path:
        return self.root / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.root / "client.key"


@dataclass(frozen=True)
class Facility:
    name: str
    authority: str
    files: FacilityFiles

    @property
    def urn(self) -> str:
        return f"urn:publicid:IDN+{self.authority}+authority+am"

    @property
    def ca_pem(self) -> str:
        return self.files.ca_cert.read_text()


def files_in(data_dir: Path) -> FacilityFiles:
    return FacilityFiles(data_dir / "federation")


def load(data_dir: Path) -> Facility:
    files = files_in(data_dir)
    if not files.facility.exists():
        raise NoIdentity(
            f"this facility has no federation identity in {files.root}: "
            "run `federica federation init --name NAME --authority AUTHORITY`"
        )
    info = json.loads(files.facility.read_text())
    return Facility(str(info["name"]), str(info["authority"]), files)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, as colon-separated hex (what openssl prints)."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def parse_pem(pem: str, field: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise InvalidInput([FieldError(field, "not a PEM X.509 certificate")]) from None


def init(
    data_dir: Path,
    name: str,
    authority: str,
    *,
    hosts: list[str],
    now: dt.datetime,
    force: bool = False,
) -> Facility:
    """Makes the facility's CA and its server and client certificates."""
    errors = []
    if not NAME.match(name):
        errors.append(FieldError("name", "lower-case letters, digits and '-', at most 63"))
    if not AUTHORITY.match(authority):
        errors.append(FieldError("authority", "a DNS-like name, e.g. federica.example.org"))
    if not hosts:
        errors.append(FieldError("host", "at least one name or address of the listener"))
    if errors:
        raise InvalidInput(errors)
    files = files_in(data_dir)
    if files.facility.exists() and not force:
        raise Conflict(
            f"{files.root} already holds a facility identity; --force replaces it "
            "(every peer must then register the new CA)"
        )
    ca_key = ec.generate_private_key(ec.SECP256R1())
    urn = f"urn:publicid:IDN+{authority}+authority+ca"
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "federica"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{name} facility CA"),
        ]
    )
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key(), now, CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(urn)]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    write_private(files.ca_key, _key_pem(ca_key))
    write_private(files.ca_cert, ca.public_bytes(serialization.Encoding.PEM).decode())
    facility = Facility(name, authority, files)
    for role, cert_path, key_path in (
        ("server", files.server_cert, files.server_key),
        ("client", files.client_cert, files.client_key),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _leaf(facility, ca, ca_key, key, role, hosts, now)
        write_private(key_path, _key_pem(key))
        write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM).decode())
    write_private(files.facility, json.dumps({"name": name, "authority": authority}) + "\n")
    return facility


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: dt.datetime,
    days: int,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        # An hour back: a peer whose clock is a little behind still accepts it.
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
    )


def _leaf(
    facility: Facility,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey,
    role: str,
    hosts: list[str],
    now: dt.datetime,
) -> x509.Certificate:
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(facility.urn)]
    if role == "server":
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
    usage = ExtendedKeyUsageOID.SERVER_AUTH if role == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "federica"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
            x509.NameAttribute(NameOID.COMMON_NAME, facility.name),
        ]
    )
    return (
        _builder(subject, ca.subject, key.public_key(), now, LEAF_DAYS)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )


def issued_by(cert: x509.Certificate, ca: x509.Certificate, now: dt.datetime) -> str | None:
    """Why `cert` is not a client certificate `ca` issued and valid now; None if it is."""
    if cert.issuer != ca.subject:
        return "issued by another CA"
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return "signature does not verify with the peer's CA"
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return "certificate not valid now"
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return "certificate not for client authentication"
    if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        return "certificate not for client authentication"
    return None
