"""The dashboard's routes: the page, its two files, and one call the page cannot make itself,
a status change through the public API signed with the tenant's own credentials (the page
never holds the tenant's token)."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.datastructures import Headers
from werkzeug.test import EnvironBuilder

from mock_server.core.errors import InvalidRequest, RouteNotFound
from mock_server.http.context import RAW_BODY_KEY, backend_of, read_json_body, state_of
from mock_server.http.control import (
    ADMIN_COOKIE,
    ADMIN_HEADER,
    ADMIN_QUERY,
    ADMIN_ROOT,
    DASHBOARD_PATH,
    DASHBOARD_STREAM,
)
from mock_server.http.rendering import json_response
from mock_server.testdouble.middleware import DEFER_LATENCY_KEY, LatencyDeferred
from schemas.rules import AgentStatus
from schemas.wire import API_BASE, BULK_SEGMENT, agent_path, basic_authorization

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


PENDING_KEY = "agentstatus.dashboard.pending"
"""Where the view leaves the API call a fault's latency deferred (``LatencyDeferred``), for
``DeferredAnswers`` to hand to the server."""
RESUMED_KEY = "agentstatus.dashboard.resumed"
"""Where ``DeferredAnswers`` puts the deferred call's answer when the view runs again."""


@dashboard.post("/tenants/<tenant_id>/agents/<agent_id>/status")
def set_status_through_api(tenant_id: str, agent_id: str) -> Response:
    """The body, sent as it came as the public API's single set for this agent with the
    tenant's credentials, through the whole emulator (its rules, the 403 gate, faults and
    journal); the API's answer comes back as ``status``, ``content-type`` and ``body`` (text).
    A fault's latency is waited out as the server waits out the API's own (not in its loop)."""
    resumed = request.environ.get(RESUMED_KEY)
    if isinstance(resumed, dict):
        return json_response(resumed)
    body = read_json_body()
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object: the API call's body.")
    backend = backend_of()
    if agent_id == BULK_SEGMENT and "PUT" in backend.profile.bulk_methods:
        raise RouteNotFound(
            f"No single set for an agent {BULK_SEGMENT!r}: this profile's "
            f"PUT .../agents/{BULK_SEGMENT} is the bulk set."
        )
    username, token = backend.api_credentials(tenant_id)
    raw = request.environ.get(RAW_BODY_KEY)  # the bytes as sent: the API judges them itself
    environ = EnvironBuilder(
        method="PUT",
        path=API_BASE + agent_path(tenant_id, agent_id),
        data=raw if isinstance(raw, bytes) else _encoded(body),
        content_type="application/json",
        headers=Headers({"Authorization": basic_authorization(username, token)}),
    ).get_environ()
    if request.environ.get(DEFER_LATENCY_KEY):
        environ[DEFER_LATENCY_KEY] = True
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        answer["status"] = int(status.split(" ", 1)[0])
        answer["content-type"] = next(
            (value for name, value in headers if name.lower() == "content-type"), None
        )
        return _no_write

    def finish(run: Callable[[], Iterable[bytes]]) -> dict[str, Any]:
        try:
            text = b"".join(run()).decode("utf-8", "replace")
        except ConnectionResetError:
            return {"status": 0, "content-type": None, "body": DROPPED}
        return {**answer, "body": text}

    app = current_app.wsgi_app
    try:
        return json_response(finish(lambda: app(environ, start_response)))
    except LatencyDeferred as deferred:
        resume = deferred.resume  # the name ``deferred`` ends with this block
        request.environ[PENDING_KEY] = LatencyDeferred(
            deferred.seconds, lambda: [orjson.dumps(finish(resume))]
        )
        return Response(status=204)  # not sent: DeferredAnswers answers after the wait


def _encoded(body: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError as error:
        raise InvalidRequest(f"The request body cannot be sent on: {error}.") from None


DROPPED = "The API dropped the connection (a fault)."


def _no_write(data: bytes) -> None:
    raise RuntimeError("the emulator's app never uses start_response's write()")


class DeferredAnswers:
    """Around the Flask app: a dashboard call whose API call a fault's latency deferred is
    handed to the server as ``LatencyDeferred`` (what it was not sent is dropped), and when
    the server has waited, the view runs again with the API's answer (``RESUMED_KEY``)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not environ.get(DEFER_LATENCY_KEY):
            return self.app(environ, start_response)
        started: list[tuple[Any, ...]] = []

        def held(*args: Any) -> Callable[[bytes], object]:
            started.append(args)
            return _no_write

        chunks = self.app(environ, held)
        pending = environ.pop(PENDING_KEY, None)
        if not isinstance(pending, LatencyDeferred):
            start_response(*started[-1])
            return chunks
        close = getattr(chunks, "close", None)
        if close is not None:
            close()

        def resume() -> Iterable[bytes]:
            environ[RESUMED_KEY] = orjson.loads(b"".join(pending.resume()))
            return self.app(environ, start_response)

        raise LatencyDeferred(pending.seconds, resume)


def install_dashboard(app: Flask) -> None:
    app.register_blueprint(dashboard)
    app.wsgi_app = DeferredAnswers(app.wsgi_app)  # type: ignore[method-assign]
