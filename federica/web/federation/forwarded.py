"""The peer API behind a TLS-terminating proxy (nginx): the proxy checks the TLS handshake
(the client proves it holds the key of the certificate it shows) and forwards the
certificate in a header; the app then identifies the peer from it exactly as on its own
listener (issued by a registered peer's CA, valid now, for client authentication).

Trust in the header comes from where it arrives: this app is served only on a Unix
socket that only the proxy can open (see docs/operator-guide.md, "Behind nginx"), and
the proxy always sets the header, to the empty string when no certificate was shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from federica.web.federation import PEER_CERT

# nginx: proxy_set_header X-Client-Cert $ssl_client_escaped_cert;  (URL-encoded PEM)
HEADER = "HTTP_X_CLIENT_CERT"
# A forwarded certificate that is not one (the proxy misconfigured): no certificate.
UNREADABLE = b"unreadable"

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def certificate_der(escaped_pem: str) -> bytes | None:
    """The DER bytes of a URL-encoded PEM certificate; None for none, UNREADABLE for junk
    (the app then refuses the request, naming the certificate as unreadable)."""
    pem = unquote(escaped_pem).strip()
    if not pem:
        return None
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii")).public_bytes(Encoding.DER)
    except (ValueError, UnicodeEncodeError):
        return UNREADABLE


class ForwardedCertificate:
    """WSGI middleware: the header's certificate where the TLS listener would put it."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        environ[PEER_CERT] = certificate_der(environ.pop(HEADER, ""))
        return self.app(environ, start_response)
