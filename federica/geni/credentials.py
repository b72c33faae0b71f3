"""GENI credentials (geni_sfa version 3): verify the signature and what it grants.

A credential is `<signed-credential>` holding one `<credential xml:id=…>` and, in
`<signatures>`, an XML-DSig `<Signature>` whose one Reference points at that id (the
enveloped-signature transform, RSA-SHA1 or RSA-SHA256). The signature is checked with the
signer's certificate from the Signature's X509Data *after* that certificate was chained
to a configured trust root: a verifier that took the embedded key alone would accept a
credential anyone signed. signxml does the XML-DSig part (reference digest, SignedInfo
canonicalisation, signature value, KeyValue against the certificate); SHA-1 is allowed
here because GENI credentials are signed with it, and nowhere else in federica.

The credential's fields are read from the part the signature covers (signxml's
`signed_xml`), so nothing wrapped around it can change what is read. Delegated
credentials (`<parent>`) and speaks-for are not accepted (see docs/geni.md).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.exceptions import InvalidInput as SignxmlInvalidInput
from signxml.exceptions import SignXMLException
from signxml.verifier import SignatureConfiguration, XMLVerifier

from federica.geni import urns
from federica.geni.codes import Code, GeniError

DS = "http://www.w3.org/2000/09/xmldsig#"
XML_ID = "{http://www.w3.org/XML/1998/namespace}id"
MAX_CREDENTIAL_BYTES = 256_000
MAX_CHAIN = 5
# Every privilege the calls ask for is granted by "*" as well (ProtoGENI's slice
# credentials carry only "*").
ALL = "*"

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=False, remove_comments=False
)
_CONFIG = SignatureConfiguration(
    require_x509=True,
    location=".//",
    expect_references=1,
    signature_methods=frozenset({SignatureMethod.RSA_SHA1, SignatureMethod.RSA_SHA256}),
    digest_algorithms=frozenset({DigestAlgorithm.SHA1, DigestAlgorithm.SHA256}),
    # XML-DSig: a reference without a c14n transform is canonicalised with C14N 1.0.
    default_reference_c14n_method=CanonicalizationMethod.CANONICAL_XML_1_0,
)


@dataclass(frozen=True)
class Credential:
    owner_urn: str
    target_urn: str
    expires: dt.datetime
    privileges: frozenset[str]
    signer_urn: str

    def grants(self, privilege: str) -> bool:
        return ALL in self.privileges or privilege in self.privileges


def _refuse(why: str) -> GeniError:
    return GeniError(Code.FORBIDDEN, f"credential refused: {why}")


def load_certificate(text: str) -> x509.Certificate:
    """A gid as GENI writes it: PEM (possibly several, the first is the holder's) or bare
    base64 DER."""
    text = text.strip()
    try:
        if "-----BEGIN CERTIFICATE-----" in text:
            return x509.load_pem_x509_certificates(text.encode())[0]
        return x509.load_der_x509_certificate(base64.b64decode("".join(text.split())))
    except (ValueError, binascii.Error):
        raise _refuse("a certificate in it is unreadable") from None


def urn_of(cert: x509.Certificate) -> str | None:
    """The GENI URN in a certificate's subjectAltName (URI), if it has one."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if urns.parse(uri) is not None:
            return uri
    return None


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _issued(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def chain_to_root(
    leaf: x509.Certificate,
    supplied: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    now: dt.datetime,
) -> x509.Certificate:
    """The trust root `leaf` chains to through `supplied` intermediates, each valid now
    and a CA; raises FORBIDDEN naming why not."""
    cert = leaf
    for _ in range(MAX_CHAIN + 1):
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise _refuse(f"certificate {cert.subject.rfc4514_string()} is not valid now")
        for root in roots:
            if cert == root or _issued(cert, root):
                if not root.not_valid_before_utc <= now <= root.not_valid_after_utc:
                    raise _refuse("its trust root is not valid now")
                return root
        issuer = next((c for c in supplied if c != cert and _is_ca(c) and _issued(cert, c)), None)
        if issuer is None:
            raise _refuse(
                f"the signer {leaf.subject.rfc4514_string()} does not chain to a trusted root"
            )
        cert = issuer
    raise _refuse("certificate chain too long")


def _text(el: etree._Element, name: str) -> str:
    found = el.find(name)
    return (found.text or "").strip() if found is not None else ""


def _instant(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _refuse(f"expires {text[:40]!r} is not a time") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def verify(
    xml: str,
    *,
    roots: Sequence[x509.Certificate],
    caller: x509.Certificate,
    now: dt.datetime,
) -> Credential:
    """The credential if its signature chains to `roots`, it is the caller's (owner_gid is
    the certificate the caller presented) and it has not expired; FORBIDDEN otherwise."""
    if len(xml.encode()) > MAX_CREDENTIAL_BYTES:
        raise GeniError(Code.TOOBIG, "a credential is larger than 256 kB")
    try:
        doc = etree.fromstring(xml.encode(), parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise GeniError(Code.BADARGS, f"a credential is not XML: {exc}") from None
    creds = doc.findall("credential")
    sigs = doc.findall(f"signatures/{{{DS}}}Signature")
    if doc.tag != "signed-credential" or len(creds) != 1:
        raise _refuse("not a signed-credential with one credential")
    if len(sigs) != 1 or len(doc.findall(f".//{{{DS}}}Signature")) != 1:
        raise _refuse("it must carry exactly one signature (delegation is not accepted)")
    cred_id = creds[0].get(XML_ID) or creds[0].get("id")
    if not cred_id:
        raise _refuse("the credential has no xml:id for the signature to point at")
    refs = sigs[0].findall(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")
    if len(refs) != 1 or refs[0].get("URI") != f"#{cred_id}":
        raise _refuse("its signature does not point at its credential")
    certs_b64 = [
        (c.text or "")
        for c in sigs[0].iterfind(f"{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate")
    ]
    if not certs_b64:
        raise _refuse("its signature carries no signer certificate")
    chain = [load_certificate(c) for c in certs_b64]
    signer = chain[0]
    chain_to_root(signer, chain[1:], roots, now)
    try:
        result: Any = _verifier().verify(
            # GENI puts xml:id on the Signature, which the XML-DSig schema does not allow;
            # the structure was checked above instead.
            doc,
            x509_cert=signer,
            expect_config=_config(now),
            validate_schema=False,
        )
    except (
        SignXMLException,
        SignxmlInvalidInput,
        InvalidSignature,
        ValueError,
        etree.LxmlError,
    ) as exc:
        raise _refuse(f"its signature does not verify ({exc})") from None
    signed = result.signed_xml
    if (
        signed is None
        or signed.tag != "credential"
        or (signed.get(XML_ID) or signed.get("id")) != cred_id
    ):
        raise _refuse("its signature covers something other than its credential")
    return _fields(signed, signer, caller, now)


XML_NS = "{http://www.w3.org/XML/1998/namespace}"


class _Verifier(XMLVerifier):
    """signxml, with two fixes to its canonical XML 1.0 of a subtree (lxml's):

    * C14N 1.0 gives the subtree's apex the xml:* attributes it inherits from its
      ancestors (the nearest wins). GENI's Signature carries xml:id="Sig_ref0", so the
      SignedInfo that xmlsec signs (what every GENI tool uses) carries it too; lxml leaves
      it out. (Checked against xmlsec1 1.2.37: tests/unit/geni.)
    * libxml2 2.14 (lxml 6's wheels) writes a stray xmlns="" two levels below a default
      namespace declaration (<I xmlns=d><R><T/> gives <T xmlns="">). No GENI credential
      needs an xmlns="" undeclaration (its own elements are in no namespace, the
      signature's all in XML-DSig's), so they are dropped (signxml's own switch)."""

    excise_empty_xmlns_declarations = True

    def _c14n(self, nodes: Any, algorithm: Any, inclusive_ns_prefixes: Any = None) -> bytes:
        apexes = nodes if isinstance(nodes, list) else [nodes]
        added: list[tuple[etree._Element, str]] = []
        exclusive = str(getattr(algorithm, "value", algorithm)).startswith(
            "http://www.w3.org/2001/10/xml-exc-c14n#"
        )
        for apex in apexes if not exclusive else []:
            if not isinstance(apex, etree._Element):
                continue
            for ancestor in apex.iterancestors():
                for key, value in ancestor.attrib.items():
                    name = str(key)
                    if name.startswith(XML_NS) and name not in apex.attrib:
                        apex.set(name, value)
                        added.append((apex, name))
        try:
            out: bytes = super()._c14n(nodes, algorithm, inclusive_ns_prefixes)
            return out
        finally:
            for apex, name in added:
                del apex.attrib[name]


def _verifier() -> XMLVerifier:
    return _Verifier()


def _config(now: dt.datetime) -> SignatureConfiguration:
    return dataclasses.replace(_CONFIG, verification_time=now)


def _fields(
    cred: etree._Element, signer: x509.Certificate, caller: x509.Certificate, now: dt.datetime
) -> Credential:
    if _text(cred, "type") != "privilege":
        raise _refuse(f"type {_text(cred, 'type')[:20]!r}, not a privilege credential")
    if cred.find("parent") is not None:
        raise _refuse("delegated credentials are not accepted")
    owner_urn, target_urn = _text(cred, "owner_urn"), _text(cred, "target_urn")
    if urns.parse(owner_urn) is None or urns.parse(target_urn) is None:
        raise _refuse("owner_urn and target_urn must be GENI URNs")
    expires = _instant(_text(cred, "expires"))
    if expires <= now:
        raise _refuse(f"it expired at {expires.isoformat()}")
    owner = load_certificate(_text(cred, "owner_gid"))
    if owner != caller:
        raise _refuse("its owner is not the caller (owner_gid is not your certificate)")
    if urn_of(caller) != owner_urn:
        raise _refuse("its owner_urn is not the URN in your certificate")
    signer_urn = urns.parse(urn_of(signer) or "")
    target = urns.parse(target_urn)
    assert target is not None
    # A slice authority speaks for its own namespace only.
    if signer_urn is None or signer_urn.top_authority != target.top_authority:
        raise _refuse(
            f"its signer is not the authority of {target_urn} "
            f"(signer: {urn_of(signer) or 'no URN'})"
        )
    privileges = frozenset(
        (p.text or "").strip() for p in cred.iterfind("privileges/privilege/name")
    )
    return Credential(owner_urn, target_urn, expires, privileges, str(signer_urn))


def first_valid(
    credentials: Any,
    *,
    roots: Sequence[x509.Certificate],
    caller: x509.Certificate,
    now: dt.datetime,
    target: str | None,
    privilege: str,
) -> Credential:
    """The first credential of the call's list that is valid, targets `target` (None: the
    caller's own user credential or any slice's) and grants `privilege`."""
    if not isinstance(credentials, list):
        raise GeniError(
            Code.BADARGS, "credentials: a list of {geni_type, geni_version, geni_value}"
        )
    reasons: list[str] = []
    for i, item in enumerate(credentials):
        if not isinstance(item, dict):
            reasons.append(f"[{i}]: not a struct")
            continue
        kind, version = item.get("geni_type"), str(item.get("geni_version", ""))
        if str(kind).lower() != "geni_sfa" or version != "3":
            reasons.append(f"[{i}]: type {kind!r} version {version!r}; only geni_sfa 3 is accepted")
            continue
        value = item.get("geni_value")
        if not isinstance(value, str):
            reasons.append(f"[{i}]: geni_value is not a string")
            continue
        try:
            cred = verify(value, roots=roots, caller=caller, now=now)
        except GeniError as exc:
            if exc.code is not Code.FORBIDDEN:
                raise
            reasons.append(f"[{i}]: {exc.output.removeprefix('credential refused: ')}")
            continue
        if target is not None and cred.target_urn != target:
            reasons.append(f"[{i}]: it is for {cred.target_urn}, not {target}")
            continue
        if not cred.grants(privilege):
            reasons.append(f"[{i}]: it does not grant {privilege}")
            continue
        return cred
    if not reasons:
        raise GeniError(Code.FORBIDDEN, "no credential given")
    raise GeniError(Code.FORBIDDEN, "no usable credential: " + "; ".join(reasons))
