"""The contract, served: the API's OpenAPI document and the control plane's, bundled.

``GET /openapi.json`` needs no credentials: it is what a tool (Schemathesis, a code generator,
``python -m schemas validate``) starts from. The document follows the emulator's profile, so
it never promises a method or a body the running emulator does not have.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from flask import Blueprint, Response, request

from mock_server.context import backend_of
from mock_server.profiles import PROBLEM_MEDIA_TYPE, Profile
from mock_server.responses import API_PREFIX, json_response
from schemas.documents import ADMIN_DOCUMENT, API_DOCUMENT, bundle

API_SERVER_PATH = API_PREFIX.split("/tenants/")[0]
BULK_PATH = "/tenants/{tenantId}/agentstatus/agents/bulk"
SINGLE_PATH = "/tenants/{tenantId}/agentstatus/agents/{agentId}"

docs = Blueprint("docs", __name__)


def api_document(profile: Profile) -> dict[str, Any]:
    """openapi.yaml, bundled, narrowed to what this profile does where the vendors disagree."""
    return copy.deepcopy(_api_document(profile))


def admin_document() -> dict[str, Any]:
    """admin-openapi.yaml, bundled."""
    return bundle(ADMIN_DOCUMENT)


@cache
def _api_document(profile: Profile) -> dict[str, Any]:
    document = bundle(API_DOCUMENT)
    bulk = document["paths"][BULK_PATH]
    for method in ("post", "put"):
        if method.upper() not in profile.bulk_methods:
            del bulk[method]
    if not profile.single_success_body:
        drop_single_success_body(document)
    if profile.error_media_type != PROBLEM_MEDIA_TYPE:
        retype_errors(document, profile.error_media_type)
    return document


def retype_errors(document: dict[str, Any], media_type: str) -> None:
    """Declare every Problem JSON response of a bundled API document as ``media_type``."""
    responses: list[dict[str, Any]] = list(
        document.get("components", {}).get("responses", {}).values()
    )
    for path_item in document["paths"].values():
        for method, operation in path_item.items():
            if method != "parameters":
                responses.extend(operation.get("responses", {}).values())
    for response in responses:
        content = response.get("content", {})
        if PROBLEM_MEDIA_TYPE in content:
            content[media_type] = content.pop(PROBLEM_MEDIA_TYPE)


def drop_single_success_body(document: dict[str, Any]) -> None:
    """Narrow a bundled API document to the reference's single set: a 200 with no body."""
    success = document["paths"][SINGLE_PATH]["put"]["responses"]["200"]
    del success["content"]
    success["description"] = "The status was changed; no body (as the reference describes)."


@docs.get("/openapi.json")
def get_api_document() -> Response:
    document = api_document(backend_of().profile)
    here = {"url": request.host_url.rstrip("/") + API_SERVER_PATH, "description": "This emulator"}
    document["servers"] = [here, *document["servers"]]
    return json_response(document)


@docs.get("/__admin/openapi.json")
def get_admin_document() -> Response:
    return json_response(admin_document())
