"""An independent, live-like test double of the 8x8 Agent Status API.

Written from the vendor's two documents alone (the developer guide "CC Managing Agent
Status" and the published OpenAPI reference) plus the guide's transition diagram; it
shares no code with the project's emulator, schemas, client or contract tests.

Every point the documents leave open is a field of :class:`Variant`; every rule a real
service could get wrong on purpose is a name in :data:`BROKEN`. Use it as::

    with serve(Variant(bulk_methods=frozenset({"PUT"}))) as root:
        requests.get(f"{root}/tenants/{TENANT}/agentstatus/agents", auth=(USERNAME, TOKEN))

or from a shell: ``python -m tests.kit.vendor_double --bulk-methods PUT --broken bulk-200``
(the API root is the first line on stdout; it serves until killed).

Where the documents say nothing, this double decides (each is a plain choice, not a switch):

* Order of checks: Basic auth (401) -> routing (404 unknown path, 405 wrong method, with
  ``Allow``) -> tenant (403) -> body shape and types (400) -> agent lookup (404) -> rules (400).
* Request numbers may be integral floats (``4.0``); booleans, strings, fractions are 400. A JSON
  ``null`` counts as absent. A Content-Type other than JSON (``*/json``, ``*+json``) is 400;
  no Content-Type is read as JSON.
* Status codes: list+item are both needed once any code field is sent; the short code may be
  left out (it is then taken from the item). Codes are checked for a set to 1 as well.
  A status change without codes clears the agent's code (a set to 1: ``-1``/``1``, as the
  guide's logged-out example); a same-status set without codes keeps it.
* A bulk whose body is not ``{"agents": [...]}``, an entry that is not an object, lacks a
  string ``agent-id``, or carries a field of the wrong JSON type is a whole-request 400. All
  other refusals are per entry; entries run in request order, each seeing the previous ones.
* ``bulk_requires_agent_status=False``: an entry without ``agent-status`` but with a code
  changes the code only, and only for an agent in 3, 4 or 5.
* ``integral_floats`` turns every number of success bodies and bulk results into a float;
  the Problem/Spring ``status`` stays an integer (the reference types it ``integer``).
* ``extra_fields`` adds fields to JSON bodies only (no body is invented for an empty answer).
* Paging (when honoured): pageSize 1..500 and pageIndex >= 0, else 400; a page past the end
  is an empty ``data``. ``groupId`` that matches no group gives an empty list.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import dataclasses
import datetime
import functools
import hmac
import html
import json
import re
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from http import HTTPStatus
from types import FrameType
from typing import Final, Literal, NoReturn
from wsgiref.types import StartResponse, WSGIEnvironment

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

# --------------------------------------------------------------------------- public values

TENANT: Final = "vendordouble01"
USERNAME: Final = "vendoruser"
TOKEN: Final = "vendor-double-token"

WRITABLE: tuple[str, ...] = (
    "agDoubleOnBreak0000000001",
    "agDoubleAvailable00000002",
    "agDoubleOffline0000000003",
    "agDoubleAvailable00000004",
    "agDoubleBusy0000000000005",
    "agDoubleLoggedOut00000006",
    "agDoubleNeverIn0000000007",
)

ErrorMediaType = Literal["application/json", "application/problem+json"]
ErrorBody = Literal["problem", "spring", "empty", "html"]
UnauthorizedBody = Literal["problem", "spring", "empty"]
SingleSuccessBody = Literal["empty", "guide", "text"]
BulkResultMessage = Literal["absent", "guide", "other"]
ReasonTexts = Literal["reference", "other"]
Pagination = Literal["unsupported", "honoured"]
ResultOrder = Literal["request", "reversed"]
SameStatus = Literal["allowed", "refused"]
TenantForbidden = Literal["json", "xml"]
UnknownAgentInBulk = Literal[404, 400]
RefusalStatus = Literal[400, 422]
ShortCode = Literal["checked", "ignored"]
CodesShown = Literal["always", "not-when-available"]

#: Each name breaks ONE vendor rule on purpose; the value says how.
BROKEN: Final[Mapping[str, str]] = {
    "logged-out-revived": "an agent in 1 can be set to 3/4/5",
    "busy-settable": "an agent in 0, 2, 6-11 can be set to 3/4/5",
    "unsettable-accepted-single": "a single set to 0, 2, 6-11 is answered 200 and applied",
    "unsettable-accepted-bulk": "a bulk entry to 0, 2, 6-11 is answered 200 and applied",
    "bulk-200": "the bulk answers 200 instead of 207 (same body)",
    "bulk-all-or-nothing": "if any bulk entry would fail, every entry fails with 400, none applied",
    "bulk-result-missing": "the last result is dropped from the bulk body",
    "bulk-result-lying": "every bulk result says 200 OK, even for refused (unapplied) entries",
    "put-noop": "a valid single set answers 200 but changes nothing",
    "stale-read": "GETs show an agent as it was before its most recent acknowledged write",
    "wrong-password-accepted": "any token is accepted for the right username",
    "other-tenant-served": "valid credentials on another tenant's path are served this tenant",
    "renamed-fields": "agents are sent with agentId/status instead of agent-id/agent-status",
    "status-as-string": 'agent-status is sent as a string ("4")',
    "status-codes-unchecked": "any status-code list/item/short code is accepted and applied",
    "unknown-agent-200": "an unknown agent is answered 200 ({} on get; OK on set and in a bulk)",
    "transition-refused": "4 -> 3 (a drawn, allowed transition) is refused",
    "bulk-wrong-agent": "a bulk entry is applied to another agent; its result names the right one",
    # Further realistic breakages.
    "short-code-unchecked": "list and item are checked but any short code is accepted and stored",
    "refusal-applies-status": "a set refused for its status code still applies the agent-status",
    "no-auth-accepted": "a request without an Authorization header is served",
    "bad-credentials-403": "bad or missing credentials answer 403 instead of 401",
    "bulk-unknown-agent-404": "an unknown agent in a bulk fails the whole request with 404",
    "bulk-limit-ignored": "a bulk over the size limit is processed instead of refused",
    "absent-as-null": "fields an agent lacks are sent as null instead of being omitted",
    "list-truncated-100": "the agent list silently stops after 100 agents",
    "page-index-one-based": "pageIndex counts from 1 (0 and 1 both give the first page)",
    "page-total-wrong": "page.totalElements counts the agents on the page, not in the list",
}

SWITCHES: Final[Mapping[str, tuple[object, ...]]] = {
    # The values each non-boolean switch of Variant may take (the first is its default).
    "error_media_type": ("application/json", "application/problem+json"),
    "error_body": ("problem", "spring", "empty", "html"),
    "unauthorized_body": ("problem", "spring", "empty"),
    "single_success_body": ("empty", "guide", "text"),
    "bulk_result_message": ("absent", "guide", "other"),
    "reason_texts": ("reference", "other"),
    "pagination": ("unsupported", "honoured"),
    "result_order": ("request", "reversed"),
    "same_status": ("allowed", "refused"),
    "tenant_forbidden": ("json", "xml"),
    "unknown_agent_in_bulk": (404, 400),
    # The HTTP status (and a bulk entry's change-status) of a change the rules refuse: neither
    # document names it.
    "refusal_status": (400, 422),
    # A short code that is not the item's: refused, or ignored (the item's own is kept).
    "short_code": ("checked", "ignored"),
    # Whether a read shows the status code of an agent in 4 WAIT_TRANSACT (Available).
    "codes_shown": ("always", "not-when-available"),
}


@dataclass(frozen=True)
class Variant:
    """Switches for every point the vendor documents leave open (all defaults: the reference)."""

    error_media_type: ErrorMediaType = "application/json"
    error_body: ErrorBody = "problem"
    unauthorized_body: UnauthorizedBody = "empty"
    www_authenticate: bool = False
    extra_fields: bool = False
    bulk_methods: frozenset[str] = frozenset({"POST"})
    single_requires_status_codes: bool = False
    bulk_requires_agent_status: bool = True
    bulk_requires_status_codes: bool = False
    bulk_limit: int | None = 100
    single_success_body: SingleSuccessBody = "empty"
    bulk_result_message: BulkResultMessage = "absent"
    reason_texts: ReasonTexts = "reference"
    pagination: Pagination = "unsupported"
    group_filter: bool = True
    result_order: ResultOrder = "request"
    same_status: SameStatus = "allowed"
    request_id: bool = False
    integral_floats: bool = False
    tenant_forbidden: TenantForbidden = "json"
    unknown_agent_in_bulk: UnknownAgentInBulk = 404
    refusal_status: RefusalStatus = 400
    short_code: ShortCode = "checked"
    codes_shown: CodesShown = "always"
    filler_agents: int = 0
    broken: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name, allowed in SWITCHES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed!r}")
        if not self.bulk_methods or not self.bulk_methods <= {"PUT", "POST"}:
            raise ValueError("bulk_methods must be a non-empty subset of {'PUT', 'POST'}")
        if self.bulk_limit is not None and self.bulk_limit < 0:
            raise ValueError("bulk_limit must be None or >= 0")
        if self.filler_agents < 0 or self.filler_agents > 999_999:
            raise ValueError("filler_agents must be between 0 and 999999")
        unknown = sorted(set(self.broken) - set(BROKEN))
        if unknown:
            raise ValueError(f"unknown broken names: {unknown}")


DEFAULT_VARIANT: Final = Variant()

# --------------------------------------------------------------------------- data

_GROUP_LISTS: Final[Mapping[int, tuple[int, ...]]] = {
    100: (801,),
    200: (801, 802),
    300: (803,),
    400: (),
}
_CODE_LISTS: Final[Mapping[int, Mapping[int, str]]] = {
    801: {1722: "Meet", 1723: "Admin", 1725: "Lunch"},
    802: {1801: "Email"},
    803: {1901: "Chat"},
}
_SETTABLE: Final = frozenset({1, 3, 4, 5})
_MOVABLE: Final = frozenset({3, 4, 5})
_LOGGED_OUT: Final = 1
_STATUSES: Final = range(12)


@dataclass(frozen=True)
class _Agent:
    agent_id: str
    group: int
    status: int
    list_id: int | None
    item_id: int | None
    short: str | None
    sub_status: str | None
    name: str
    changed: str


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def _initial_agents(filler: int, stamp: str) -> dict[str, _Agent]:
    rows: list[tuple[str, int, int, int | None, int | None, str | None, str | None, str]] = [
        (WRITABLE[0], 100, 3, 801, 1725, "Lunch", "none", "Ada Break"),
        (WRITABLE[1], 100, 4, 801, 1722, "Meet", "none", "Bo Avail"),
        (WRITABLE[2], 200, 5, 802, 1801, "Email", "stopnew", "Cy Offline"),
        (WRITABLE[3], 200, 4, 801, 1723, "Admin", "none", "Di Avail"),
        (WRITABLE[4], 100, 9, None, None, None, "none", "Ed Busy"),
        (WRITABLE[5], 100, 1, -1, 1, None, "none", "Flo Out"),
        (WRITABLE[6], 300, 0, None, None, None, None, "Gus Never"),
        ("agDoubleOnCall00000000008", 300, 7, None, None, None, "none", "Hal Call"),
        ("agDoubleAway0000000000009", 400, 3, None, None, None, "none", "Ivy Away"),
    ]
    agents: dict[str, _Agent] = {}
    for number in range(1, filler + 1):
        agent_id = f"agDoubleFiller{number:06d}"
        agents[agent_id] = _Agent(
            agent_id, 400, 0, None, None, None, None, f"Filler {number:06d}", stamp
        )
    for agent_id, group, status, list_id, item_id, short, sub, name in rows:
        agents[agent_id] = _Agent(
            agent_id, group, status, list_id, item_id, short, sub, name, stamp
        )
    return agents


# --------------------------------------------------------------------------- texts

_REASONS: Final[Mapping[str, Mapping[str, str]]] = {
    "reference": {
        "no_agent": "The agent does not exist.",
        "list_invalid": "The status code list id is invalid.",
        "item_invalid": "The status code item id is invalid.",
        "short_invalid": "The status code item short code is invalid.",
        "status_invalid": "The agent status is invalid.",
        "transition": "The agent status transition is not allowed.",
        "same_status": "The agent already has this status.",
        "status_required": "The agent status is required.",
        "codes_required": "The status code list id, item id and short code are required.",
        "body_invalid": "There was an error accepting the request.",
        "page_invalid": "The page size or page index is invalid.",
        "too_many": "The request contains too many agents.",
        "auth": "Authentication or authorization failed for this request.",
        "tenant": "You are not authorized to access this tenant.",
        "not_found": "The resource does not exist.",
        "method": "The method is not allowed for this resource.",
        "rejected": "The bulk request was rejected.",
        "server": "There was a server error.",
    },
    "other": {
        "no_agent": "Agent not found",
        "list_invalid": "Unknown status code list",
        "item_invalid": "Unknown status code",
        "short_invalid": "Short code does not match the status code",
        "status_invalid": "Status cannot be set",
        "transition": "Transition not permitted",
        "same_status": "Agent is already in that status",
        "status_required": "Status missing",
        "codes_required": "Status code fields missing",
        "body_invalid": "Malformed request",
        "page_invalid": "Bad paging parameters",
        "too_many": "Too many agents in one request",
        "auth": "Bad credentials",
        "tenant": "Access to tenant denied",
        "not_found": "Not found",
        "method": "Method not supported",
        "rejected": "Request rejected",
        "server": "Internal error",
    },
}
_MESSAGES: Final[Mapping[str, tuple[str, str]]] = {
    "guide": ("Agent status change successful", "Agent status change failed"),
    "other": ("Status updated", "Rejected"),
}
_GUIDE_SUCCESS: Final = "Agent status change successful"
_FORBIDDEN_XML: Final = "<API><Error>403 - Forbidden.</Error></API>"
_REALM: Final = 'Basic realm="8x8 Agent Status API"'
_MAX_BODY: Final = 1 << 20
_INTEGRAL: Final = re.compile(r"\s*\+?([0-9]+)(\.0*)?\s*")


class _Refusal(Exception):
    """A request (or bulk entry) refused: HTTP status and reason key."""

    def __init__(self, status: int, key: str, partial: _Agent | None = None) -> None:
        super().__init__(key)
        self.status = status
        self.key = key
        self.partial = partial  # for "refusal-applies-status": what gets written anyway


@dataclass(frozen=True)
class _Change:
    status: int | None
    list_id: int | None
    item_id: int | None
    short: str | None

    @property
    def any_code(self) -> bool:
        return self.list_id is not None or self.item_id is not None or self.short is not None

    @property
    def all_codes(self) -> bool:
        return self.list_id is not None and self.item_id is not None and self.short is not None


def _number(value: object) -> int | None:
    """A JSON number with an integral value (5 or 5.0); None when absent or null."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise _Refusal(400, "body_invalid")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    raise _Refusal(400, "body_invalid")


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise _Refusal(400, "body_invalid")


