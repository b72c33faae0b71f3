"""The mutual-TLS listener and the peer client in one process: the client trusts only
the CA registered for the peer it calls; the listener's trust follows the registry
without a restart."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pytest
from cryptography import x509

from federica.app import federation_server
from federica.context import Context
from federica.db import transaction
from federica.federation import identity, peers
from federica.federation.agreement import API_VERSION
from federica.federation.client import PeerClient, PeerError, checked

Facilities = dict[str, identity.Facility]


@pytest.fixture
def listener(db: Context, beta: identity.Facility) -> Iterator[str]:
    server = federation_server(db, "127.0.0.1", 0)
    server.expiration_interval = 0.05  # stop() waits up to one (cheroot's: 0.5 s)
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.bind_addr[1]}"
    finally:
        server.stop()
        thread.join(timeout=30)


def client_of(facility: identity.Facility, url: str, ca_pem: str) -> PeerClient:
    return PeerClient(url, ca_pem, facility.files.client_cert, facility.files.client_key)


def test_the_client_reads_the_advertisement_and_trust_follows_the_registry(
    db: Context, beta: identity.Facility, facilities: Facilities, listener: str
) -> None:
    alpha = facilities["alpha"]
    calling = client_of(alpha, listener, beta.ca_pem)
    with pytest.raises(PeerError, match=r"TLS with the peer failed|unreachable"):
        calling.advertisement()  # not registered yet: refused at the handshake
    with transaction(db.sessions) as s:
        peers.add(s, "alpha", peers.Agreement(url="https://127.0.0.1:1", form="overlay",
                                              ca_pem=alpha.ca_pem))  # fmt: skip
    ad = calling.advertisement()  # no restart
    assert (ad["version"], ad["peer"], ad["form"]) == (API_VERSION, "alpha", "overlay")
    # The server is beta, but alpha trusts gamma's CA for it: not the peer it means.
    impostor = client_of(alpha, listener, facilities["gamma"].ca_pem)
    with pytest.raises(PeerError, match="TLS with the peer failed"):
        impostor.advertisement()
    with transaction(db.sessions) as s:
        peers.update(s, "alpha", peers.Agreement(allowed=["monitoring"]))
    with pytest.raises(PeerError, match=r"refused \(403\).*does not grant") as exc:
        calling.advertisement()
    assert exc.value.http_status == 403
    # Rotated: the old certificates are refused, the new ones accepted, at once.
    rotated = identity.init(
        db.settings.data_dir.parent / "alpha2", "alpha", "alpha.example", hosts=["127.0.0.1"],
        now=dt.datetime.now(dt.UTC),
    )  # fmt: skip
    with transaction(db.sessions) as s:
        peers.update(s, "alpha", peers.Agreement(ca_pem=rotated.ca_pem, allowed=["advertisement"]))
    with pytest.raises(PeerError):
        calling.advertisement()
    assert client_of(rotated, listener, beta.ca_pem).advertisement()["peer"] == "alpha"


def test_an_answer_of_another_version_stops_the_reader() -> None:
    assert checked({"version": API_VERSION})["version"] == API_VERSION
    with pytest.raises(PeerError, match=r"version 'federica\.federation/v2'"):
        checked({"version": "federica.federation/v2"})
    with pytest.raises(PeerError, match="not a JSON object"):
        checked([1, 2])


def test_the_server_certificate_names_the_listener(beta: identity.Facility) -> None:
    cert = x509.load_pem_x509_certificate(beta.files.server_cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
