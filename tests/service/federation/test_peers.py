"""The peer registry, knowing a peer by its certificate, and the advertisement a peer
gets (never more than its agreement says), through the peer app as the listener calls it."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from flask.testing import FlaskClient
from sqlalchemy import select

from federica.aaa.models import AuditEntry
from federica.context import Context
from federica.db import transaction
from federica.errors import Conflict, InvalidInput, NotFound
from federica.federation import identity, peers
from federica.federation.agreement import Form
from federica.web.federation import PEER_CERT, create_peer_app
from federica.web.federation.openapi import Advertisement
from tests.helpers import table_dump

Facilities = dict[str, identity.Facility]
ADVERTISEMENT = "/federation/v1/advertisement"


def der(path: Any) -> bytes:
    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(Encoding.DER)


def add(db: Context, name: str, facility: identity.Facility, **kw: Any) -> dict[str, Any]:
    agreement = peers.Agreement(
        url=kw.pop("url", "https://127.0.0.1:9443"),
        form=kw.pop("form", "partial"),
        ca_pem=facility.ca_pem,
        **kw,
    )
    with transaction(db.sessions) as s:
        return peers.describe(peers.add(s, name, agreement))


def identify(db: Context, cert: bytes | None) -> peers.Known:
    with db.read_sessions() as s:
        return peers.identify(s, cert, dt.datetime.now(dt.UTC))


def test_add_keeps_the_agreement_and_defaults_to_what_the_form_allows(
    db: Context, beta: identity.Facility, facilities: Facilities
) -> None:
    got = add(
        db, "alpha", facilities["alpha"], form="overlay", guest_quota=5, pops=["TYO"],
        borders={"tyo-sw:xe-2/0/0": "prg-mx:xe-2/0/0"},
    )  # fmt: skip
    assert got["operations"] == ["advertisement", "monitoring", "estop"]
    assert got["guest_quota"] == 5
    assert got["pops"] == ["TYO"]
    assert got["url"] == "https://127.0.0.1:9443"
    ca = x509.load_pem_x509_certificate(facilities["alpha"].ca_pem.encode())
    assert got["ca_fingerprint"] == identity.fingerprint(ca)


def test_bad_agreement_names_every_field_and_changes_nothing(
    db: Context, beta: identity.Facility, facilities: Facilities
) -> None:
    before = table_dump(db)
    bad = peers.Agreement(
        url="http://127.0.0.1:1",
        form="integrated",
        ca_pem=facilities["alpha"].files.client_cert.read_text(),
        allowed=["advertisement", "teleport"],
        pops=["TYO", "LHR"],
        borders={"tyo-sw:xe-2/0/0": ""},
        guest_quota=-1,
    )
    with transaction(db.sessions) as s, pytest.raises(InvalidInput) as exc:
        peers.add(s, "Alpha!", bad)
    fields = [e.field for e in exc.value.errors]
    assert fields == ["name", "url", "allow", "pops", "border", "guest_quota", "ca"]
    assert "not a CA certificate" in exc.value.errors[-1].message
    with transaction(db.sessions) as s, pytest.raises(InvalidInput, match="cannot grant booking"):
        peers.add(
            s, "alpha",
            peers.Agreement(url="https://h:1", form="partial", ca_pem=facilities["alpha"].ca_pem,
                            allowed=["booking"]),
        )  # fmt: skip
    with transaction(db.sessions) as s, pytest.raises(InvalidInput, match="not a PEM"):
        peers.add(s, "alpha", peers.Agreement(url="https://h:1", form="partial", ca_pem="junk"))
    assert table_dump(db) == before


def test_one_ca_names_one_peer_and_one_name_one_peer(
    db: Context, beta: identity.Facility, facilities: Facilities
) -> None:
    add(db, "alpha", facilities["alpha"])
    with transaction(db.sessions) as s, pytest.raises(InvalidInput, match="already registered"):
        peers.add(
            s, "alias", peers.Agreement(url="https://h:1", form="overlay",
                                        ca_pem=facilities["alpha"].ca_pem),
        )  # fmt: skip
    with transaction(db.sessions) as s, pytest.raises(Conflict, match="already exists"):
        peers.add(
            s, "alpha", peers.Agreement(url="https://h:1", form="overlay",
                                        ca_pem=facilities["gamma"].ca_pem),
        )  # fmt: skip
    with transaction(db.sessions) as s, pytest.raises(NotFound):
        peers.remove(s, "nobody")


def test_a_peer_is_known_by_its_certificate_and_unknown_once_removed(
    db: Context, beta: identity.Facility, facilities: Facilities
) -> None:
    add(db, "alpha", facilities["alpha"])
    add(db, "gamma", facilities["gamma"])
    alpha_cert = der(facilities["alpha"].files.client_cert)
    known = identify(db, alpha_cert)
    assert known.peer is not None and known.peer.name == "alpha"
    assert known.subject == "CN=alpha,OU=client,O=federica"
    assert identify(db, der(facilities["gamma"].files.client_cert)).peer.name == "gamma"  # type: ignore[union-attr]
    stranger = identify(db, der(facilities["mallory"].files.client_cert))
    assert stranger.peer is None
    assert "issued by no registered peer's CA" in stranger.reason
    server = identify(db, der(facilities["alpha"].files.server_cert))
    assert server.peer is None
    assert server.reason == "alpha: certificate not for client authentication"
    assert identify(db, None).reason == "no client certificate"
    assert identify(db, b"\x30\x03junk").reason == "client certificate unreadable"
    with transaction(db.sessions) as s:
        peers.remove(s, "alpha")
    assert identify(db, alpha_cert).peer is None


def test_rotating_a_peers_ca_refuses_the_old_certificates(
    db: Context, beta: identity.Facility, facilities: Facilities, tmp_path: Any
) -> None:
    add(db, "alpha", facilities["alpha"], allowed=["advertisement"])
    old = der(facilities["alpha"].files.client_cert)
    rotated = identity.init(
        tmp_path, "alpha", "alpha.example", hosts=["127.0.0.1"], now=dt.datetime.now(dt.UTC)
    )
    with transaction(db.sessions) as s:
        got = peers.describe(peers.update(s, "alpha", peers.Agreement(ca_pem=rotated.ca_pem)))
    assert got["operations"] == ["advertisement"]  # the agreement stays as it was
    assert identify(db, old).peer is None
    assert identify(db, der(rotated.files.client_cert)).peer is not None
    # Narrowing the form drops what it cannot grant from an explicit list.
    with transaction(db.sessions) as s:
        peers.update(s, "alpha", peers.Agreement(form="partial", allowed=["identity", "estop"]))
        got = peers.describe(peers.update(s, "alpha", peers.Agreement(form=Form.OVERLAY.value)))
    assert got["operations"] == ["estop"]


@pytest.fixture
def peer_client(db: Context, beta: identity.Facility) -> FlaskClient:
    app = create_peer_app(db)
    app.config["TESTING"] = True
    return app.test_client()


def as_peer(client: FlaskClient, cert: bytes | None, path: str = ADVERTISEMENT, **kw: Any) -> Any:
    return client.open(path, environ_overrides={PEER_CERT: cert}, **kw)


def audited(db: Context) -> list[tuple[str, str, int, dict[str, Any]]]:
    with db.read_sessions() as s:
        rows = s.scalars(
            select(AuditEntry).where(AuditEntry.action.like("federation.%")).order_by(AuditEntry.id)
        )
        return [(r.actor, r.target, r.status, json.loads(r.detail)) for r in rows]


def test_the_advertisement_shows_a_peer_only_what_its_agreement_allows(
    db: Context, peer_client: FlaskClient, facilities: Facilities
) -> None:
    add(
        db, "alpha", facilities["alpha"], pops=["TYO", "OSA"],
        borders={"tyo-sw:xe-2/0/0": "prg-mx:xe-2/0/0"},
    )  # fmt: skip
    r = as_peer(peer_client, der(facilities["alpha"].files.client_cert))
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["version"] == "federica.federation/v1"
    assert body["facility"]["urn"] == "urn:publicid:IDN+beta.example+authority+am"
    assert (body["peer"], body["form"]) == ("alpha", "partial")
    assert [p["name"] for p in body["pops"]] == ["OSA", "TYO"]  # not SPR
    osa = body["pops"][0]
    assert osa["capacity"] == {"vnodes": 2, "cpu_cores": 12, "ram_mb": 49152}
    assert [(c["class"], c["count"]) for c in osa["vnode_classes"]] == [
        ("4c-16384m", 1),
        ("8c-32768m", 1),
    ]
    # Its own border at TYO, with the port on its side; not gamma's at TYO, not SPR's.
    assert body["border_ports"] == [
        {
            "port": "tyo-sw:xe-2/0/0",
            "pop": "TYO",
            "speed_mbps": 10000,
            "vlans": {"min": 3000, "max": 3099},
            "peer_port": "prg-mx:xe-2/0/0",
        }
    ]
    assert audited(db) == []


def test_all_pops_when_the_agreement_names_none(
    db: Context, peer_client: FlaskClient, facilities: Facilities
) -> None:
    add(db, "alpha", facilities["alpha"])
    body = as_peer(peer_client, der(facilities["alpha"].files.client_cert)).get_json()
    assert [p["name"] for p in body["pops"]] == ["OSA", "SPR", "TYO"]
    assert [(b["port"], b["peer_port"]) for b in body["border_ports"]] == [
        ("spr-sw:xe-2/0/0", None),
        ("tyo-sw:xe-2/0/0", None),
    ]


def test_refusals_are_problems_naming_why_and_audited(
    db: Context, peer_client: FlaskClient, facilities: Facilities
) -> None:
    add(db, "alpha", facilities["alpha"], allowed=["monitoring"])
    alpha = der(facilities["alpha"].files.client_cert)
    cases = [
        (None, ADVERTISEMENT, "GET", 403, "no client certificate"),
        (der(facilities["mallory"].files.client_cert), ADVERTISEMENT, "GET", 403,
         "issued by no registered peer's CA"),
        (alpha, ADVERTISEMENT, "GET", 403, "does not grant 'advertisement'"),
        (alpha, ADVERTISEMENT + "?pops=SPR", "GET", 400, "unknown query parameter(s) ['pops']"),
        (alpha, ADVERTISEMENT, "POST", 405, "not allowed"),
        (alpha, "/federation/v1/nothing", "GET", 404, "not found"),
        (alpha, "/federation/v2/advertisement", "GET", 404, "not found"),
    ]  # fmt: skip
    for cert, path, method, status, why in cases:
        r = as_peer(peer_client, cert, path, method=method)
        assert r.status_code == status, (path, r.get_json())
        assert r.mimetype == "application/problem+json"
        assert why in r.get_json()["detail"], r.get_json()
    rows = audited(db)
    assert [(actor, status) for actor, _t, status, _d in rows] == [
        ("peer:unknown", 403), ("peer:unknown", 403), ("peer:alpha", 403), ("peer:alpha", 400),
        ("peer:alpha", 405), ("peer:alpha", 404), ("peer:alpha", 404),
    ]  # fmt: skip
    assert rows[1][3]["certificate"] == "CN=mallory,OU=client,O=federica"
    assert "does not grant" in rows[2][3]["reason"]
    assert rows[4][1] == "POST /federation/v1/advertisement"


def test_an_oversized_request_is_refused_and_audited(
    db: Context, peer_client: FlaskClient, facilities: Facilities
) -> None:
    add(db, "alpha", facilities["alpha"])
    big = b"x" * (db.settings.max_request_bytes + 1)
    r = as_peer(
        peer_client, der(facilities["alpha"].files.client_cert), method="POST", data=big,
        content_type="application/json",
    )  # fmt: skip
    assert r.status_code in (405, 413)
    assert r.mimetype == "application/problem+json"
    assert audited(db)[-1][2] == r.status_code


def test_the_openapi_document_describes_the_peer_api_as_served(
    db: Context, peer_client: FlaskClient, client: FlaskClient, facilities: Facilities
) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    documented = {
        (p, m.upper()) for p, ops in doc["paths"].items() if p.startswith("/federation/")
        for m in ops
    }  # fmt: skip
    app = peer_client.application
    routes = {
        (re.sub(r"<(\w+)>", r"{\1}", rule.rule), m)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/federation/")
        for m in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    assert documented == routes
    assert doc["components"]["securitySchemes"]["peerCertificate"]["type"] == "mutualTLS"
    # What the peer gets is what the document says (its schema forbids anything more).
    add(db, "alpha", facilities["alpha"], borders={"tyo-sw:xe-2/0/0": "prg-mx:xe-2/0/0"})
    body = as_peer(peer_client, der(facilities["alpha"].files.client_cert)).get_json()
    Advertisement.model_validate(body)
    assert "VNodeClass" in doc["components"]["schemas"]
    assert "class" in doc["components"]["schemas"]["VNodeClass"]["properties"]
