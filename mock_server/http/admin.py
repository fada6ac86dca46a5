"""The control plane under ``/__admin/``: how tests and scripts reach what the API can't.

Paths are fixed; tests depend on them. With an admin token configured, every call needs
the header ``X-Admin-Token``, checked once before any view.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from mock_server.core.errors import AdminForbidden, InvalidRequest, excerpt
from mock_server.http.context import backend_of, read_json_body, state_of
from mock_server.http.control import (
    ADMIN_HEADER,
    ADMIN_QUERY,
    ADMIN_ROOT,
    admin_token_matches,
    cookie_token,
)
from mock_server.http.event_stream import message_id, publish_time
from mock_server.http.parsing import agent_document, api_enabled, events_window, tenant_document
from mock_server.http.rendering import json_response
from schemas import project_version

admin = Blueprint("admin", __name__, url_prefix=ADMIN_ROOT)


HEALTH_ENDPOINT = "admin.health"
OPEN_ENDPOINTS = frozenset({HEALTH_ENDPOINT, "docs.get_admin_document"})
"""Open without the admin token: a health check (a container's, a load balancer's) holds no
secret and tells nothing but that the emulator serves; the control plane's document is the
published ``admin-openapi.yaml``, the same bytes for every emulator."""


COOKIE_ENDPOINTS = frozenset({"dashboard.page", "dashboard.asset"})
"""What a browser opens by address, with no header: the dashboard's page and its files accept
the admin token from its cookie (``ADMIN_COOKIE``), and the page from ``?admin-token=``. Every
call the page then makes sends the header, so another site's form can change nothing."""


@admin.before_app_request
def require_admin_token() -> None:
    """Checked for every path under ``/__admin`` before routing answers, so that without the
    token an unknown path or method is the same 403 as a known one: the route map stays hidden."""
    expected = state_of().admin_token
    if expected is None or request.endpoint in OPEN_ENDPOINTS:
        return
    if request.path != ADMIN_ROOT and not request.path.startswith(ADMIN_ROOT + "/"):
        return
    if admin_token_matches(expected, request.headers.get(ADMIN_HEADER)):
        return
    if request.endpoint in COOKIE_ENDPOINTS and request.method in ("GET", "HEAD"):
        given = request.args.get(ADMIN_QUERY) or cookie_token(request.headers.get("Cookie"))
        if admin_token_matches(expected, given):
            return
    raise AdminForbidden(f"The control plane needs a valid {ADMIN_HEADER} header.")


@admin.get("/health")
def health() -> Response:
    """200 once every worker answers and the state store can be read; 503 while some
    worker is still starting (or was lost and is being replaced)."""
    tenants = backend_of().tenant_ids()
    readiness = state_of().readiness
    ready, expected = (1, 1) if readiness is None else readiness()
    status = "ok" if ready >= expected else "starting"
    document = {
        "status": status,
        "version": project_version(),
        "tenants": len(tenants),
        "workers": {"ready": min(ready, expected), "expected": expected},
    }
    return json_response(document, status=200 if status == "ok" else 503)


RESET_SCOPES = ("state",)
"""What ``?only=`` may narrow a reset to; without it a reset clears everything."""


@admin.post("/reset")
def reset_all() -> Response:
    """Every tenant back to the fixture, and (unless ``?only=state``) every fault and the whole
    journal cleared: a clean slate for tests that share an emulator."""
    only = request.args.get("only")
    if only is not None and only not in RESET_SCOPES:
        scopes = ", ".join(RESET_SCOPES)
        raise InvalidRequest(f"only must be one of {scopes}, got {excerpt(only)}.")
    state = state_of()
    state.backend.reset()
    if only is None:
        for clear in state.reset_hooks:
            clear()
    return json_response({"reset": only or "all", "tenants": state.backend.tenant_ids()})


@admin.get("/tenants")
def list_tenants() -> Response:
    return json_response({"tenants": backend_of().tenant_ids()})


@admin.get("/tenants/<tenant_id>")
def get_tenant(tenant_id: str) -> Response:
    return json_response(backend_of().tenant_state(tenant_id))


@admin.put("/tenants/<tenant_id>")
def put_tenant(tenant_id: str) -> Response:
    created = backend_of().put_tenant(tenant_id, tenant_document(read_json_body(), tenant_id))
    return json_response(backend_of().tenant_state(tenant_id), status=201 if created else 200)


@admin.patch("/tenants/<tenant_id>")
def patch_tenant(tenant_id: str) -> Response:
    enabled = api_enabled(read_json_body())
    return json_response(backend_of().set_api_enabled(tenant_id, enabled))


@admin.delete("/tenants/<tenant_id>")
def delete_tenant(tenant_id: str) -> Response:
    backend_of().delete_tenant(tenant_id)
    return Response(status=204)


@admin.post("/tenants/<tenant_id>/reset")
def reset_tenant(tenant_id: str) -> Response:
    backend_of().reset(tenant_id)
    return json_response({"reset": tenant_id})


@admin.post("/tenants/<tenant_id>/token")
def rotate_token(tenant_id: str) -> Response:
    return json_response({"token": backend_of().rotate_token(tenant_id)})


@admin.get("/tenants/<tenant_id>/events")
def list_events(tenant_id: str) -> Response:
    """The tenant's event log as the streams carry it, after an event number: what a test
    reads to wait for an event without a WebSocket (``harness.events``)."""
    backend = backend_of()
    backend.tenant_state(tenant_id)  # 404 for a tenant that does not exist
    after, limit = events_window(request.args.get("after"), request.args.get("limit"))
    events = [
        {
            "sequence": event.sequence,
            "messageId": message_id(event.sequence),
            "publishTime": publish_time(event),
            "event": event.payload(),
        }
        for event in backend.events_after(tenant_id, after, limit)
    ]
    return json_response({"events": events, "last": backend.last_event(tenant_id)})


@admin.put("/tenants/<tenant_id>/agents/<agent_id>")
def put_agent(tenant_id: str, agent_id: str) -> Response:
    document = agent_document(read_json_body(), agent_id)
    agent, created = backend_of().put_agent(tenant_id, agent_id, document)
    return json_response(agent, status=201 if created else 200)


@admin.delete("/tenants/<tenant_id>/agents/<agent_id>")
def delete_agent(tenant_id: str, agent_id: str) -> Response:
    backend_of().delete_agent(tenant_id, agent_id)
    return Response(status=204)
