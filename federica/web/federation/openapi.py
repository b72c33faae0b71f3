"""The peer API's part of the OpenAPI document: its paths, served on the federation
listener (mutual TLS), and the schema of what they answer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FacilityRef(_Strict):
    name: str
    authority: str
    urn: str


class VNodeClass(_Strict):
    class_: str = Field(alias="class")  # "class" is a Python keyword
    cpu_cores: int
    ram_mb: int
    count: int


class Capacity(_Strict):
    vnodes: int
    cpu_cores: int
    ram_mb: int


class AdvertisedPop(_Strict):
    name: str
    country: str
    role: str
    vnode_classes: list[VNodeClass]
    capacity: Capacity


class VlanRange(_Strict):
    min: int
    max: int


class AdvertisedBorder(_Strict):
    port: str
    pop: str
    speed_mbps: int
    vlans: VlanRange
    peer_port: str | None


class Advertisement(_Strict):
    version: str
    facility: FacilityRef
    peer: str
    form: str
    operations: list[str]
    generated_at: str
    pops: list[AdvertisedPop]
    border_ports: list[AdvertisedBorder]


PEER_SECURITY = {
    "peerCertificate": {
        "type": "mutualTLS",
        "description": "A client certificate issued by the CA registered for the calling "
        "peer (served on the federation port only)",
    }
}


def parts() -> tuple[dict[str, Any], dict[str, Any]]:
    """(paths, schemas) of the peer API."""
    _, top = models_json_schema(
        [(Advertisement, "serialization")], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = top.get("$defs", {})
    paths = {
        "/federation/v1/advertisement": {
            "get": {
                "operationId": "federation_advertisement",
                "summary": "What this facility offers the calling peer (never more than "
                "its agreement grants)",
                "tags": ["federation"],
                "security": [{"peerCertificate": []}],
                "responses": {
                    "200": {
                        "description": "The advertisement",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Advertisement"}
                            }
                        },
                    },
                    "default": {
                        "description": "A problem document",
                        "content": {
                            "application/problem+json": {
                                "schema": {"$ref": "#/components/schemas/Problem"}
                            }
                        },
                    },
                },
            }
        }
    }
    return paths, schemas
