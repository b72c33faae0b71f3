"""The GENI AM API v3 endpoint: XML-RPC over mutual TLS (listener.py), one WSGI app.

Every answer is an XML-RPC methodResponse holding `{code, value, output}`, also for a
malformed call or an unknown method: GENI clients read codes, and treat a fault as a
broken aggregate. Only a bug of ours becomes SERVERERROR (logged with a reference)."""

from __future__ import annotations

import logging
import xml.parsers.expat
import xmlrpc.client
from collections.abc import Callable, Iterable
from typing import Any

from cryptography import x509

from federica.errors import correlation_id
from federica.geni.aggregate import Aggregate, Caller
from federica.geni.codes import Code, GeniError, answer, refusal
from federica.geni.credentials import urn_of

log = logging.getLogger(__name__)
# The WSGI environ key under which the listener puts the verified client certificate (DER).
GENI_CERT = "federica.geni_cert"

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def _calls(am: Aggregate) -> dict[str, tuple[int, int, Callable[..., dict[str, Any]]]]:
    """method -> (least, most arguments, handler(caller, *args))."""
    return {
        "GetVersion": (0, 1, am.get_version),
        "ListResources": (2, 2, am.list_resources),
        "Describe": (3, 3, am.describe),
        "Allocate": (4, 4, am.allocate),
        "Renew": (4, 4, am.renew),
        "Provision": (3, 3, am.provision),
        "Status": (3, 3, am.status),
        "PerformOperationalAction": (4, 4, am.perform_operational_action),
        "Delete": (3, 3, am.delete),
        "Shutdown": (3, 3, am.shutdown_slice),
    }


def create_geni_app(
    am: Aggregate, max_bytes: int
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    calls = _calls(am)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            start_response(
                "405 Method Not Allowed", [("Allow", "POST"), ("Content-Type", "text/plain")]
            )
            return [b"the GENI AM API is XML-RPC: POST a methodCall\n"]
        result = _handle(environ, calls, am, max_bytes)
        body = xmlrpc.client.dumps((result,), methodresponse=True, allow_none=False).encode()
        start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
        return [body]

    return app


def _handle(
    environ: dict[str, Any],
    calls: dict[str, tuple[int, int, Callable[..., dict[str, Any]]]],
    am: Aggregate,
    max_bytes: int,
) -> dict[str, Any]:
    try:
        caller = _caller(environ)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > max_bytes:
            raise GeniError(Code.TOOBIG, f"the call is larger than {max_bytes} bytes")
        body = environ["wsgi.input"].read(length) if length else b""
        try:
            params, method = xmlrpc.client.loads(body, use_builtin_types=True)
        except (
            xml.parsers.expat.ExpatError,
            ValueError,
            TypeError,
            xmlrpc.client.ResponseError,
        ) as exc:
            raise GeniError(Code.BADARGS, f"not an XML-RPC methodCall: {exc}") from None
        if method not in calls:
            raise GeniError(
                Code.UNSUPPORTED, f"no method {str(method)[:60]!r}; AM API v3: {', '.join(calls)}"
            )
        least, most, handler = calls[method]
        if not least <= len(params) <= most:
            takes = str(least) if least == most else f"{least} to {most}"
            raise GeniError(Code.BADARGS, f"{method} takes {takes} arguments, not {len(params)}")
        return handler(caller, *params)
    except GeniError as exc:
        return refusal(exc)
    except Exception:
        ref = correlation_id()
        log.exception("GENI call failed [ref %s]", ref)
        return answer("", f"the aggregate failed (reference {ref})", Code.SERVERERROR)


def _caller(environ: dict[str, Any]) -> Caller:
    der = environ.get(GENI_CERT)
    if not der:
        raise GeniError(Code.FORBIDDEN, "no client certificate")
    cert = x509.load_der_x509_certificate(der)
    urn = urn_of(cert)
    if urn is None:
        raise GeniError(Code.FORBIDDEN, "your certificate carries no GENI URN in subjectAltName")
    return Caller(cert, urn, str(environ.get("REMOTE_ADDR", "")))
