"""The four Agent Status API operations as one WSGI application, routed by the documents' paths
(``schemas.wire``): each view parses its request (``http.parsing``), makes one backend call and
renders the typed answer as JSON.

Every path under ``/api/`` reaches this application (``ApiRouter``), routed or not; Flask serves
the emulator's own paths. Flask's request context, routing and response objects were most of
what an API request cost (docs/serving.md), so the API keeps only what it needs of them:
routing as Werkzeug's does it (405 with ``Allow``, ``HEAD`` answered by ``GET``, ``OPTIONS``),
authentication once before any operation, and every error an ``ApiError`` rendered by the one
renderer (``http.problems.error_response``). The views hold the lists and agents they rendered
per backend revision: a repeated read is a dict lookup, and any write moves the revision, so
nothing is served stale.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
import werkzeug.urls  # noqa: F401  registers the "werkzeug.url_quote" codec error handler
from werkzeug.http import HTTP_STATUS_CODES

from mock_server.core.backend import AgentPage, AgentStatusBackend, BulkOutcome
from mock_server.core.caches import CACHED_ENTRIES, RevisionCache
from mock_server.core.errors import ApiError
from mock_server.http.auth import basic_credentials
from mock_server.http.context import json_body
from mock_server.http.parsing import bulk_changes, page_request, single_change
from mock_server.http.problems import (
    UNEXPECTED,
    error_response,
    method_not_allowed,
    route_not_found,
)
from mock_server.http.rendering import JSON_MIMETYPE
from mock_server.http.request_ids import request_id_of
from mock_server.http.validation import ResponseContract, contract_failure
from schemas.wire import AGENT, AGENTS, API_BASE, API_ROOT, BULK, BULK_SEGMENT, REQUEST_ID_HEADER

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

SUCCESS_BODY = {"reason": "OK", "change-status": 200, "message": "Agent status change successful"}
SUCCESS_JSON = orjson.dumps(SUCCESS_BODY)
FAILURE_MESSAGE = "Agent status change failed"
AUTOMATIC_METHODS = ("HEAD", "OPTIONS")
"""Methods every route answers without a view of its own: ``HEAD`` by its ``GET``."""
STATUS_LINES = {code: f"{code} {phrase.upper()}" for code, phrase in HTTP_STATUS_CODES.items()}


@dataclass
class Answer:
    """What the API answers: status, headers and the whole body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def json_answer(body: bytes, status: int = 200) -> Answer:
    return Answer(status, [("Content-Type", JSON_MIMETYPE)], body)


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


def path_pattern(template: str, excluded_last: str | None = None) -> re.Pattern[str]:
    """A template of the documents (``{tenantId}`` a whole segment) as a full-match pattern;
    ``excluded_last`` is a value its last parameter never takes."""
    pattern = re.escape(API_BASE + template)
    last = pattern.rindex(r"\{")
    if excluded_last is not None:
        pattern = pattern[:last] + f"(?!{re.escape(excluded_last)}$)" + pattern[last:]
    return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern) + r"\Z")


View = Callable[["WSGIEnvironment", dict[str, str]], Answer]


@dataclass(frozen=True)
class Route:
    """One operation's path and methods; ``pattern`` matches the decoded path."""

    template: str
    methods: frozenset[str]
    view: View
    pattern: re.Pattern[str]


