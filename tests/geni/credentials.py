"""The test client's side of GENI identity: an RSA clearinghouse CA, slice-authority and
user certificates with URNs in subjectAltName, and credentials signed as GENI's tools
sign them (a template with the enveloped-signature transform, RSA-SHA1 by default).

The signature is made here with lxml's C14N and `cryptography`, not with signxml, so the
aggregate's verifier (signxml) is checked against an independent signer."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lxml import etree

DS = "http://www.w3.org/2000/09/xmldsig#"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
XML = "{http://www.w3.org/XML/1998/namespace}"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
ALGORITHMS = {
    "sha1": (
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        "http://www.w3.org/2000/09/xmldsig#sha1",
        hashes.SHA1(),  # noqa: S303  (GENI credentials are signed with SHA-1)
        hashlib.sha1,
    ),
    "sha256": (
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2001/04/xmlenc#sha256",
        hashes.SHA256(),
        hashlib.sha256,
    ),
}


@dataclass(frozen=True)
class Holder:
    """A certificate, its key and the URN it carries."""

    cert: x509.Certificate
    key: rsa.RSAPrivateKey
    urn: str

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue(
    urn: str,
    *,
    issuer: Holder | None = None,
    ca: bool = False,
    now: dt.datetime | None = None,
    days: int = 30,
    cn: str | None = None,
) -> Holder:
    """A certificate for `urn`: self-signed when no issuer (a root)."""
    now = now or dt.datetime.now(dt.UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = _name(cn or urn.rsplit("+", 1)[-1])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.UniformResourceIdentifier(urn),
                    x509.UniformResourceIdentifier(f"urn:uuid:{uuid.uuid4()}"),
                ]
            ),
            critical=False,
        )
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    signer_key = issuer.key if issuer else key
    cert = builder.sign(signer_key, hashes.SHA256())
    return Holder(cert, key, urn)


def _b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def _one(root: etree._Element, path: str) -> etree._Element:
    found = root.find(path)
    assert found is not None, path
    return found


def _c14n(el: etree._Element) -> bytes:
    """C14N 1.0 of the subtree at `el`, as xmlsec computes it: the apex inherits its
    ancestors' xml:* attributes (GENI's SignedInfo gets the Signature's xml:id). libxml2
    2.14 adds a stray xmlns="" two levels below a default namespace when it
    canonicalises a subtree; a GENI credential has no real undeclaration to keep."""
    added = []
    for ancestor in el.iterancestors():
        for key, value in ancestor.attrib.items():
            name = str(key)
            if name.startswith(XML) and name not in el.attrib:
                el.set(name, value)
                added.append(name)
    try:
        return etree.tostring(el, method="c14n").replace(b' xmlns=""', b"")
    finally:
        for name in added:
            del el.attrib[name]


def credential(
    *,
    owner: Holder,
    target_urn: str,
    signer: Holder,
    chain: tuple[x509.Certificate, ...] = (),
    expires: dt.datetime | None = None,
    privileges: tuple[str, ...] = ("*",),
    algorithm: str = "sha1",
    kind: str = "privilege",
    target_gid: x509.Certificate | None = None,
    xmlsec: Path | None = None,
) -> str:
    """A signed GENI v3 credential as omni's clearinghouse would hand it out. With
    `xmlsec` (a working directory), xmlsec1 signs it, as GENI's own tools do."""
    expires = expires or dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    root = etree.Element("signed-credential", nsmap={"xsi": XSI})
    root.set(
        f"{{{XSI}}}noNamespaceSchemaLocation",
        "http://www.geni.net/resources/credential/2/credential.xsd",
    )
    cred = etree.SubElement(root, "credential")
    cred.set("{http://www.w3.org/XML/1998/namespace}id", "ref0")
    fields = [
        ("type", kind),
        ("serial", "8"),
        ("owner_gid", owner.cert_pem),
        ("owner_urn", owner.urn),
        (
            "target_gid",
            (target_gid or owner.cert).public_bytes(serialization.Encoding.PEM).decode(),
        ),
        ("target_urn", target_urn),
        ("uuid", ""),
        ("expires", expires.strftime("%Y-%m-%dT%H:%M:%SZ")),
    ]
    for tag, text in fields:
        etree.SubElement(cred, tag).text = text
    privs = etree.SubElement(cred, "privileges")
    for p in privileges:
        el = etree.SubElement(privs, "privilege")
        etree.SubElement(el, "name").text = p
        etree.SubElement(el, "can_delegate").text = "true"
    sigs = etree.SubElement(root, "signatures")
    sign_method, digest_method, sig_hash, digest_fn = ALGORITHMS[algorithm]
    sig = etree.SubElement(sigs, f"{{{DS}}}Signature", nsmap={None: DS})  # type: ignore[dict-item]
    sig.set("{http://www.w3.org/XML/1998/namespace}id", "Sig_ref0")
    info = etree.SubElement(sig, f"{{{DS}}}SignedInfo")
    etree.SubElement(info, f"{{{DS}}}CanonicalizationMethod", Algorithm=C14N)
    etree.SubElement(info, f"{{{DS}}}SignatureMethod", Algorithm=sign_method)
    ref = etree.SubElement(info, f"{{{DS}}}Reference", URI="#ref0")
    transforms = etree.SubElement(ref, f"{{{DS}}}Transforms")
    etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm=ENVELOPED)
    etree.SubElement(ref, f"{{{DS}}}DigestMethod", Algorithm=digest_method)
    etree.SubElement(ref, f"{{{DS}}}DigestValue")
    etree.SubElement(sig, f"{{{DS}}}SignatureValue")
    data = etree.SubElement(etree.SubElement(sig, f"{{{DS}}}KeyInfo"), f"{{{DS}}}X509Data")
    for c in (signer.cert, *chain):
        etree.SubElement(data, f"{{{DS}}}X509Certificate").text = _b64(c)
    if xmlsec is not None:
        return _xmlsec_sign(root, signer, chain, xmlsec)
    # A tree built in memory canonicalises with stray xmlns="" (lxml); as parsed text it
    # is what a receiver sees.
    root = etree.fromstring(etree.tostring(root))
    cred = _one(root, "credential")
    digest = _one(root, f".//{{{DS}}}DigestValue")
    value = _one(root, f".//{{{DS}}}SignatureValue")
    info = _one(root, f".//{{{DS}}}SignedInfo")
    # What xmlsec does with this template: digest the credential (C14N 1.0 of the
    # referenced subtree), then sign the canonical SignedInfo.
    digest.text = base64.b64encode(digest_fn(_c14n(cred)).digest()).decode()
    signed_info = _c14n(info)
    value.text = base64.b64encode(
        signer.key.sign(signed_info, padding.PKCS1v15(), sig_hash)
    ).decode()
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode()


def _xmlsec_sign(
    root: etree._Element, signer: Holder, chain: tuple[x509.Certificate, ...], workdir: Path
) -> str:
    """xmlsec1 fills the template (the digest, the signature, the certificates)."""
    workdir.mkdir(parents=True, exist_ok=True)
    data = _one(root, f".//{{{DS}}}X509Data")
    for child in list(data):
        data.remove(child)
    etree.SubElement(data, f"{{{DS}}}X509Certificate")
    template, key = workdir / "template.xml", workdir / "signer.key"
    template.write_bytes(etree.tostring(root))
    key.write_text(signer.key_pem)
    pems = [workdir / "signer.pem"]
    pems[0].write_text(signer.cert_pem)
    for i, c in enumerate(chain):
        pems.append(workdir / f"chain{i}.pem")
        pems[-1].write_bytes(c.public_bytes(serialization.Encoding.PEM))
    out = subprocess.run(
        ["xmlsec1", "--sign", "--node-id", "Sig_ref0", "--privkey-pem",
         ",".join(str(p) for p in [key, *pems]), str(template)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout
