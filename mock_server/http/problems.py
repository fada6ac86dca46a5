"""The one renderer: every ``ApiError`` becomes Problem JSON (or the guide's XML 403), and
Werkzeug's routing and protocol errors and any unexpected exception become ``ApiError``s first,
so that no answer is ever an HTML page."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed as WerkzeugMethodNotAllowed

from mock_server.core.errors import (
    ApiError,
    ApiNotEnabled,
    InvalidRequest,
    MethodNotAllowed,
    PayloadTooLarge,
    RouteNotFound,
    TenantForbidden,
)
from mock_server.core.profiles import PROBLEM_MEDIA_TYPE, Profile
from mock_server.http.context import BODY_TOO_LARGE, MAX_BODY_BYTES, state_of
from mock_server.http.rendering import forbidden_xml_response, problem_response
from mock_server.http.request_ids import request_id_of
from schemas.wire import AGENTS, API_BASE, API_ROOT


def install_error_rendering(app: Flask) -> None:
    """Every error ``app`` raises or meets is answered by ``render_error``."""
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.register_error_handler(ApiError, render_error)
    app.register_error_handler(HTTPException, _translate_http_exception)
    app.register_error_handler(Exception, _unexpected_error)


def render_error(error: ApiError) -> Response:
    """``error`` answered for the request Flask is serving (``error_response``)."""
    return error_response(
        error,
        state_of().backend.profile,
        request_id_of(request.environ),
        on_api=request.path.startswith(API_ROOT),
    )


def error_response(error: ApiError, profile: Profile, request_id: str, *, on_api: bool) -> Response:
    """Problem JSON for every error, but the guide's XML body for its 403.

    On the API (every path under ``/api/``, routed or not) it is sent in the profile's
    ``error_media_type``; the control plane and the documents are the emulator's own, and
    their document says ``application/problem+json`` whatever the profile.
    """
    xml = isinstance(error, ApiNotEnabled) or (
        isinstance(error, TenantForbidden) and profile.tenant_forbidden_xml
    )
    if xml:
        response = forbidden_xml_response()
    else:
        response = problem_response(
            int(error.status),
            error.detail,
            request_id,
            profile.error_media_type if on_api else PROBLEM_MEDIA_TYPE,
        )
    response.headers.update(error.headers)
    return response


def route_not_found(method: str, path: str) -> RouteNotFound:
    return RouteNotFound(
        f"No operation at {method} {path}. The API lives under {API_BASE}{AGENTS}."
    )


def method_not_allowed(method: str, path: str, valid_methods: Iterable[str]) -> MethodNotAllowed:
    """``Allow`` lists every method of the path; the message only those a caller would use."""
    valid = list(valid_methods)
    shown = sorted(m for m in valid if m not in ("HEAD", "OPTIONS"))
    return MethodNotAllowed(
        f"{method} {path} is not supported; this path accepts {', '.join(shown)}.",
        allowed=valid,
    )


UNEXPECTED = "The emulator failed unexpectedly: {}."


def _translate_http_exception(error: HTTPException) -> Response:
    """Routing and protocol errors from Werkzeug, rendered like every other error."""
    translated: ApiError
    if isinstance(error, WerkzeugMethodNotAllowed):
        translated = method_not_allowed(request.method, request.path, error.valid_methods or [])
    elif error.code == 404:
        translated = route_not_found(request.method, request.path)
    elif error.code == 413:
        translated = PayloadTooLarge(BODY_TOO_LARGE)
    elif error.code == 400:
        translated = InvalidRequest(f"The request could not be read: {error.description}")
    else:
        translated = ApiError(error.description or "The request failed.")
        translated.status = error.code or 500
    return render_error(translated)


def _unexpected_error(error: Exception) -> Response:
    """A bug in the emulator: logged, and still answered as Problem JSON, never HTML."""
    current_app.logger.exception("unexpected error on %s %s", request.method, request.path)
    return render_error(ApiError(UNEXPECTED.format(type(error).__name__)))
