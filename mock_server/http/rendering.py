"""Every body the emulator writes: JSON, RFC 7807 Problem JSON, the guide's XML 403, or none
(never Flask's default ``text/html``). ``problems`` decides which an error gets."""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import Any

import orjson
from flask import Response

from mock_server.core.profiles import PROBLEM_MEDIA_TYPE
from mock_server.http.request_ids import new_request_id
from schemas.wire import FORBIDDEN_XML, REQUEST_ID_HEADER

JSON_MIMETYPE = "application/json"


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype=JSON_MIMETYPE)


def problem_response(
    status: int,
    detail: str,
    request_id: str | None = None,
    media_type: str = PROBLEM_MEDIA_TYPE,
) -> Response:
    """The one RFC 7807 body every error is answered with; ``instance`` and ``X-Request-Id``
    carry the same id (the request's, or a new one), so a client can quote either.
    ``media_type`` is the profile's for the API (``Profile.error_media_type``)."""
    if request_id is None:
        request_id = new_request_id()
    response = Response(problem_body(status, detail, request_id), status=status)
    response.mimetype = media_type
    response.headers[REQUEST_ID_HEADER] = request_id
    return response


def problem_body(status: int, detail: str, request_id: str) -> bytes:
    """The RFC 7807 document itself, for a server layer that answers without the app."""
    return orjson.dumps(
        {
            "type": "about:blank",
            "title": _phrase(status),
            "status": status,
            "detail": detail,
            "instance": f"urn:uuid:{uuid.UUID(request_id)}",
        }
    )


def empty_response(status: int = 200) -> Response:
    """A response with no body and so no media type (not Flask's default ``text/html``)."""
    response = Response(status=status)
    del response.headers["Content-Type"]
    return response


def forbidden_xml_response() -> Response:
    """The guide's 403 with its XML body, the only 403 the guide shows."""
    return Response(FORBIDDEN_XML, status=403, mimetype="application/xml")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