class AgentStatusApi:
    """The API over one backend. ``contract`` (``--validate-responses``) judges every answer;
    ``after_answer`` hooks see each answer before that, as Flask's ``after_request`` would."""

    def __init__(
        self,
        backend: AgentStatusBackend,
        *,
        contract: ResponseContract | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.backend = backend
        self.contract = contract
        self.logger = logger or logging.getLogger(__name__)
        self.after_answer: list[Callable[[Answer], Answer]] = []
        self._lists: RevisionCache[str, bytes] = RevisionCache(CACHED_ENTRIES)
        """Whole agent lists (no group, no page) as JSON, per tenant."""
        self._agents: RevisionCache[tuple[str, str], bytes] = RevisionCache(CACHED_ENTRIES)
        """Single agents as JSON, per (tenant, agent)."""
        # The bulk path before the agent's, as the OpenAPI document orders a concrete path
        # before a template: ``GET .../agents/bulk`` is the bulk path answering 405, and a PUT
        # there without a bulk PUT is a single set of agent ``bulk`` (404), as the vendor's
        # routing does in the 'reference' profile.
        self.routes = (
            Route(
                BULK,
                frozenset(backend.profile.bulk_methods),
                self.setagentsstatuses,
                path_pattern(BULK),
            ),
            Route(AGENTS, frozenset({"GET"}), self.getagentsstatus, path_pattern(AGENTS)),
            Route(
                AGENT,
                frozenset({"GET"}),
                self.getagentstatus,
                path_pattern(AGENT, excluded_last=BULK_SEGMENT),
            ),
            Route(AGENT, frozenset({"PUT"}), self.setagentstatus, path_pattern(AGENT)),
        )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        raw_path: str = environ.get("PATH_INFO") or "/"
        # WSGI carries the path as latin-1 code points of its UTF-8 bytes.
        path = (
            raw_path if raw_path.isascii() else raw_path.encode("latin-1").decode(errors="replace")
        )
        route, params, answer = None, None, None
        try:
            route, params, allowed = self._route(method, path)
            if route is None and not allowed:
                raise route_not_found(method, path)
            if route is None and method != "OPTIONS":
                raise method_not_allowed(method, path, allowed)
            self._authorize(environ, params)
            if route is None:
                answer = Answer(200, [("Allow", ", ".join(sorted(allowed)))], b"")
            else:
                answer = route.view(environ, params)
        except ApiError as error:
            answer = self._error(error, environ)
        except Exception as error:  # a bug in the emulator, still answered as Problem JSON
            self.logger.exception("unexpected error on %s %s", method, path)
            answer = self._error(ApiError(UNEXPECTED.format(type(error).__name__)), environ)
        if not any(name == REQUEST_ID_HEADER for name, _ in answer.headers):
            answer.headers.append((REQUEST_ID_HEADER, request_id_of(environ)))
        for hook in self.after_answer:
            answer = hook(answer)
        if self.contract is not None and method != "OPTIONS":
            answer = self._judged(method, path, route, answer, environ)
        answer.headers.append(("Content-Length", str(len(answer.body))))
        start_response(STATUS_LINES.get(answer.status, str(answer.status)), answer.headers)
        return [b""] if method == "HEAD" else [answer.body]

    def _route(self, method: str, path: str) -> tuple[Route | None, dict[str, str], set[str]]:
        """The route for this method and path, else None and the methods the path has."""
        allowed: set[str] = set()
        params: dict[str, str] = {}
        wanted = "GET" if method == "HEAD" else method
        for route in self.routes:
            match = route.pattern.match(path)
            if match is None:
                continue
            params = match.groupdict()
            if wanted in route.methods:
                return route, params, allowed
            allowed |= route.methods
        if allowed:
            allowed.add("OPTIONS")
            if "GET" in allowed:
                allowed.add("HEAD")
        return None, params, allowed

    def _authorize(self, environ: WSGIEnvironment, params: Mapping[str, str]) -> None:
        """Before every operation: a request that fails it reaches none."""
        username, token = basic_credentials(environ.get("HTTP_AUTHORIZATION"))
        self.backend.authorize(params["tenantId"], username, token)

    def _error(self, error: ApiError, environ: WSGIEnvironment) -> Answer:
        rendered = error_response(error, self.backend.profile, request_id_of(environ), on_api=True)
        headers = [(k, v) for k, v in rendered.headers.items() if k != "Content-Length"]
        return Answer(rendered.status_code, headers, rendered.get_data())

    def _judged(
        self,
        method: str,
        path: str,
        route: Route | None,
        answer: Answer,
        environ: WSGIEnvironment,
    ) -> Answer:
        """The answer, or the logged 500 it becomes when it breaks the documents."""
        assert self.contract is not None
        template = None if route is None else API_BASE + route.template
        violations = self.contract.violations(
            method, path, template, (answer.status, answer.body, dict(answer.headers))
        )
        failure = contract_failure(violations)
        if failure is None:
            return answer
        self.logger.error("%s %s: %s", method, path, failure.detail)
        return self._error(failure, environ)

    # -- the operations: names are the vendor's operation ids -----------------------------

    def getagentsstatus(self, environ: WSGIEnvironment, params: dict[str, str]) -> Answer:
        """The query parameters read are the profile's: the others are ignored, as unknown."""
        tenant_id, profile = params["tenantId"], self.backend.profile
        query = _query(environ) if (profile.group_filter or profile.pagination) else {}
        group_id = query.get("groupId") if profile.group_filter else None
        page = (
            page_request(query.get("pageSize"), query.get("pageIndex"))
            if profile.pagination
            else None
        )
        if group_id is None and page is None:
            return json_answer(self._whole_list(tenant_id))
        listed = self.backend.list_agents(
            tenant_id, None if group_id is None else group_id.strip(), page
        )
        return json_answer(agents_json(listed))

    def _whole_list(self, tenant_id: str) -> bytes:
        revision = self.backend.revision()
        rendered = self._lists.get(revision, tenant_id)
        if rendered is None:
            rendered = agents_json(self.backend.list_agents(tenant_id))
            self._lists.put(revision, tenant_id, rendered)
        return rendered

    def getagentstatus(self, environ: WSGIEnvironment, params: dict[str, str]) -> Answer:
        key = (params["tenantId"], params["agentId"])
        revision = self.backend.revision()
        rendered = self._agents.get(revision, key)
        if rendered is None:
            rendered = orjson.dumps(self.backend.get_agent(*key).to_api())
            self._agents.put(revision, key, rendered)
        return json_answer(rendered)

    def setagentstatus(self, environ: WSGIEnvironment, params: dict[str, str]) -> Answer:
        change = single_change(json_body(environ), self.backend.profile)
        self.backend.set_agent_status(params["tenantId"], params["agentId"], change)
        if self.backend.profile.single_success_body:
            return json_answer(SUCCESS_JSON)
        return Answer(200, [], b"")

    def setagentsstatuses(self, environ: WSGIEnvironment, params: dict[str, str]) -> Answer:
        changes = bulk_changes(json_body(environ), self.backend.profile)
        outcomes = self.backend.set_agents_statuses(params["tenantId"], changes)
        with_message = self.backend.profile.bulk_result_message
        body = {"data": [_bulk_result(outcome, with_message) for outcome in outcomes]}
        return json_answer(orjson.dumps(body), status=207)


def _query(environ: WSGIEnvironment) -> dict[str, str]:
    """The query's parameters, the first value of each, decoded as Werkzeug's ``args``."""
    query: str = environ.get("QUERY_STRING") or ""
    if not query:
        return {}
    text = query.encode("latin-1", "replace").decode(errors="replace")
    first: dict[str, str] = {}
    for name, value in parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote"):
        first.setdefault(name, value)
    return first


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


class ApiRouter:
    """Every path under ``/api/`` to the API, the rest to the emulator's own app (Flask)."""

    def __init__(self, api: AgentStatusApi, other: WSGIApplication) -> None:
        self.api = api
        self.other = other

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO") or "/"
        if path.startswith(API_ROOT):
            return self.api(environ, start_response)
        return self.other(environ, start_response)
