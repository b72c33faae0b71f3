"""The peer API's part of the OpenAPI document: its paths, served on the federation
listener (mutual TLS), and the schema of what they answer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from federica.slices.request import SliceRequest


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


class HostFree(_Strict):
    host: str
    cpu_cores: int
    cpu_free: int
    ram_mb: int
    ram_free_mb: int
    blocked: str


class PopFree(_Strict):
    name: str
    hosts: list[HostFree]
    cpu_free: int
    ram_free_mb: int


class LinkFree(_Strict):
    a_pop: str
    b_pop: str
    capacity_mbps: int
    free_mbps: int
    blocked: str


class PeerAvailability(_Strict):
    version: str
    peer: str
    start: str
    end: str
    pops: list[PopFree]
    links: list[LinkFree]


class PeerSlot(_Strict):
    version: str
    peer: str
    start: str
    end: str


class IdentityCheck(_Strict):
    assertion: str = Field(
        max_length=8192, description="A compact JWS (ES256, x5c) the home facility signed"
    )


class GuestIdentity(_Strict):
    version: str
    user: str
    home: str
    guest_username: str
    guest_project: str
    expires_at: str


class HoldRequest(_Strict):
    request_id: str = Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")
    assertion: str = Field(max_length=8192)
    request: SliceRequest
    hold_seconds: int = Field(default=60, ge=1, le=600)


class GuestNode(_Strict):
    name: str
    pop: str
    v_node: str
    state: str
    interfaces: list[dict[str, Any]]


class GuestSlice(_Strict):
    id: int
    name: str
    status: str
    project: str | None
    start: str
    end: str
    access: dict[str, Any]
    nodes: list[GuestNode]
    failure_reason: str | None = Field(default=None, description="why it failed, if it did")


class GuestBookingAnswer(_Strict):
    version: str
    request_id: str
    state: str = Field(description="held, committed or aborted")
    hold_until: str
    user: str
    slice: GuestSlice


class BorderEndRequest(_Strict):
    circuit: str = Field(description="the circuit across the border (not in `request`)")
    node: str = Field(description="its node here (one of `request`'s)")
    port: str = Field(description="this facility's border port facing the caller, DEVICE:PORT")
    vlans: str = Field(
        pattern=r"^\d{1,4}(-\d{1,4})?(,\d{1,4}(-\d{1,4})?)*$",
        description="the border tags the caller can use, e.g. '3000-3049,3060'",
    )
    bandwidth_mbps: int = Field(default=100, ge=1, le=100_000)


class StitchedHoldRequest(HoldRequest):
    borders: list[BorderEndRequest] = Field(min_length=1, max_length=16)


class StitchedEnd(_Strict):
    circuit: str
    port: str
    vlan: int | None = Field(description="the border tag, the same at both ends of the border")
    node: str | None = None
    state: str | None = Field(default=None, description="the circuit's state here")


class StitchedBookingAnswer(GuestBookingAnswer):
    stitching: list[StitchedEnd]


class PeerAlarmSlice(_Strict):
    name: str
    request_id: str | None


class PeerAlarm(_Strict):
    kind: str
    subject: str
    detail: str
    raised_at: str
    border: bool = Field(description="on a border port facing the calling peer")
    slices: list[PeerAlarmSlice] = Field(description="the calling peer's guest slices touched")


class PeerAlarms(_Strict):
    version: str
    peer: str
    alarms: list[PeerAlarm]


class EStopRelayRequest(_Strict):
    reason: str = Field(min_length=1, max_length=500, description="why it was stopped")
    by: str = Field(min_length=1, max_length=128, description="who stopped it (at the caller)")


class GuestEStopAnswer(GuestBookingAnswer):
    stopped: bool = Field(description="false: it was not running (already shut down or over)")


class PartSlice(_Strict):
    name: str
    status: str


class PartEStopAnswer(_Strict):
    version: str
    request_id: str
    stopped: bool = Field(description="false: it was not running (already shut down or over)")
    slice: PartSlice


_PROBLEM = {
    "description": "A problem document",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def _op(
    op_id: str, summary: str, answer: str, *, body: str | None = None,
    query: tuple[str, ...] = (), path_param: bool = False, created: bool = False,
) -> dict[str, Any]:  # fmt: skip
    ok = {"description": "OK", "content": {"application/json": {"schema": {
        "$ref": f"#/components/schemas/{answer}"}}}}  # fmt: skip
    op: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "tags": ["federation"],
        "security": [{"peerCertificate": []}],
        "responses": {"200": ok, "default": _PROBLEM} | ({"201": ok} if created else {}),
    }
    params = [
        {"name": q, "in": "query", "required": q != "after",
         "schema": {"type": "string", "format": "date-time"}}
        for q in query
    ]  # fmt: skip
    if path_param:
        pattern = r"^[A-Za-z0-9_-]{8,64}$"
        params.append({"name": "request_id", "in": "path", "required": True,
                       "schema": {"type": "string", "pattern": pattern}})  # fmt: skip
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
            "$ref": f"#/components/schemas/{body}"}}}}  # fmt: skip
    return op


def parts() -> tuple[dict[str, Any], dict[str, Any]]:
    """(paths, schemas) of the peer API."""
    models: list[type[BaseModel]] = [Advertisement, PeerAvailability, PeerSlot, GuestIdentity,
                                     GuestBookingAnswer, PeerAlarms,
                                     StitchedBookingAnswer]  # fmt: skip
    models += [GuestEStopAnswer, PartEStopAnswer]
    _, top = models_json_schema(
        [(m, "serialization") for m in models]
        + [
            (m, "validation")
            for m in (IdentityCheck, HoldRequest, StitchedHoldRequest, EStopRelayRequest)
        ],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = top.get("$defs", {})
    booking = "/federation/v1/bookings/{request_id}"
    paths = {
        "/federation/v1/advertisement": {"get": _op(
            "federation_advertisement",
            "What this facility offers the calling peer (never more than its agreement grants)",
            "Advertisement")},
        "/federation/v1/availability": {"get": _op(
            "federation_availability",
            "What is free over a window at the PoPs the peer may see (operation availability)",
            "PeerAvailability", query=("start", "end"))},
        "/federation/v1/slots": {"post": _op(
            "federation_find_slot",
            "The earliest window a request (every node pinned to a PoP the peer may see) "
            "fits in; books nothing", "PeerSlot", body="SliceRequest", query=("after",))},
        "/federation/v1/identity": {"post": _op(
            "federation_identity",
            "Verify an identity assertion and say how its user maps here (uses it up)",
            "GuestIdentity", body="IdentityCheck")},
        "/federation/v1/bookings": {"post": _op(
            "federation_hold",
            "Phase one: book for the asserted user, held until commit, abort or timeout; "
            "repeating the same request id answers the same booking",
            "GuestBookingAnswer", body="HoldRequest", created=True)},
        "/federation/v1/stitched-bookings": {"post": _op(
            "federation_hold_stitched",
            "Phase one of a booking whose circuits continue across the border: as "
            "/bookings, each of `borders` ending at this facility's border port with a tag "
            "among those offered and free here (the same at both ends of the border); none: "
            "409 (no-common-vlan) with `hop` (the port) and `offered` and `free` (tags). "
            "Commit and abort: /bookings/{request_id}/commit|abort",
            "StitchedBookingAnswer", body="StitchedHoldRequest", created=True)},
        "/federation/v1/stitched-bookings/{request_id}": {"get": _op(
            "federation_stitched_booking",
            "A stitched booking: its slice's state (and why it failed) and each border "
            "circuit's tag and state (the home facility polls it while its part is built)",
            "StitchedBookingAnswer", path_param=True)},
        "/federation/v1/alarms": {"get": _op(
            "federation_alarms",
            "Open alarms on the border ports facing the peer and on its guests' slices "
            "(operation monitoring)", "PeerAlarms")},
        booking: {"get": _op("federation_booking", "A booking the peer holds here",
                             "GuestBookingAnswer", path_param=True)},
        booking + "/commit": {"post": _op(
            "federation_commit", "Phase two: the held booking stands (idempotent)",
            "GuestBookingAnswer", path_param=True)},
        booking + "/abort": {"post": _op(
            "federation_abort", "Phase two: the booking is released (idempotent)",
            "GuestBookingAnswer", path_param=True)},
    }  # fmt: skip
    paths |= _estop_paths(booking)
    return paths, schemas


def _estop_paths(booking: str) -> dict[str, Any]:
    """E-stop propagation (operation estop), both directions."""
    return {
        booking + "/estop": {"post": _op(
            "federation_estop_booking",
            "The calling peer (the slice's home) e-stopped its slice: its part here (this "
            "guest booking) is isolated at once; idempotent", "GuestEStopAnswer",
            body="EStopRelayRequest", path_param=True)},
        "/federation/v1/parts/{request_id}/estop": {"post": _op(
            "federation_estop_part",
            "The calling peer e-stopped our slice's part there (our request id): the slice "
            "is stopped here too; idempotent", "PartEStopAnswer", body="EStopRelayRequest",
            path_param=True)},
    }  # fmt: skip
