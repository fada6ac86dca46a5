"""The four Agent Status API operations: each view parses its request (``http.parsing``),
makes one backend call and renders the typed answer as JSON.

Authentication runs once, in the blueprint's ``before_request``, before any view. The routes
are the documents' paths (``schemas.wire``); view names are the vendor's operation ids and their
arguments the documents' path parameters (``tenantId``, ``agentId``). The views hold their
backend, and the lists and agents they rendered, per backend revision: a repeated read is a
dict lookup, and any write moves the revision, so nothing is served stale.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Response, request
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import BaseConverter

from mock_server.core.backend import AgentPage, AgentStatusBackend, BulkOutcome
from mock_server.core.caches import CACHED_ENTRIES, RevisionCache
from mock_server.http.auth import basic_credentials
from mock_server.http.context import read_json_body
from mock_server.http.parsing import bulk_changes, page_request, single_change
from mock_server.http.rendering import JSON_MIMETYPE, empty_response, json_response
from schemas.wire import AGENT, AGENTS, API_BASE, BULK, route_rule

SUCCESS_BODY = {"reason": "OK", "change-status": 200, "message": "Agent status change successful"}
SUCCESS_JSON = orjson.dumps(SUCCESS_BODY)
FAILURE_MESSAGE = "Agent status change failed"


def agents_json(listed: AgentPage) -> bytes:
    """The list's body: ``data``, and ``page`` (the reference's PageResult) when paged."""
    body: dict[str, Any] = {"data": [agent.to_api() for agent in listed.agents]}
    if listed.page is not None:
        body["page"] = {
            "pageSize": listed.page.size,
            "totalElements": listed.page.total_elements,
            "totalPages": listed.page.total_pages,
            "pageIndex": listed.page.index,
        }
    return orjson.dumps(body)


class AgentStatusViews:
    """The API's views over one backend, held here rather than looked up per request."""

    def __init__(self, backend: AgentStatusBackend) -> None:
        self.backend = backend
        self._lists: RevisionCache[str, bytes] = RevisionCache(CACHED_ENTRIES)
        """Whole agent lists (no group, no page) as JSON, per tenant."""
        self._agents: RevisionCache[tuple[str, str], bytes] = RevisionCache(CACHED_ENTRIES)
        """Single agents as JSON, per (tenant, agent)."""

    def authorize(self) -> None:
        """Runs before every view: a request that fails it reaches none."""
        tenant_id = (request.view_args or {})["tenantId"]
        username, token = basic_credentials(request.environ.get("HTTP_AUTHORIZATION"))
        self.backend.authorize(tenant_id, username, token)

    def getagentsstatus(self, tenantId: str) -> Response:
        """The query parameters read are the profile's: the others are ignored, as unknown."""
        profile, args = self.backend.profile, request.args
        group_id = args.get("groupId") if profile.group_filter else None
        page = (
            page_request(args.get("pageSize"), args.get("pageIndex"))
            if profile.pagination
            else None
        )
        if group_id is None and page is None:
            return Response(self._whole_list(tenantId), mimetype=JSON_MIMETYPE)
        listed = self.backend.list_agents(
            tenantId, None if group_id is None else group_id.strip(), page
        )
        return Response(agents_json(listed), mimetype=JSON_MIMETYPE)

    def _whole_list(self, tenant_id: str) -> bytes:
        revision = self.backend.revision()
        rendered = self._lists.get(revision, tenant_id)
        if rendered is None:
            rendered = agents_json(self.backend.list_agents(tenant_id))
            self._lists.put(revision, tenant_id, rendered)
        return rendered

    def getagentstatus(self, tenantId: str, agentId: str) -> Response:
        revision = self.backend.revision()
        rendered = self._agents.get(revision, (tenantId, agentId))
        if rendered is None:
            rendered = orjson.dumps(self.backend.get_agent(tenantId, agentId).to_api())
            self._agents.put(revision, (tenantId, agentId), rendered)
        return Response(rendered, mimetype=JSON_MIMETYPE)

    def setagentstatus(self, tenantId: str, agentId: str) -> Response:
        change = single_change(read_json_body(), self.backend.profile)
        self.backend.set_agent_status(tenantId, agentId, change)
        if self.backend.profile.single_success_body:
            return Response(SUCCESS_JSON, mimetype=JSON_MIMETYPE)
        return empty_response()

    def setagentsstatuses(self, tenantId: str) -> Response:
        changes = bulk_changes(read_json_body(), self.backend.profile)
        outcomes = self.backend.set_agents_statuses(tenantId, changes)
        with_message = self.backend.profile.bulk_result_message
        body = {"data": [_bulk_result(outcome, with_message) for outcome in outcomes]}
        return json_response(body, status=207)


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


def api_blueprint(backend: AgentStatusBackend) -> Blueprint:
    """The API's routes; the bulk methods come from the profile (guide PUT, reference POST).

    A PUT to ``.../agents/bulk`` without a bulk PUT is a single set of agent ``bulk`` (404), as
    the vendor's routing does in the 'reference' profile.
    """
    views = AgentStatusViews(backend)
    bulk_methods = list(backend.profile.bulk_methods)
    api = Blueprint("api", __name__, url_prefix=API_BASE)
    api.record_once(_register_converters)
    api.before_request(views.authorize)
    api.add_url_rule(route_rule(AGENTS), view_func=views.getagentsstatus, methods=["GET"])
    api.add_url_rule(route_rule(BULK), view_func=views.setagentsstatuses, methods=bulk_methods)
    api.add_url_rule(_readable(route_rule(AGENT)), view_func=views.getagentstatus, methods=["GET"])
    api.add_url_rule(route_rule(AGENT), view_func=views.setagentstatus, methods=["PUT"])
    return api


def _readable(rule: str) -> str:
    """``rule`` with its last segment, the agent id, read by ``ReadableAgentId``."""
    head, last = rule.rsplit("/", 1)
    return f"{head}/<readable_agent_id:{last.strip('<>')}>"
