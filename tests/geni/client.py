"""A Python 3 GENI AM API v3 client: XML-RPC over TLS with a client certificate, the
server checked against the facility's CA. What omni does, for the tests."""

from __future__ import annotations

import http.client
import ssl
import xmlrpc.client
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.geni.credentials import Holder

RSPEC_V3 = {"type": "GENI", "version": "3"}


class GeniClient:
    def __init__(
        self, url: str, holder: Holder, server_ca_pem: str, workdir: Path, chain: str = ""
    ) -> None:
        """chain: the PEM of the certificates between the holder's and a trust root (a
        GENI user certificate file carries its authority's, as omni's does)."""
        workdir.mkdir(parents=True, exist_ok=True)
        cert, key = workdir / "client.pem", workdir / "client.key"
        cert.write_text(holder.cert_pem + chain)
        key.write_text(holder.key_pem)
        key.chmod(0o600)
        self.url = url
        self.holder = holder
        self.tls = ssl.create_default_context(cadata=server_ca_pem)
        self.tls.load_cert_chain(cert, key)
        self.proxy = xmlrpc.client.ServerProxy(url, context=self.tls)

    def call(self, method: str, *args: Any) -> dict[str, Any]:
        answer: dict[str, Any] = getattr(self.proxy, method)(*args)
        return answer

    def raw(self, body: bytes) -> dict[str, Any]:
        """POSTs `body` as it is (malformed calls) and reads the answer."""
        parts = urlsplit(self.url)
        conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, context=self.tls)
        try:
            conn.request("POST", "/", body=body, headers={"Content-Type": "text/xml"})
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        (answer,), _ = xmlrpc.client.loads(data)
        assert isinstance(answer, dict)
        return answer

    # The calls, as omni names them.
    def get_version(self) -> dict[str, Any]:
        return self.call("GetVersion", {})

    def list_resources(self, creds: list[dict[str, str]], **options: Any) -> dict[str, Any]:
        return self.call("ListResources", creds, {"geni_rspec_version": RSPEC_V3} | options)

    def allocate(
        self, slice_urn: str, creds: list[dict[str, str]], rspec: str, **options: Any
    ) -> dict[str, Any]:
        return self.call("Allocate", slice_urn, creds, rspec, options)

    def describe(
        self, urns: list[str], creds: list[dict[str, str]], **options: Any
    ) -> dict[str, Any]:
        return self.call("Describe", urns, creds, {"geni_rspec_version": RSPEC_V3} | options)

    def provision(
        self, urns: list[str], creds: list[dict[str, str]], users: list[dict[str, Any]]
    ) -> dict[str, Any]:
        options = {"geni_rspec_version": RSPEC_V3, "geni_users": users}
        return self.call("Provision", urns, creds, options)

    def status(self, urns: list[str], creds: list[dict[str, str]]) -> dict[str, Any]:
        return self.call("Status", urns, creds, {})

    def action(self, urns: list[str], creds: list[dict[str, str]], action: str) -> dict[str, Any]:
        return self.call("PerformOperationalAction", urns, creds, action, {})

    def renew(self, urns: list[str], creds: list[dict[str, str]], when: str) -> dict[str, Any]:
        return self.call("Renew", urns, creds, when, {})

    def delete(self, urns: list[str], creds: list[dict[str, str]]) -> dict[str, Any]:
        return self.call("Delete", urns, creds, {})

    def shutdown(self, slice_urn: str, creds: list[dict[str, str]]) -> dict[str, Any]:
        return self.call("Shutdown", slice_urn, creds, {})


def sfa(xml: str) -> list[dict[str, str]]:
    return [{"geni_type": "geni_sfa", "geni_version": "3", "geni_value": xml}]


def code(answer: dict[str, Any]) -> int:
    value = answer["code"]["geni_code"]
    assert type(value) is int, answer  # an XML-RPC int, never a boolean
    return value