def _read_change(body: Mapping[str, object]) -> _Change:
    return _Change(
        status=_number(body.get("agent-status")),
        list_id=_number(body.get("status-code-list-id")),
        item_id=_number(body.get("status-code-item-id")),
        short=_text(body.get("status-code-item-short-code")),
    )


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _read_json(request: Request) -> object:
    if request.content_length is not None and request.content_length > _MAX_BODY:
        raise _Refusal(400, "body_invalid")
    raw = request.get_data(cache=False)
    if len(raw) > _MAX_BODY:
        raise _Refusal(400, "body_invalid")
    mimetype = request.mimetype
    if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
        raise _Refusal(400, "body_invalid")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _Refusal(400, "body_invalid") from None


def _to_floats(value: object) -> object:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {key: _to_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_floats(item) for item in value]
    return value


def _page_number(raw: str | None, default: int) -> int:
    if raw is None or raw.strip() == "":
        return default
    match = _INTEGRAL.fullmatch(raw)
    if match is None:
        raise _Refusal(400, "page_invalid")
    return int(match.group(1))


# --------------------------------------------------------------------------- the service


class _Service:
    """The WSGI application: one tenant's state behind one lock."""

    def __init__(self, variant: Variant) -> None:
        self.variant = variant
        self.broken = variant.broken
        self.lock = threading.Lock()
        self.agents = _initial_agents(variant.filler_agents, _now())
        self.before: dict[str, _Agent] = {}  # for "stale-read"
        self.texts = _REASONS[variant.reason_texts]

    # ------------------------------------------------------------------ WSGI entry

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except _Refusal as refusal:
            response = self._error(request, refusal.status, refusal.key)
        except Exception:
            response = self._error(request, 500, "server")
        if self.variant.request_id:
            incoming = request.headers.get("X-Request-Id", "")
            response.headers["X-Request-Id"] = incoming[:200] or str(uuid.uuid4())
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        path = request.path
        method = "GET" if request.method == "HEAD" else request.method
        if not path.startswith("/api/v1/"):
            return self._error(request, 404, "not_found")
        if not self._authenticated(request):
            if "bad-credentials-403" in self.broken:
                return self._error(request, 403, "auth")
            return self._unauthorized(request)
        parts = path[len("/api/v1/") :].split("/")
        if (
            len(parts) not in (4, 5)
            or parts[0] != "tenants"
            or parts[2:4] != ["agentstatus", "agents"]
            or "" in parts
        ):
            return self._error(request, 404, "not_found")
        tenant = parts[1]
        handler: Callable[[], Response]
        allowed: set[str]
        if len(parts) == 4:
            allowed = {"GET"}
            handler = functools.partial(self._list, request)
        elif parts[4] == "bulk" and method in self.variant.bulk_methods:
            allowed = set(self.variant.bulk_methods)
            handler = functools.partial(self._bulk, request)
        else:
            # Any other method on .../agents/bulk is routed as the single agent "bulk".
            allowed = {"GET", "PUT"}
            if parts[4] == "bulk":
                allowed |= self.variant.bulk_methods
            operation = self._get if method == "GET" else self._set
            handler = functools.partial(operation, request, parts[4])
        if method not in allowed:
            response = self._error(request, 405, "method")
            if "GET" in allowed:
                allowed.add("HEAD")
            response.headers["Allow"] = ", ".join(sorted(allowed))
            return response
        if tenant != TENANT and "other-tenant-served" not in self.broken:
            return self._forbidden(request)
        return handler()

    # ------------------------------------------------------------------ auth

    def _authenticated(self, request: Request) -> bool:
        header = request.headers.get("Authorization")
        if header is None:
            return "no-auth-accepted" in self.broken
        scheme, _, encoded = header.strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return False
        username, colon, token = decoded.partition(":")
        if not colon or not hmac.compare_digest(username.encode(), USERNAME.encode()):
            return False
        if "wrong-password-accepted" in self.broken:
            return True
        return hmac.compare_digest(token.encode(), TOKEN.encode())

    # ------------------------------------------------------------------ reads

    def _visible(self, agent: _Agent) -> _Agent:
        if "stale-read" in self.broken:
            return self.before.get(agent.agent_id, agent)
        return agent

    def _list(self, request: Request) -> Response:
        args = request.args
        paging = self.variant.pagination == "honoured"
        size = index = 0
        if paging:
            size = _page_number(args.get("pageSize"), 100)
            index = _page_number(args.get("pageIndex"), 0)
            if not 1 <= size <= 500:
                raise _Refusal(400, "page_invalid")
        group_raw = args.get("groupId")
        group: int | None = None
        filtering = self.variant.group_filter and group_raw is not None and group_raw.strip() != ""
        if filtering and group_raw is not None:
            match = _INTEGRAL.fullmatch(group_raw)
            group = int(match.group(1)) if match else None
        with self.lock:
            agents = [self._visible(agent) for agent in self.agents.values()]
        if filtering:
            agents = [agent for agent in agents if agent.group == group]
        body: dict[str, object] = {}
        if paging:
            total = len(agents)
            first = index - 1 if "page-index-one-based" in self.broken and index > 0 else index
            start = first * size
            agents = agents[start : start + size]
            body["data"] = [self._render(agent) for agent in agents]
            body["page"] = {
                "pageSize": size,
                "totalElements": len(agents) if "page-total-wrong" in self.broken else total,
                "totalPages": -(-total // size),
                "pageIndex": index,
            }
        else:
            if "list-truncated-100" in self.broken:
                agents = agents[:100]
            body["data"] = [self._render(agent) for agent in agents]
        if self.variant.extra_fields:
            body["meta"] = {"count": len(agents), "generated": _now(), "tenant": TENANT}
        return self._json(200, body)

    def _get(self, request: Request, agent_id: str) -> Response:
        with self.lock:
            agent = self.agents.get(agent_id)
            shown = None if agent is None else self._visible(agent)
        if shown is None:
            if "unknown-agent-200" in self.broken:
                return self._json(200, {})
            return self._error(request, 404, "no_agent")
        return self._json(200, self._render(shown))

    def _render(self, agent: _Agent) -> dict[str, object]:
        renamed = "renamed-fields" in self.broken
        status: object = str(agent.status) if "status-as-string" in self.broken else agent.status
        hidden = self.variant.codes_shown == "not-when-available" and agent.status == 4
        fields: list[tuple[str, object]] = [
            ("agentId" if renamed else "agent-id", agent.agent_id),
            ("status" if renamed else "agent-status", status),
            ("status-code-list-id", None if hidden else agent.list_id),
            ("status-code-item-id", None if hidden else agent.item_id),
            ("status-code-item-short-code", None if hidden else agent.short),
            ("name", agent.name),
            ("agent-sub-status", agent.sub_status),
        ]
        keep_null = "absent-as-null" in self.broken
        body = {key: value for key, value in fields if value is not None or keep_null}
        if self.variant.extra_fields:
            body["agent-group-id"] = agent.group
            body["last-change"] = agent.changed
        return body

    # ------------------------------------------------------------------ the rules

    def _transition_allowed(self, current: int, target: int) -> bool:
        if target == current:
            return self.variant.same_status == "allowed" and current in _SETTABLE
        if current in _MOVABLE:
            return not (current == 4 and target == 3 and "transition-refused" in self.broken)
        if current == _LOGGED_OUT:
            return "logged-out-revived" in self.broken and target in _MOVABLE
        return "busy-settable" in self.broken and target in _MOVABLE

    def _decide(self, agent: _Agent, change: _Change, *, bulk: bool) -> _Agent:
        """The agent after the change, or a _Refusal in the variant's refusal status."""
        try:
            return self._decide_by_rules(agent, change, bulk=bulk)
        except _Refusal as refusal:
            if refusal.status == 400:
                refusal.status = self.variant.refusal_status
            raise

    def _decide_by_rules(self, agent: _Agent, change: _Change, *, bulk: bool) -> _Agent:
        """The agent after the change, or a _Refusal. Never writes."""
        if change.status is None:  # a bulk entry allowed to change the code only
            if not change.any_code:
                raise _Refusal(400, "status_required")
            if agent.status not in _MOVABLE:
                raise _Refusal(400, "transition")
            target = agent.status
        else:
            target = change.status
            lenient = "unsettable-accepted-bulk" if bulk else "unsettable-accepted-single"
            if target not in _STATUSES:
                raise _Refusal(400, "status_invalid")
            if target not in _SETTABLE:
                if lenient not in self.broken:
                    raise _Refusal(400, "status_invalid")
            elif not self._transition_allowed(agent.status, target):
                same = target == agent.status and agent.status in _SETTABLE
                raise _Refusal(400, "same_status" if same else "transition")
        now = _now()
        if not change.any_code:
            if target == agent.status:
                return replace(agent, status=target, changed=now)
            if target == _LOGGED_OUT:
                return replace(agent, status=target, list_id=-1, item_id=1, short=None, changed=now)
            return replace(
                agent, status=target, list_id=None, item_id=None, short=None, changed=now
            )
        partial: _Agent | None = None
        if "refusal-applies-status" in self.broken:
            partial = replace(agent, status=target, changed=now)
        if "status-codes-unchecked" in self.broken:
            known = _CODE_LISTS.get(change.list_id or 0, {})
            short = change.short if change.short is not None else known.get(change.item_id or 0)
            return replace(
                agent,
                status=target,
                list_id=change.list_id,
                item_id=change.item_id,
                short=short,
                changed=now,
            )
        if change.list_id is None or change.list_id not in _GROUP_LISTS[agent.group]:
            raise _Refusal(400, "list_invalid", partial)
        items = _CODE_LISTS[change.list_id]
        if change.item_id is None or change.item_id not in items:
            raise _Refusal(400, "item_invalid", partial)
        short = items[change.item_id]
        if change.short is not None and change.short != short:
            if "short-code-unchecked" in self.broken:
                short = change.short
            elif self.variant.short_code == "checked":
                raise _Refusal(400, "short_invalid", partial)
        return replace(
            agent,
            status=target,
            list_id=change.list_id,
            item_id=change.item_id,
            short=short,
            changed=now,
        )

    def _write(self, agent: _Agent) -> None:
        """Store an acknowledged change (the caller holds the lock)."""
        self.before[agent.agent_id] = self.agents[agent.agent_id]
        self.agents[agent.agent_id] = agent

    # ------------------------------------------------------------------ set one

    def _set(self, request: Request, agent_id: str) -> Response:
        body = _read_json(request)
        if not isinstance(body, dict):
            raise _Refusal(400, "body_invalid")
        change = _read_change(body)
        if change.status is None:
            raise _Refusal(self.variant.refusal_status, "status_required")
        if self.variant.single_requires_status_codes and not change.all_codes:
            raise _Refusal(self.variant.refusal_status, "codes_required")
        with self.lock:
            agent = self.agents.get(agent_id)
            if agent is None:
                if "unknown-agent-200" in self.broken:
                    return self._set_success(agent_id)
                raise _Refusal(404, "no_agent")
            try:
                new = self._decide(agent, change, bulk=False)
            except _Refusal as refusal:
                if refusal.partial is not None:
                    self._write(refusal.partial)
                raise
            if "put-noop" not in self.broken:
                self._write(new)
        return self._set_success(agent_id)

    def _set_success(self, agent_id: str) -> Response:
        kind = self.variant.single_success_body
        if kind == "text":
            return Response("OK", status=200, content_type="text/plain; charset=utf-8")
        if kind == "empty":
            return self._bare(200)
        body: dict[str, object] = {
            "reason": "OK",
            "change-status": 200,
            "message": _GUIDE_SUCCESS,
        }
        if self.variant.extra_fields:
            body["agent-id"] = agent_id
            body["timestamp"] = _now()
        return self._json(200, body)

    # ------------------------------------------------------------------ bulk

    def _bulk(self, request: Request) -> Response:
        body = _read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("agents"), list):
            raise _Refusal(400, "body_invalid")
        raw_entries: list[object] = body["agents"]
        limit = self.variant.bulk_limit
        if (
            limit is not None
            and len(raw_entries) > limit
            and "bulk-limit-ignored" not in self.broken
        ):
            raise _Refusal(400, "too_many")
        entries: list[tuple[str, _Change]] = []
        for raw in raw_entries:
            if not isinstance(raw, dict):
                raise _Refusal(400, "body_invalid")
            agent_id = raw.get("agent-id")
            if not isinstance(agent_id, str) or agent_id == "":
                raise _Refusal(400, "body_invalid")
            entries.append((agent_id, _read_change(raw)))

        outcomes: list[tuple[str, int, str | None]] = []  # agent id, change-status, reason key
        with self.lock:
            scratch = dict(self.agents)
            for position, (agent_id, change) in enumerate(entries):
                outcomes.append(self._bulk_entry(scratch, entries, position, agent_id, change))
            failed = any(status != 200 for _, status, _ in outcomes)
            if failed and "bulk-all-or-nothing" in self.broken:
                outcomes = [
                    (agent_id, 400, key if status != 200 else "rejected")
                    for agent_id, status, key in outcomes
                ]
            else:
                for agent_id, agent in scratch.items():
                    if agent is not self.agents[agent_id]:
                        self._write(agent)

        results = [self._result(position, *outcome) for position, outcome in enumerate(outcomes)]
        if self.variant.result_order == "reversed":
            results.reverse()
        if "bulk-result-missing" in self.broken and results:
            results.pop()
        answer: dict[str, object] = {"data": results}
        if self.variant.extra_fields:
            answer["meta"] = {"count": len(results), "generated": _now(), "tenant": TENANT}
        return self._json(200 if "bulk-200" in self.broken else 207, answer)

    def _bulk_entry(
        self,
        scratch: dict[str, _Agent],
        entries: Sequence[tuple[str, _Change]],
        position: int,
        agent_id: str,
        change: _Change,
    ) -> tuple[str, int, str | None]:
        if change.status is None and self.variant.bulk_requires_agent_status:
            return agent_id, self.variant.refusal_status, "status_required"
        if self.variant.bulk_requires_status_codes and not change.all_codes:
            return agent_id, self.variant.refusal_status, "codes_required"
        agent = scratch.get(agent_id)
        if agent is None:
            if "unknown-agent-200" in self.broken:
                return agent_id, 200, None
            if "bulk-unknown-agent-404" in self.broken:
                raise _Refusal(404, "no_agent")
            return agent_id, self.variant.unknown_agent_in_bulk, "no_agent"
        try:
            new = self._decide(agent, change, bulk=True)
        except _Refusal as refusal:
            if refusal.partial is not None:
                scratch[agent_id] = refusal.partial
            return agent_id, refusal.status, refusal.key
        if "bulk-wrong-agent" in self.broken:
            victim = self._other_agent(scratch, entries, position, agent_id)
            if victim is not None:
                new = replace(
                    new,
                    agent_id=victim.agent_id,
                    group=victim.group,
                    name=victim.name,
                    sub_status=victim.sub_status,
                )
        scratch[new.agent_id] = new
        return agent_id, 200, None

    @staticmethod
    def _other_agent(
        scratch: Mapping[str, _Agent],
        entries: Sequence[tuple[str, _Change]],
        position: int,
        agent_id: str,
    ) -> _Agent | None:
        """For "bulk-wrong-agent": the next entry's agent, else the first other writable one."""
        for step in range(1, len(entries)):
            other = entries[(position + step) % len(entries)][0]
            if other != agent_id and other in scratch:
                return scratch[other]
        for other in WRITABLE:
            if other != agent_id and other in scratch:
                return scratch[other]
        return None

    def _result(
        self, position: int, agent_id: str, status: int, key: str | None
    ) -> dict[str, object]:
        if "bulk-result-lying" in self.broken:
            status, key = 200, None
        result: dict[str, object] = {
            "agent-id": agent_id,
            "change-status": status,
            "reason": "OK" if key is None else self.texts[key],
        }
        messages = _MESSAGES.get(self.variant.bulk_result_message)
        if messages is not None:
            result["message"] = messages[0] if status == 200 else messages[1]
        if self.variant.extra_fields:
            result["request-index"] = position
            result["processed-at"] = _now()
        return result

    # ------------------------------------------------------------------ responses

    def _json(self, status: int, body: object) -> Response:
        if self.variant.integral_floats:
            body = _to_floats(body)
        return Response(json.dumps(body), status=status, content_type="application/json")

    @staticmethod
    def _bare(status: int) -> Response:
        response = Response(b"", status=status)
        del response.headers["Content-Type"]
        return response

    def error_parts(self, path: str, status: int, text: str, kind: str) -> tuple[bytes, str | None]:
        """An error body and its Content-Type (None: no body) in the variant's format."""
        phrase = HTTPStatus(status).phrase
        if kind == "empty":
            return b"", None
        if kind == "html":
            page = (
                f"<!DOCTYPE html><html><head><title>{status} {phrase}</title></head>"
                f"<body><h1>{status} {phrase}</h1><p>{html.escape(text)}</p></body></html>"
            )
            return page.encode(), "text/html; charset=utf-8"
        document: dict[str, object]
        if kind == "spring":
            document = {
                "timestamp": _now(),
                "status": status,
                "error": phrase,
                "message": text,
                "path": path,
            }
        else:
            document = {"type": "about:blank", "title": phrase, "status": status, "detail": text}
        return json.dumps(document).encode(), self.variant.error_media_type

    def _error_document(self, request: Request, status: int, key: str, kind: str) -> Response:
        body, content_type = self.error_parts(request.path, status, self.texts[key], kind)
        if content_type is None:
            return self._bare(status)
        return Response(body, status=status, content_type=content_type)

    def _error(self, request: Request, status: int, key: str) -> Response:
        return self._error_document(request, status, key, self.variant.error_body)

    def _unauthorized(self, request: Request) -> Response:
        response = self._error_document(request, 401, "auth", self.variant.unauthorized_body)
        if self.variant.www_authenticate:
            response.headers["WWW-Authenticate"] = _REALM
        return response

    def _forbidden(self, request: Request) -> Response:
        if self.variant.tenant_forbidden == "xml":
            return Response(_FORBIDDEN_XML, status=403, content_type="application/xml")
        return self._error(request, 403, "tenant")


