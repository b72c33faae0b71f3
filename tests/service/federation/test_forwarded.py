"""The peer API behind a TLS-terminating proxy: served on a Unix socket in a directory
closed to other users, the peer identified from the certificate the proxy forwards
(nginx's $ssl_client_escaped_cert), exactly as on the mutual-TLS listener."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from federica.app import federation_proxy_server
from federica.config import SettingsError
from federica.context import Context
from federica.federation import identity
from tests.service.federation.test_peers import ADVERTISEMENT, Facilities, add


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(30)
        sock.connect(str(self.path))
        self.sock = sock


@pytest.fixture
def peer_socket(db: Context, beta: identity.Facility, tmp_path: Path) -> Iterator[Path]:
    run = tmp_path / "run"
    run.mkdir(mode=0o750)
    run.chmod(0o750)
    path = run / "peer.sock"
    server = federation_proxy_server(db, path)
    server.expiration_interval = 0.05  # stop() waits up to one (cheroot's: 0.5 s)
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        server.stop()
        thread.join(timeout=10)


def get(path: Path, cert_header: str | None) -> tuple[int, dict[str, Any]]:
    conn = UnixConnection(path)
    headers = {} if cert_header is None else {"X-Client-Cert": cert_header}
    conn.request("GET", ADVERTISEMENT, headers=headers)
    response = conn.getresponse()
    body = json.loads(response.read())
    conn.close()
    return response.status, body


def escaped(facility: identity.Facility) -> str:
    """As nginx forwards it: the PEM, URL-encoded."""
    return quote(facility.files.client_cert.read_text(), safe="")


def test_a_registered_peer_is_known_by_the_forwarded_certificate(
    db: Context, peer_socket: Path, facilities: Facilities
) -> None:
    add(db, "alpha", facilities["alpha"])
    status, body = get(peer_socket, escaped(facilities["alpha"]))
    assert status == 200, body
    assert body["peer"] == "alpha"


@pytest.mark.parametrize(
    ("shown", "reason"),
    [
        (None, "no client certificate"),
        ("", "no client certificate"),
        ("not%20a%20certificate", "client certificate unreadable"),
        ("mallory", "issued by no registered peer's CA"),
    ],
)
def test_anything_else_is_refused(
    db: Context, peer_socket: Path, facilities: Facilities, shown: str | None, reason: str
) -> None:
    add(db, "alpha", facilities["alpha"])
    header = escaped(facilities["mallory"]) if shown == "mallory" else shown
    status, body = get(peer_socket, header)
    assert status == 403
    assert reason in body["detail"]


def test_a_socket_directory_open_to_other_users_is_refused(
    db: Context, beta: identity.Facility, tmp_path: Path
) -> None:
    run = tmp_path / "open"
    run.mkdir()
    run.chmod(0o755)
    with pytest.raises(SettingsError, match="open to other users"):
        federation_proxy_server(db, run / "peer.sock")
    with pytest.raises(SettingsError, match="does not exist"):
        federation_proxy_server(db, tmp_path / "missing" / "peer.sock")
