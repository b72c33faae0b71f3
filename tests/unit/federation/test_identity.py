"""The facility identity: a CA and the certificates it issues, keys private; and the
check that a client certificate is one a given CA issued."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509

from federica.errors import Conflict, InvalidInput
from federica.federation import identity
from federica.federation.agreement import FORM_OPERATIONS, Form, Operation, beyond_form, granted

NOW = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)


def make(tmp_path: Path, name: str) -> identity.Facility:
    return identity.init(
        tmp_path / name, name, f"{name}.example", hosts=["127.0.0.1", "localhost"], now=NOW
    )


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_init_writes_every_file_private_and_names_the_facility(tmp_path: Path) -> None:
    facility = make(tmp_path, "alpha")
    files = facility.files
    for path in (files.ca_key, files.server_key, files.client_key, files.ca_cert, files.facility):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(files.root.stat().st_mode) == 0o700
    loaded = identity.load(tmp_path / "alpha")
    assert (loaded.name, loaded.authority) == ("alpha", "alpha.example")
    client = cert(files.client_cert)
    assert client.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "alpha"
    san = client.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "urn:publicid:IDN+alpha.example+authority+am"
    ]
    server_san = cert(files.server_cert).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert server_san.value.get_values_for_type(x509.DNSName) == ["localhost"]


def test_init_refuses_to_replace_an_identity_unless_forced(tmp_path: Path) -> None:
    first = make(tmp_path, "alpha")
    old = first.ca_pem
    with pytest.raises(Conflict, match="--force"):
        make(tmp_path, "alpha")
    assert first.ca_pem == old
    identity.init(tmp_path / "alpha", "alpha", "a.example", hosts=["::1"], now=NOW, force=True)
    assert identity.load(tmp_path / "alpha").ca_pem != old


def test_init_names_every_bad_field(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as exc:
        identity.init(tmp_path, "Bad Name", "not an authority", hosts=[], now=NOW)
    assert [e.field for e in exc.value.errors] == ["name", "authority", "host"]
    assert not (tmp_path / "federation").exists()


def test_load_without_identity_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(identity.NoIdentity, match="federation init"):
        identity.load(tmp_path)


def test_issued_by_accepts_only_its_own_ca_client_certificates_valid_now(tmp_path: Path) -> None:
    alpha, beta = make(tmp_path, "alpha"), make(tmp_path, "beta")
    alpha_ca = cert(alpha.files.ca_cert)
    client = cert(alpha.files.client_cert)
    assert identity.issued_by(client, alpha_ca, NOW) is None
    assert identity.issued_by(cert(beta.files.client_cert), alpha_ca, NOW) == (
        "issued by another CA"
    )
    assert identity.issued_by(cert(alpha.files.server_cert), alpha_ca, NOW) == (
        "certificate not for client authentication"
    )
    later = NOW + dt.timedelta(days=identity.LEAF_DAYS + 1)
    assert identity.issued_by(client, alpha_ca, later) == "certificate not valid now"
    # Same name, another key: a CA made again with --force is another CA.
    again = identity.init(
        tmp_path / "alpha", "alpha", "alpha.example", hosts=["::1"], now=NOW, force=True
    )
    assert identity.issued_by(client, cert(again.files.ca_cert), NOW) == (
        "signature does not verify with the peer's CA"
    )


def test_forms_bound_what_an_agreement_grants() -> None:
    assert granted(Form.OVERLAY, None) == list(FORM_OPERATIONS[Form.OVERLAY])
    assert Operation.BOOKING not in granted(Form.PARTIAL, None)
    assert granted(Form.INTEGRATED, ["booking", "advertisement"]) == [
        Operation.ADVERTISEMENT,
        Operation.BOOKING,
    ]
    # Narrowed later to a form that cannot grant booking: it is gone, not kept.
    assert granted(Form.OVERLAY, ["booking", "advertisement"]) == [Operation.ADVERTISEMENT]
    assert granted(Form.OVERLAY, []) == []
    assert beyond_form(Form.OVERLAY, {Operation.BOOKING, Operation.ADVERTISEMENT}) == [
        Operation.BOOKING
    ]