# --------------------------------------------------------------------------- serving


class _QuietHandler(WSGIRequestHandler):
    """No request log; HTTP-level errors (a garbled request line) in the variant's format."""

    def log(self, type: str, message: str, *args: object) -> None:
        return None

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        service = getattr(self.server, "app", None)
        text = explain or message or HTTPStatus(code).phrase
        body, content_type = b"", None
        if isinstance(service, _Service):
            body, content_type = service.error_parts("", code, text, service.variant.error_body)
        self.send_response(code)
        self.send_header("Connection", "close")
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        self.close_connection = True


def _make_server(variant: Variant) -> BaseWSGIServer:
    return make_server(
        "127.0.0.1", 0, _Service(variant), threaded=True, request_handler=_QuietHandler
    )


def _root(server: BaseWSGIServer) -> str:
    return f"http://127.0.0.1:{server.server_port}/api/v1"


@contextlib.contextmanager
def serve(variant: Variant = DEFAULT_VARIANT) -> Iterator[str]:
    """Start on 127.0.0.1, port 0, in a background thread; yield the API root
    'http://127.0.0.1:PORT/api/v1'; stop (and join) on exit."""
    server = _make_server(variant)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="vendor-double"
    )
    thread.start()
    try:
        yield _root(server)
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


# --------------------------------------------------------------------------- command line


