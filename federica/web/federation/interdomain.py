"""The peer API's stitched bookings: a hold whose circuits continue across the border
(federica/federation/interdomain.py). Commit and abort are the bookings' own
(`/bookings/{request_id}/commit|abort`)."""

from __future__ import annotations

from flask import Response, g, jsonify

from federica.federation import assertion as assertions
from federica.federation import guests, identity, interdomain
from federica.federation.agreement import Operation
from federica.web.context import ctx, read_session, write_session
from federica.web.federation import (
    _audit_done,
    _ensure_guest_project,
    _expire_holds,
    _granted,
    _json_body,
    _no_query,
    federation_api,
)


@federation_api.post("/stitched-bookings")
def hold_stitched() -> tuple[Response, int]:
    """Phase one of a booking with circuits across the border: as POST /bookings, and
    each of `borders` (circuit, node, this facility's border port, the tags offered)
    ends at that border port with a tag from the offered ones that is free here (409
    naming the port and the tags free here when none is)."""
    _no_query()
    _granted(Operation.BOOKING)
    _granted(Operation.IDENTITY)
    body = _json_body()
    peer = g.known.peer
    facility = identity.load(ctx().settings.data_dir)
    _expire_holds()
    _ensure_guest_project()
    if isinstance(body, dict):
        try:
            with read_session() as session:
                g.asserted = assertions.verify(session, body.get("assertion"), peer=peer,
                                               audience=facility.urn, now=ctx().now())  # fmt: skip
        except assertions.AssertionRefused:
            pass  # the hold below refuses it, naming why
    with write_session() as session:
        held, tags = interdomain.hold_stitched(
            session, ctx().settings, peer, body, audience=facility.urn, now=ctx().now()
        )
        answer = interdomain.describe(session, held.booking)
        slice_id, project = held.slice.id, held.slice.project
    answer["stitching"] = tags
    if held.created:
        _audit_done("federation.hold", 201, held.assertion,
                    {"request_id": answer["request_id"], "slice": answer["slice"]["name"],
                     "stitching": tags},
                    slice_id=slice_id, project=project)  # fmt: skip
    return jsonify(answer), 201 if held.created else 200


@federation_api.get("/stitched-bookings/<request_id>")
def show_stitched(request_id: str) -> Response:
    """A booking's state with its slice's state and each border circuit's tag and state
    (the home facility polls it while its part is built)."""
    _no_query()
    _granted(Operation.BOOKING)
    _expire_holds()
    with read_session() as session:
        booking = guests.get(session, g.known.peer, request_id)
        return jsonify(interdomain.describe(session, booking))
