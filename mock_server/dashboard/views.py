"""The dashboard's routes: the page, its two files, and one call the page cannot make itself,
a status change through the public API signed with the tenant's own credentials (the page
never holds the tenant's token)."""

from __future__ import annotations

import html
from importlib import resources
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.datastructures import Headers
from werkzeug.test import EnvironBuilder, run_wsgi_app

from mock_server.core.errors import InvalidRequest, RouteNotFound
from mock_server.http.context import backend_of, read_json_body, state_of
from mock_server.http.control import (
    ADMIN_COOKIE,
    ADMIN_HEADER,
    ADMIN_QUERY,
    ADMIN_ROOT,
    DASHBOARD_PATH,
    DASHBOARD_STREAM,
)
from mock_server.http.rendering import json_response
from schemas.rules import AgentStatus
from schemas.wire import API_BASE, agent_path, basic_authorization

dashboard = Blueprint("dashboard", __name__, url_prefix=DASHBOARD_PATH)

ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}
"""The page's files, by name, with their media types; nothing else is served."""
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
"""No script but the package's, no framing by another site, no address leaked onward."""


def _static(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def _settings() -> str:
    """What the page needs from the server, as a JSON data block: the status names (from the
    rules, not repeated in the script), the control plane's paths and its token."""
    settings = {
        "statuses": {str(status.value): status.name for status in AgentStatus},
        "adminRoot": ADMIN_ROOT,
        "adminHeader": ADMIN_HEADER,
        "adminToken": state_of().admin_token,
        "streamPath": DASHBOARD_STREAM,
        "dashboardPath": DASHBOARD_PATH,
    }
    # "<" escaped so that no value can close the script element.
    return orjson.dumps(settings).decode().replace("<", "\\u003c")


@dashboard.get("")
def page() -> Response:
    """The page. ``?admin-token=`` (checked before this view) becomes an ``HttpOnly`` cookie and
    leaves the address, so a reload needs nothing more."""
    if ADMIN_QUERY in request.args:
        moved = Response(status=303, headers={"Location": DASHBOARD_PATH})
        token = state_of().admin_token
        if token is not None:
            moved.set_cookie(
                ADMIN_COOKIE,
                token,
                path=ADMIN_ROOT,
                httponly=True,
                samesite="Strict",
                secure=request.is_secure,
            )
        moved.headers.update(SECURITY_HEADERS)
        return moved
    text = _static("index.html").replace("{{settings}}", _settings())
    text = text.replace("{{title}}", html.escape(f"Agent Status emulator on {request.host}"))
    return Response(text, mimetype="text/html", headers=SECURITY_HEADERS)


@dashboard.get("/assets/<name>")
def asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise RouteNotFound(f"No dashboard file {name!r}; there are {', '.join(sorted(ASSETS))}.")
    return Response(_static(name), mimetype=media_type, headers=SECURITY_HEADERS)


@dashboard.post("/tenants/<tenant_id>/agents/<agent_id>/status")
def set_status_through_api(tenant_id: str, agent_id: str) -> Response:
    """The body, sent as the public API's single set for this agent with the tenant's
    credentials, through the whole emulator (its rules, the 403 gate, faults and journal);
    the API's answer comes back as ``status``, ``content-type`` and ``body`` (text)."""
    body = read_json_body()
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object: the API call's body.")
    username, token = backend_of().api_credentials(tenant_id)
    environ = EnvironBuilder(
        method="PUT",
        path=API_BASE + agent_path(tenant_id, agent_id),
        data=orjson.dumps(body),
        content_type="application/json",
        headers=Headers({"Authorization": basic_authorization(username, token)}),
    ).get_environ()
    try:
        chunks, status, headers = run_wsgi_app(current_app.wsgi_app, environ, buffered=True)
        text = b"".join(chunks).decode("utf-8", "replace")
    except ConnectionResetError:
        return json_response(
            {"status": 0, "content-type": None, "body": "The API dropped the connection (a fault)."}
        )
    answer: dict[str, Any] = {
        "status": int(status.split(" ", 1)[0]),
        "content-type": headers.get("Content-Type"),
        "body": text,
    }
    return json_response(answer)


def install_dashboard(app: Flask) -> None:
    app.register_blueprint(dashboard)