def _boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {raw!r}")


def _limit(raw: str) -> int | None:
    if raw.strip().lower() in ("none", "null", ""):
        return None
    return int(raw)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.kit.vendor_double",
        description="Serve the independent Agent Status API double until killed; "
        "the API root is the first line on stdout.",
    )
    for item in dataclasses.fields(Variant):
        flags = [f"--{item.name.replace('_', '-')}"]
        if "_" in item.name:
            flags.append(f"--{item.name}")
        default = item.default
        if item.name == "broken":
            parser.add_argument(
                *flags, action="append", default=None, metavar="NAME", choices=sorted(BROKEN)
            )
        elif item.name == "bulk_methods":
            parser.add_argument(
                *flags,
                action="append",
                default=None,
                metavar="PUT|POST[,...]",
                help="repeatable or comma-separated",
            )
        elif item.name in ("unknown_agent_in_bulk", "refusal_status"):
            parser.add_argument(*flags, type=int, choices=SWITCHES[item.name], default=None)
        elif item.name in SWITCHES:
            parser.add_argument(*flags, choices=[str(c) for c in SWITCHES[item.name]], default=None)
        elif isinstance(default, bool):
            parser.add_argument(*flags, type=_boolean, default=None, metavar="true|false")
        elif item.name == "bulk_limit":
            parser.add_argument(*flags, default=None, metavar="N|none")
        else:
            parser.add_argument(*flags, type=int, default=None)
    return parser


def variant_from_args(argv: Sequence[str] | None = None) -> Variant:
    """The Variant the command-line switches describe (unset switches keep their defaults)."""
    parsed = vars(_parser().parse_args(argv))
    changes: dict[str, object] = {}
    for name, value in parsed.items():
        if value is None:
            continue
        if name == "broken":
            changes[name] = frozenset(value)
        elif name == "bulk_methods":
            methods = {part.strip().upper() for entry in value for part in entry.split(",")}
            changes[name] = frozenset(methods - {""})
        elif name == "bulk_limit" and isinstance(value, str):
            changes[name] = _limit(value)
        else:
            changes[name] = value
    return replace(DEFAULT_VARIANT, **changes)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    try:
        variant = variant_from_args(argv)
    except ValueError as error:
        print(f"vendor_double: {error}", file=sys.stderr)
        return 2
    server = _make_server(variant)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(_root(server), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
