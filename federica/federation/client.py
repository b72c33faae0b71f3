"""Calls a peer's API over mutual TLS (an adapter: I/O only, given everything it needs).

It presents this facility's client certificate and trusts only the CA registered for the
peer it calls: a server whose certificate another CA issued is not that peer. The
server's name is checked against its certificate as usual.
"""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from federica.federation.agreement import API_VERSION

# Longest answer read from a peer (bytes): a peer cannot exhaust our memory.
MAX_RESPONSE = 4_000_000


class PeerError(Exception):
    """The peer could not be reached, was not who it should be, or refused."""

    def __init__(
        self, message: str, status: int | None = None, problem: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.http_status = status
        self.problem = problem or {}  # the peer's problem document, when it refused


def checked(data: Any) -> dict[str, Any]:
    """A peer's answer, if it is one of the version this facility speaks: a reader of an
    unknown version stops rather than guesses."""
    if not isinstance(data, dict):
        raise PeerError("the peer's answer is not a JSON object")
    if data.get("version") != API_VERSION:
        raise PeerError(
            f"the peer answered version {data.get('version')!r}; this facility speaks "
            f"{API_VERSION!r}"
        )
    return data


@dataclass(frozen=True)
class PeerClient:
    url: str
    ca_pem: str
    client_cert: Path
    client_key: Path
    timeout_s: float = 30.0

    def _context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_verify_locations(cadata=self.ca_pem)
        context.load_cert_chain(self.client_cert, self.client_key)
        return context

    def get(self, path: str) -> dict[str, Any]:
        return self.call("GET", path)

    def post(self, path: str, body: Any = None) -> dict[str, Any]:
        return self.call("POST", path, body)

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        parts = urlsplit(self.url)
        if parts.scheme != "https" or parts.hostname is None:
            raise PeerError(f"peer URL {self.url!r} is not https://host:port")
        conn = http.client.HTTPSConnection(
            parts.hostname, parts.port or 443, timeout=self.timeout_s, context=self._context()
        )
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, parts.path.rstrip("/") + path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read(MAX_RESPONSE + 1)
        except ssl.SSLError as exc:
            raise PeerError(f"TLS with the peer failed: {exc.reason or exc}") from None
        except OSError as exc:
            raise PeerError(f"peer unreachable: {exc}") from None
        finally:
            conn.close()
        if len(raw) > MAX_RESPONSE:
            raise PeerError("the peer's answer is too large")
        try:
            data = json.loads(raw)
        except ValueError:
            raise PeerError(f"the peer answered {response.status} with no JSON") from None
        if response.status >= 400:
            detail = data.get("detail") if isinstance(data, dict) else None
            raise PeerError(
                f"the peer refused ({response.status}): {detail}", response.status,
                data if isinstance(data, dict) else None,
            )  # fmt: skip
        return checked(data)

    def advertisement(self) -> dict[str, Any]:
        return self.get("/federation/v1/advertisement")

    def availability(self, start: str, end: str) -> dict[str, Any]:
        query = urlencode({"start": start, "end": end})
        return self.get(f"/federation/v1/availability?{query}")

    def find_slot(self, request: dict[str, Any], after: str | None = None) -> dict[str, Any]:
        query = f"?{urlencode({'after': after})}" if after else ""
        return self.post(f"/federation/v1/slots{query}", request)

    def check_identity(self, assertion: str) -> dict[str, Any]:
        return self.post("/federation/v1/identity", {"assertion": assertion})

    def hold(
        self, request_id: str, assertion: str, request: dict[str, Any], hold_seconds: int
    ) -> dict[str, Any]:
        body = {
            "request_id": request_id,
            "assertion": assertion,
            "request": request,
            "hold_seconds": hold_seconds,
        }
        return self.post("/federation/v1/bookings", body)

    def hold_stitched(
        self, request_id: str, assertion: str, request: dict[str, Any], hold_seconds: int,
        borders: list[dict[str, Any]],
    ) -> dict[str, Any]:  # fmt: skip
        """A hold whose circuits continue across the border (interdomain.py)."""
        body = {"request_id": request_id, "assertion": assertion, "request": request,
                "hold_seconds": hold_seconds, "borders": borders}  # fmt: skip
        return self.post("/federation/v1/stitched-bookings", body)

    def booking(self, request_id: str) -> dict[str, Any]:
        return self.get(f"/federation/v1/bookings/{quote(request_id, safe='')}")

    def commit(self, request_id: str) -> dict[str, Any]:
        return self.post(f"/federation/v1/bookings/{quote(request_id, safe='')}/commit")

    def abort(self, request_id: str) -> dict[str, Any]:
        return self.post(f"/federation/v1/bookings/{quote(request_id, safe='')}/abort")

    def alarms(self) -> dict[str, Any]:
        return self.get("/federation/v1/alarms")
