"""The OpenAPI documents: valid, faithful to the vendor's reference, served self-contained,
and describing exactly the routes the emulator has (no more, no fewer)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from openapi_spec_validator import validate
from support_contract import official_document, operations, parameters

from mock_server import create_app
from mock_server.app import api_of
from mock_server.core.profiles import PROFILES
from mock_server.http.control import DASHBOARD_STREAM
from mock_server.http.validation import openapi_path
from schemas import load_schema
from schemas.documents import ADMIN_DOCUMENT, API_DOCUMENT, bundle
from schemas.wire import API_BASE, BULK

AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}


def served(app: Flask, path: str) -> dict[str, Any]:
    response = app.test_client().get(path)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document: dict[str, Any] = response.get_json()
    return document


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [
            *([node["$ref"]] if isinstance(node.get("$ref"), str) else []),
            *(ref for value in node.values() for ref in refs(value)),
        ]
    if isinstance(node, list):
        return [ref for value in node for ref in refs(value)]
    return []


def resolves(document: dict[str, Any], reference: str) -> bool:
    target: Any = document
    for part in reference.removeprefix("#/").split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, dict) or key not in target:
            return False
        target = target[key]
    return True


@pytest.mark.parametrize("name", [API_DOCUMENT, ADMIN_DOCUMENT])
def test_bundled_documents_are_valid_openapi_3_1(name: str) -> None:
    document = bundle(name)
    assert document["openapi"].startswith("3.1")
    validate(document)


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("path", ["/openapi.json", "/__admin/openapi.json"])
def test_served_documents_are_valid_and_self_contained(profile: str, path: str) -> None:
    document = served(create_app(profile=profile, validate_responses=True), path)
    validate(document)
    references = refs(document)
    assert references
    assert [ref for ref in references if not ref.startswith("#/")] == []
    assert [ref for ref in references if not resolves(document, ref)] == []


def test_servers_are_the_vendors_platforms() -> None:
    assert load_schema(API_DOCUMENT)["servers"] == official_document()["servers"]
    assert len(official_document()["servers"]) == 43


def test_served_document_names_the_emulator_first_then_the_vendors_servers() -> None:
    document = served(create_app(), "/openapi.json")
    assert document["servers"][0]["url"] == f"http://localhost{API_BASE}"
    assert document["servers"][1:] == official_document()["servers"]


def test_every_vendor_operation_parameter_and_status_is_described() -> None:
    ours, vendor = load_schema(API_DOCUMENT), official_document()
    our_operations = operations(ours)
    for (method, path), operation in operations(vendor).items():
        assert (method, path) in our_operations, f"{method} {path}"
        mine = our_operations[(method, path)]
        assert mine["operationId"] == operation["operationId"]
        assert parameters(vendor, path, method) <= parameters(ours, path, method)
        vendor_codes = {code for code in operation["responses"] if code.isdigit()}
        assert vendor_codes <= set(mine["responses"]), f"{method} {path}"


def test_operation_ids_cover_both_bulk_methods() -> None:
    ids = {op["operationId"] for op in operations(load_schema(API_DOCUMENT)).values()}
    assert ids == {
        "getagentsstatus",
        "getagentstatus",
        "setagentstatus",
        "setagentsstatuses",
        "setagentsstatusesput",
    }


def test_emulator_statuses_are_declared_with_their_media_types_and_headers() -> None:
    document = bundle(API_DOCUMENT)
    responses = document["components"]["responses"]
    put = operations(document)[("PUT", "/tenants/{tenantId}/agentstatus/agents/{agentId}")]
    assert {"200", "400", "401", "403", "404", "413", "415", "500"} <= set(put["responses"])
    assert set(responses["Forbidden"]["content"]) == {"application/problem+json", "application/xml"}
    assert "WWW-Authenticate" in responses["Unauthorized"]["headers"]
    assert "Allow" in responses["MethodNotAllowed"]["headers"]
    for name, response in responses.items():
        assert "X-Request-Id" in response["headers"], name
    assert document["components"]["securitySchemes"]["BasicAuth"] == {
        **document["components"]["securitySchemes"]["BasicAuth"],
        "type": "http",
        "scheme": "basic",
    }


def test_links_chain_get_to_set_to_get() -> None:
    document = bundle(API_DOCUMENT)
    found = operations(document)
    by_id = {op["operationId"]: op for op in found.values()}
    get_links = by_id["getagentstatus"]["responses"]["200"]["links"]
    set_links = by_id["setagentstatus"]["responses"]["200"]["links"]
    assert {link["operationId"] for link in get_links.values()} == {"setagentstatus"}
    assert {link["operationId"] for link in set_links.values()} == {"getagentstatus"}
    for link in [*get_links.values(), *set_links.values()]:
        assert set(link["parameters"]) == {"tenantId", "agentId"}


def registered_routes(app: Flask) -> set[tuple[str, str]]:
    """Flask's routes (the emulator's own paths) and the API's (``api_of``)."""
    own = {
        (method, openapi_path(rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in (rule.methods or set()) - AUTOMATIC_METHODS
    }
    api = {
        (method, API_BASE + route.template)
        for route in api_of(app).routes
        for method in route.methods
    }
    feed = {("GET", DASHBOARD_STREAM)}  # a WebSocket, answered by http.streams, not Flask
    return own | api | feed


def documented_routes(app: Flask) -> set[tuple[str, str]]:
    api = {(method, API_BASE + path) for method, path in operations(served(app, "/openapi.json"))}
    return api | set(operations(served(app, "/__admin/openapi.json")))


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_documents_describe_exactly_the_registered_routes(profile: str) -> None:
    app = create_app(profile=profile)
    assert registered_routes(app) == documented_routes(app)


def test_each_profile_documents_its_own_bulk_methods() -> None:
    bulk = API_BASE + BULK
    methods = {
        name: {m for m, path in documented_routes(create_app(profile=name)) if path == bulk}
        for name in PROFILES
    }
    assert methods == {"default": {"POST", "PUT"}, "guide": {"PUT"}, "reference": {"POST"}}


def test_reference_profile_documents_no_single_set_body() -> None:
    single = "/tenants/{tenantId}/agentstatus/agents/{agentId}"
    bodies = {
        name: "content"
        in served(create_app(profile=name), "/openapi.json")["paths"][single]["put"]["responses"][
            "200"
        ]
        for name in PROFILES
    }
    assert bodies == {"default": True, "guide": True, "reference": False}


def test_documents_need_no_credentials_even_with_an_admin_token() -> None:
    client = create_app(admin_token="s3cret").test_client()
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/__admin/openapi.json").status_code == 200
    assert client.get("/__admin/tenants").status_code == 403
