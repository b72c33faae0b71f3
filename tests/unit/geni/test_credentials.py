"""Credential verification: the signer chained to a trust root, never its key alone."""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from federica.geni import credentials, urns
from federica.geni.codes import Code, GeniError
from tests.geni.credentials import Holder, credential, issue

SLICE = "urn:publicid:IDN+ch.test:p+slice+s"
NOW = dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Pki:
    root: Holder
    sa: Holder
    alice: Holder

    def verify(self, xml: str) -> credentials.Credential:
        return credentials.verify(xml, roots=[self.root.cert], caller=self.alice.cert, now=NOW)


@pytest.fixture(scope="module")
def pki() -> Pki:
    root = issue("urn:publicid:IDN+ch.test+authority+ca", ca=True, days=365)
    sa = issue("urn:publicid:IDN+ch.test+authority+sa", issuer=root, ca=True, days=365)
    return Pki(root, sa, issue("urn:publicid:IDN+ch.test+user+alice", issuer=sa))


def _b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def test_a_credential_chained_through_its_authority_is_accepted(pki: Pki) -> None:
    for alg in ("sha1", "sha256"):
        xml = credential(
            owner=pki.alice, target_urn=SLICE, signer=pki.sa, chain=(pki.root.cert,), algorithm=alg
        )
        c = pki.verify(xml)
        assert (c.owner_urn, c.target_urn, c.signer_urn) == (pki.alice.urn, SLICE, pki.sa.urn)
        assert c.grants("createsliver") and c.grants("anything")


def test_the_signers_own_key_is_not_enough(pki: Pki) -> None:
    # Mallory signs with her own key under the authority's name: her certificate does not
    # chain to the root.
    mallory = issue("urn:publicid:IDN+ch.test+authority+sa", ca=True)
    xml = credential(owner=pki.alice, target_urn=SLICE, signer=mallory, chain=(pki.root.cert,))
    with pytest.raises(GeniError, match="does not chain"):
        pki.verify(xml)
    # Showing the real authority's certificate instead: it chains, but her signature does
    # not verify with it.
    swapped = xml.replace(_b64(mallory.cert), _b64(pki.sa.cert), 1)
    assert swapped != xml
    with pytest.raises(GeniError, match="does not verify"):
        pki.verify(swapped)


def test_an_expired_signer_certificate_is_refused(pki: Pki) -> None:
    old = issue(
        "urn:publicid:IDN+ch.test+authority+sa",
        issuer=pki.root,
        ca=True,
        now=NOW - dt.timedelta(days=40),
        days=10,
    )
    with pytest.raises(GeniError, match="not valid now") as exc:
        pki.verify(credential(owner=pki.alice, target_urn=SLICE, signer=old))
    assert exc.value.code is Code.FORBIDDEN


def test_first_valid_names_every_reason(pki: Pki) -> None:
    good = credential(owner=pki.alice, target_urn=SLICE, signer=pki.sa)
    creds = [
        {"geni_type": "geni_sfa", "geni_version": "2", "geni_value": good},
        {"geni_type": "geni_sfa", "geni_version": "3", "geni_value": good},
    ]
    roots, caller = [pki.root.cert], pki.alice.cert

    def first(items: object, target: str | None, privilege: str) -> credentials.Credential:
        return credentials.first_valid(
            items, roots=roots, caller=caller, now=NOW, target=target, privilege=privilege
        )

    assert first(creds, SLICE, "deletesliver").target_urn == SLICE
    with pytest.raises(GeniError) as exc:
        first(creds, "urn:publicid:IDN+ch.test:p+slice+t", "x")
    assert exc.value.code is Code.FORBIDDEN
    assert "[0]: type 'geni_sfa' version '2'" in exc.value.output
    assert "[1]: it is for" in exc.value.output
    with pytest.raises(GeniError) as exc:
        first("nope", None, "x")
    assert exc.value.code is Code.BADARGS


def test_urns() -> None:
    u = urns.parse("urn:publicid:IDN+ch.geni.net:lab+slice+exp-1", "slice")
    assert u is not None
    assert (u.authority, u.top_authority, u.name) == ("ch.geni.net:lab", "ch.geni.net", "exp-1")
    assert urns.parse("urn:publicid:IDN+ch.geni.net+user+x", "slice") is None
    assert urns.parse("urn:publicid:IDN+a b+slice+x") is None
    assert urns.parse(42) is None


def test_credentials_signed_by_xmlsec1_as_geni_tools_sign_them(pki: Pki, tmp_path: Path) -> None:
    """xmlsec1 (what omni's clearinghouse and geni-tools sign and verify with) and the
    aggregate agree, both ways: its signature is accepted, ours passes its check."""
    assert shutil.which("xmlsec1"), "xmlsec1 is installed by scripts/setup.sh (deps/apt-test.txt)"
    signed = credential(
        owner=pki.alice, target_urn=SLICE, signer=pki.sa, chain=(pki.root.cert,), xmlsec=tmp_path
    )
    assert 'xml:id="Sig_ref0"' in signed
    assert pki.verify(signed).signer_urn == pki.sa.urn
    with pytest.raises(GeniError, match="does not verify"):
        pki.verify(signed.replace("<name>*</name>", "<name>*,</name>"))
    ours = tmp_path / "ours.xml"
    ours.write_text(
        credential(owner=pki.alice, target_urn=SLICE, signer=pki.sa, chain=(pki.root.cert,))
    )
    root = tmp_path / "root.pem"
    root.write_text(pki.root.cert_pem)
    check = subprocess.run(
        ["xmlsec1", "--verify", "--trusted-pem", str(root), "--node-id", "Sig_ref0", str(ours)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
