"""The contract, served: the API's OpenAPI document (narrowed to the emulator's profile by
``profile_document``) and the control plane's, bundled.

``GET /openapi.json`` needs no credentials: it is what a tool (Schemathesis, a code generator,
``python -m schemas validate``) starts from. Its first server is the emulator's own URL.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from mock_server.http.context import backend_of
from mock_server.http.control import ADMIN_ROOT
from mock_server.http.profile_document import profile_document
from mock_server.http.rendering import json_response
from schemas.documents import ADMIN_DOCUMENT, bundle
from schemas.wire import API_BASE

docs = Blueprint("docs", __name__)


def admin_document() -> dict[str, Any]:
    """admin-openapi.yaml, bundled."""
    return bundle(ADMIN_DOCUMENT)


@docs.get("/openapi.json")
def get_api_document() -> Response:
    document = profile_document(backend_of().profile)
    here = {"url": request.host_url.rstrip("/") + API_BASE, "description": "This emulator"}
    document["servers"] = [here, *document["servers"]]
    return json_response(document)


@docs.get(f"{ADMIN_ROOT}/openapi.json")
def get_admin_document() -> Response:
    return json_response(admin_document())
