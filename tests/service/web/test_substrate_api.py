from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from federica.context import Context
from tests.conftest import EXAMPLES
from tests.helpers import load_file

PROBLEM = "application/problem+json"


@pytest.fixture
def loaded(db: Context) -> Context:
    load_file(db, EXAMPLES / "topologies" / "federica.yaml")
    return db


@pytest.mark.usefixtures("loaded")
def test_substrate_summary(client: FlaskClient) -> None:
    r = client.get("/api/v1/substrate")
    assert r.status_code == 200
    body = r.get_json()
    assert len(body["pops"]) == 14 and len(body["links"]) == 20
    s = body["summary"]
    assert (s["core_pops"], s["core_links"], s["core_full_mesh"], s["all_pops_connected"]) == (
        4,
        6,
        True,
        True,
    )


@pytest.mark.usefixtures("loaded")
@pytest.mark.parametrize(
    ("section", "name", "field", "value"),
    [
        ("pops", "PRG", "country", "CZ"),
        ("devices", "mil-mx", "kind", "router"),
        ("links", "prg-erl", "capacity_mbps", 1000),
        ("hosts", "psn-v2", "cpu_cores", 8),
        ("peers", "gts", "name", "gts"),
    ],
)
def test_section_list_and_item(
    client: FlaskClient, section: str, name: str, field: str, value: object
) -> None:
    listing = client.get(f"/api/v1/substrate/{section}").get_json()
    assert name in [x["name"] for x in listing]
    item = client.get(f"/api/v1/substrate/{section}/{name}")
    assert item.status_code == 200 and item.get_json()[field] == value


@pytest.mark.usefixtures("loaded")
def test_unknown_item_is_a_problem_document(client: FlaskClient) -> None:
    r = client.get("/api/v1/substrate/devices/nope-mx")
    assert r.status_code == 404 and r.mimetype == PROBLEM
    body = r.get_json()
    assert body["status"] == 404 and "nope-mx" in body["detail"]
    assert body["instance"] == "/api/v1/substrate/devices/nope-mx"


def test_unknown_route_and_method_are_problem_documents(client: FlaskClient) -> None:
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.mimetype == PROBLEM
    r = client.delete("/api/v1/substrate")
    assert r.status_code == 405 and r.mimetype == PROBLEM


def test_empty_substrate(client: FlaskClient) -> None:
    body = client.get("/api/v1/substrate").get_json()
    assert body["pops"] == [] and body["summary"]["pops"] == 0
    assert body["summary"]["core_full_mesh"] is False


def test_openapi_documents_every_api_route(app: Flask, client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    documented = {
        (p, m.upper())
        for p, ops in doc["paths"].items()
        for m in ops
        # The peer API's and the datastore's own apps (their tests check their paths).
        if not p.startswith(("/federation/", "/info/", "/data/"))
    }
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1"):
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
            routes |= {(path, m) for m in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    assert routes == documented
    schemas = doc["components"]["schemas"]
    for path, ops in doc["paths"].items():
        if not path.startswith("/api/v1"):
            continue  # the peer API (its own listener) is checked by its own tests
        for op in ops.values():
            successes = [k for k in op["responses"] if k.startswith("2")]
            assert successes or "302" in op["responses"], op["operationId"]
            for status in successes:
                content = op["responses"][status]["content"]["application/json"]
                assert content["schema"]["$ref"].rsplit("/", 1)[1] in schemas
            # Every path parameter is declared, typed; ids are integers a database holds.
            params = op.get("parameters", [])
            declared = {p["name"]: p["schema"] for p in params if p["in"] == "path"}
            assert set(declared) == set(re.findall(r"{([^}]+)}", path)), (path, declared)
            for name, schema in declared.items():
                if name.endswith("_id"):
                    assert schema == {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
            for status in ("401", "404", "422", "default"):
                assert status in op["responses"], (op["operationId"], status)


def test_openapi_request_bodies_are_typed_models(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    members = doc["paths"]["/api/v1/projects/{name}/members/{username}"]["put"]
    assert [p["name"] for p in members["parameters"]] == ["name", "username"]
    user = schemas["UserRequest"]
    assert user["required"] == ["username"] and user["additionalProperties"] is False
    assert schemas["MaintenanceRequest"]["required"] == ["target_kind", "target", "end", "reason"]
    quota = schemas["QuotaRequest"]["properties"]["max_nodes"]["anyOf"][0]
    assert quota == {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
    # A body of optional fields only may be left out; one with required fields may not.
    assert doc["paths"]["/api/v1/tokens"]["post"]["requestBody"]["required"] is False
    assert doc["paths"]["/api/v1/users"]["post"]["requestBody"]["required"] is True
    # The dry run's 200 and the release's 202 are documented next to 201 and 200.
    assert {"200", "201"} <= set(doc["paths"]["/api/v1/slices"]["post"]["responses"])
    assert {"200", "202"} <= set(doc["paths"]["/api/v1/slices/{ref}/release"]["post"]["responses"])
    # Free text says what the strict input layer enforces: no control characters.
    assert "pattern" in user["properties"]["password"]["anyOf"][0]


def test_a_405_names_the_allowed_methods(client: FlaskClient) -> None:
    r = client.open("/api/v1/me", method="TRACE")
    assert r.status_code == 405 and r.mimetype == "application/problem+json"
    assert set(r.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "HEAD", "OPTIONS"}
    r = client.delete("/api/v1/substrate")
    assert r.status_code == 405 and "GET" in r.headers["Allow"]
