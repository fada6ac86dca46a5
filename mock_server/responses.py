"""The four Agent Status API operations: each view is one backend call and its rendering.

Authentication runs once, in the blueprint's ``before_request``, before any view.
View names are the vendor's operation ids.
"""

from __future__ import annotations

import base64
import uuid
from http import HTTPStatus
from typing import Any

import orjson
from flask import Blueprint, Response, request
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import BaseConverter

from mock_server.context import backend_of, read_json_body
from mock_server.errors import ApiNotEnabled, AuthenticationFailed
from mock_server.models import BulkOutcome

API_PREFIX = "/api/v1/tenants/<tenant_id>/agentstatus"
PROBLEM_MIMETYPE = "application/problem+json"
REQUEST_ID_HEADER = "X-Request-Id"
SUCCESS_BODY = {"reason": "OK", "change-status": 200, "message": "Agent status change successful"}
FAILURE_MESSAGE = "Agent status change failed"


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def problem_response(status: int, detail: str, request_id: str) -> Response:
    """The one RFC 7807 body every error is answered with; ``instance`` and ``X-Request-Id``
    carry the same id, so a client can quote either."""
    response = json_response(
        {
            "type": "about:blank",
            "title": _phrase(status),
            "status": status,
            "detail": detail,
            "instance": f"urn:uuid:{uuid.UUID(request_id)}",
        },
        status=status,
    )
    response.mimetype = PROBLEM_MIMETYPE
    response.headers[REQUEST_ID_HEADER] = request_id
    return response


def forbidden_xml_response() -> Response:
    """The guide's 403 with its XML body, the only 403 the guide shows."""
    return Response(ApiNotEnabled.XML_BODY, status=403, mimetype="application/xml")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def basic_credentials(header: str | None) -> tuple[str, str]:
    """Username and token from an ``Authorization: Basic …`` header, or a precise 401."""
    if not header:
        raise AuthenticationFailed(
            "The Authorization header is missing; use HTTP Basic with the tenant's username "
            "and action token."
        )
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise AuthenticationFailed("The Authorization header must use the Basic scheme.")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except ValueError:  # bad base64, non-ASCII text or invalid UTF-8
        raise AuthenticationFailed(
            "The Basic credentials are not valid base64 of 'username:token'."
        ) from None
    username, colon, token = decoded.partition(":")
    if not colon:
        raise AuthenticationFailed("The Basic credentials must have the form 'username:token'.")
    return username, token


def basic_authorization(username: str, token: str) -> str:
    """The ``Authorization`` value ``basic_credentials`` reads back as (username, token)."""
    encoded = base64.b64encode(f"{username}:{token}".encode()).decode("ascii")
    return f"Basic {encoded}"


def authorize() -> None:
    tenant_id = (request.view_args or {})["tenant_id"]
    username, token = basic_credentials(request.headers.get("Authorization"))
    backend_of().authorize(tenant_id, username, token)


def getagentsstatus(tenant_id: str) -> Response:
    body = backend_of().list_agents_json(
        tenant_id,
        group_id=request.args.get("groupId"),
        page_size=request.args.get("pageSize"),
        page_index=request.args.get("pageIndex"),
    )
    return Response(body, mimetype="application/json")


def getagentstatus(tenant_id: str, agent_id: str) -> Response:
    return json_response(backend_of().get_agent(tenant_id, agent_id))


def setagentstatus(tenant_id: str, agent_id: str) -> Response:
    backend = backend_of()
    backend.set_agent_status(tenant_id, agent_id, read_json_body())
    if backend.profile.single_success_body:
        return json_response(SUCCESS_BODY)
    return Response(status=200)


def setagentsstatuses(tenant_id: str) -> Response:
    backend = backend_of()
    outcomes = backend.set_agents_statuses(tenant_id, read_json_body())
    with_message = backend.profile.bulk_result_message
    return json_response({"data": [_bulk_result(o, with_message) for o in outcomes]}, status=207)


def _bulk_result(outcome: BulkOutcome, with_message: bool) -> dict[str, Any]:
    result: dict[str, Any] = {
        "agent-id": outcome.agent_id,
        "reason": outcome.reason,
        "change-status": outcome.change_status,
    }
    if with_message:
        result["message"] = (
            SUCCESS_BODY["message"] if outcome.change_status == 200 else FAILURE_MESSAGE
        )
    return result


class ReadableAgentId(BaseConverter):
    """An agent id to read: any segment but ``bulk``, so ``GET .../agents/bulk`` is the bulk path
    answering 405, as the OpenAPI document (a concrete path before a template) says."""

    regex = r"(?!bulk$)[^/]+"


def _register_converters(state: BlueprintSetupState) -> None:
    state.app.url_map.converters["readable_agent_id"] = ReadableAgentId


def api_blueprint(bulk_methods: tuple[str, ...]) -> Blueprint:
    """The API's routes; the bulk methods come from the profile (guide PUT, reference POST).

    A PUT to ``.../agents/bulk`` without a bulk PUT is a single set of agent ``bulk`` (404), as
    the vendor's routing does in the 'reference' profile.
    """
    api = Blueprint("api", __name__, url_prefix=API_PREFIX)
    api.record_once(_register_converters)
    api.before_request(authorize)
    api.add_url_rule("/agents", view_func=getagentsstatus, methods=["GET"])
    api.add_url_rule("/agents/bulk", view_func=setagentsstatuses, methods=list(bulk_methods))
    api.add_url_rule(
        "/agents/<readable_agent_id:agent_id>", view_func=getagentstatus, methods=["GET"]
    )
    api.add_url_rule("/agents/<agent_id>", view_func=setagentstatus, methods=["PUT"])
    return api
