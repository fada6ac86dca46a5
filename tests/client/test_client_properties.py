"""The reference client against the vendor contract, by property: answers generated from the
vendor's JSON Schemas (``schemas/vendor-*.schema.json``, through hypothesis-jsonschema) are read
exactly or refused with the client's own error, error answers map onto the documented hierarchy,
and every request the client builds validates against the vendor's request schemas.

The answers are served by a fake transport (``support_stub``: a ``requests`` adapter on the
client's session), so no server runs. ``make test`` runs ``AGENTSTATUS_FUZZ_EXAMPLES`` (default 50)
examples per property.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator
from support_stub import API_URL, Reply, served

from client import (
    AgentNotFoundError,
    AgentStatusClient,
    AgentStatusError,
    ApiNotEnabledError,
    AuthenticationError,
    ChangeRejectedError,
    ConfigurationError,
    ForbiddenError,
    MethodNotAllowedError,
    RateLimitedError,
    ServerError,
    StatusChange,
    StatusCode,
    TenantForbiddenError,
    UnexpectedResponseError,
)
from schemas import load_schema
from schemas.rules import SETTABLE
from schemas.wire import FORBIDDEN_XML, agents_path

MAX_EXAMPLES = int(os.environ.get("AGENTSTATUS_FUZZ_EXAMPLES", "50"))
PROPERTY = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
INTEGER_FIELDS = ("agent-status", "status-code-list-id", "status-code-item-id")
AGENT_FIELDS = {
    "agent-id": "agent_id",
    "name": "name",
    "agent-sub-status": "sub_status",
    "status-code-item-short-code": "status_code_short_code",
    "agent-status": "status",
    "status-code-list-id": "status_code_list_id",
    "status-code-item-id": "status_code_item_id",
}


def vendor_schema(name: str) -> dict[str, Any]:
    """A vendor schema with every ``$ref`` inlined: the vendor files ``$ref`` one another by
    file name (``vendor-agent.schema.json``), which hypothesis-jsonschema cannot follow, so each
    is replaced by the named file's content (its ``$id``/``$schema`` dropped)."""

    def inline(node: Any) -> Any:
        if isinstance(node, list):
            return [inline(item) for item in node]
        if not isinstance(node, dict):
            return node
        if isinstance(node.get("$ref"), str):
            target = load_schema(node["$ref"].rsplit("/", 1)[-1])
            return inline({k: v for k, v in target.items() if k not in ("$id", "$schema")})
        return {key: inline(value) for key, value in node.items()}

    inlined: dict[str, Any] = inline(load_schema(name))
    return inlined


@st.composite
def as_floats(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with some of its integers sent as floats (``5`` as ``5.0``): the vendor types
    numbers as ``number``, so a service may send either."""
    if isinstance(value, dict):
        return {key: draw(as_floats(item)) for key, item in value.items()}
    if isinstance(value, list):
        return [draw(as_floats(item)) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53:
        return float(value) if draw(st.booleans()) else value
    return value


def vendor_answers(name: str) -> st.SearchStrategy[Any]:
    """Bodies the vendor contract allows for ``name``, integral numbers in either form."""
    return from_schema(vendor_schema(name)).flatmap(as_floats)


def assert_agent_read(agent: Any, body: Mapping[str, Any]) -> None:
    """Known fields mapped (integral numbers as ints), the rest in ``extra``, the same JSON."""
    wire = agent.to_wire()
    assert wire == body
    for key, value in body.items():
        mapped = getattr(agent, AGENT_FIELDS[key]) if key in AGENT_FIELDS else None
        if key in INTEGER_FIELDS and float(value).is_integer():
            assert type(wire[key]) is int and mapped == value and key not in agent.extra
        elif key in AGENT_FIELDS and key not in INTEGER_FIELDS:
            assert mapped == value and key not in agent.extra
        else:
            assert agent.extra[key] == value


# -- the three defects of issue 15 --------------------------------------------------------


def test_an_integral_float_status_is_the_status() -> None:
    body = {"agent-id": "agA", "agent-status": 0.0, "status-code-list-id": 801.0}
    with served(Reply(body=body)) as (api, _):
        agent = api.get_agent("agA")
    assert (agent.status, agent.status_code_list_id, dict(agent.extra)) == (0, 801, {})
    assert type(agent.to_wire()["agent-status"]) is int


@pytest.mark.parametrize(
    "reply",
    [
        Reply(body=b"OK", content_type="text/plain"),
        Reply(body=None, content_type=None),
        Reply(body=b"<html><body>done</body></html>", content_type="text/html"),
        Reply(body=["OK"]),
        Reply(body={"message": "done"}),
    ],
    ids=["text", "none", "html", "json-array", "object-without-change-status"],
)
def test_a_set_answered_200_with_any_body_succeeded(reply: Reply) -> None:
    with served(reply) as (api, stub):
        outcome = api.set_agent_status("agA", 3)
    assert outcome.ok and outcome.change_status == 200
    assert outcome.change == StatusChange("agA", 3)
    assert len(stub.seen) == 1


def test_bulk_outcomes_follow_the_agent_id_in_any_order() -> None:
    changes = [StatusChange("agA", 3), StatusChange("agB", 5), StatusChange("agA", 4)]
    answer = {
        "data": [
            {"agent-id": "agB", "change-status": 400, "reason": "B"},
            {"agent-id": "agA", "change-status": 200, "reason": "A first"},
            {"agent-id": "agA", "change-status": 400, "reason": "A second"},
        ]
    }
    with served(Reply(207, answer)) as (api, _):
        result = api.set_agents_statuses(changes)
    assert [(o.change, o.agent_id, o.reason) for o in result] == [
        (changes[0], "agA", "A first"),
        (changes[1], "agB", "B"),
        (changes[2], "agA", "A second"),
    ]


# -- answers generated from the vendor schemas --------------------------------------------


@PROPERTY
@given(vendor_answers("vendor-agent.schema.json"))
def test_every_vendor_agent_answer_is_read_exactly(body: dict[str, Any]) -> None:
    with served(Reply(body=body)) as (api, _):
        agent = api.get_agent("agA")
    assert_agent_read(agent, body)


@PROPERTY
@given(vendor_answers("vendor-agent-list.schema.json"))
@example({"data": [], "page": {"pageIndex": 0.0, "totalPages": 2, "pageSize": 50.0}})
@example({"data": [], "page": {"pageIndex": 1, "totalPages": 2, "pageSize": 50}})
def test_every_vendor_list_answer_is_read_exactly(body: dict[str, Any]) -> None:
    """A page saying more pages follow is followed once; the last page adds nothing."""
    with served(Reply(body=body), default=Reply(body={"data": []})) as (api, stub):
        agents = api.list_agents()
    assert len(agents) == len(body["data"])
    for agent, item in zip(agents, body["data"], strict=True):
        assert_agent_read(agent, item)
    page = body.get("page", {})
    index, total, size = (page.get(name) for name in ("pageIndex", "totalPages", "pageSize"))
    numbers = [index, total, size]
    pages = all(isinstance(n, int | float) and float(n).is_integer() for n in numbers)
    follows = pages and int(index) + 1 < int(total)
    assert len(stub.seen) == (2 if follows else 1)
    if follows:
        query = parse_qs(urlsplit(stub.seen[1].url or "").query)
        assert query == {"pageIndex": [str(int(index) + 1)], "pageSize": [str(int(size))]}


SET_ANSWERS = st.one_of(
    vendor_answers("set-status-response.schema.json").map(lambda body: Reply(body=body)),
    from_schema({}).map(lambda body: Reply(body=body)),
    st.binary(max_size=40).map(lambda body: Reply(body=body, content_type="text/plain")),
    st.just(Reply(body=b"<html>OK</html>", content_type="text/html")),
    st.just(Reply(content_type=None)),
)


@PROPERTY
@given(SET_ANSWERS)
def test_every_vendor_set_answer_is_a_success(reply: Reply) -> None:
    """The reference documents no body for the set's 200: any body means the change was applied;
    a ``change-status`` the body gives is kept."""
    with served(reply) as (api, _):
        outcome = api.set_agent_status("agA", 3)
    body = reply.body if isinstance(reply.body, dict) else {}
    given_status = body.get("change-status")
    if isinstance(given_status, int | float) and float(given_status).is_integer():
        assert outcome.change_status == int(given_status)
    else:
        assert outcome.change_status == 200
    assert outcome.change == StatusChange("agA", 3)
    assert type(outcome.change_status) is int


BULK_RESULT = from_schema(
    vendor_schema("vendor-bulk-response.schema.json")["properties"]["data"]["items"]
).flatmap(as_floats)
AGENT_IDS = st.sampled_from(["agA", "agB", "a/b?c"]) | st.text(max_size=8)


def expected_pairs(
    changes: list[StatusChange], answer: list[dict[str, Any]]
) -> list[dict[str, Any] | None]:
    """The contract's pairing: by agent id, and by position only among one id's results."""
    pairs: list[dict[str, Any] | None] = []
    for index, change in enumerate(changes):
        rank = [c.agent_id for c in changes[:index]].count(change.agent_id)
        mine = [result for result in answer if result["agent-id"] == change.agent_id]
        pairs.append(mine[rank] if rank < len(mine) else None)
    return pairs


@PROPERTY
@given(
    st.lists(AGENT_IDS, min_size=1, max_size=12),
    st.integers(min_value=1, max_value=5),
    st.data(),
)
def test_bulk_outcomes_pair_with_their_change_in_any_order_and_chunking(
    ids: list[str], chunk_size: int, data: st.DataObject
) -> None:
    """Each change gets one outcome, its own, whatever order and chunking; results the service
    left out say nothing; a chunk failing as a whole raises with the chunks before in
    ``partial``."""
    changes = [StatusChange(agent_id, data.draw(st.sampled_from([3, 4, 5]))) for agent_id in ids]
    chunks = [changes[i : i + chunk_size] for i in range(0, len(changes), chunk_size)]
    failing = data.draw(st.none() | st.integers(0, len(chunks) - 1), label="failing chunk")
    replies, expected = [], []
    # Whole answers in another order are where pairing by position goes wrong: half the
    # chunks answer every entry, and an answer is as often reversed as shuffled.
    whole = data.draw(st.booleans(), label="every entry answered")
    for number, chunk in enumerate(chunks):
        if number == failing:
            replies.append(Reply(500, {"detail": "boom"}))
            break
        answer = []
        for position, change in enumerate(chunk):
            if whole or data.draw(st.booleans(), label="answered"):
                drawn = {**data.draw(BULK_RESULT), "agent-id": change.agent_id}
                answer.append({**drawn, "nth": f"{number}.{position}"})
        answer = data.draw(st.permutations(answer) | st.just(answer[::-1]), label="order")
        replies.append(Reply(207, {"data": answer}))
        expected += expected_pairs(chunk, answer)
    with served(*replies, bulk_chunk_size=chunk_size) as (api, stub):
        if failing is None:
            outcomes = list(api.set_agents_statuses(changes))
        else:
            with pytest.raises(ServerError) as raised:
                api.set_agents_statuses(changes)
            assert raised.value.partial is not None
            outcomes = list(raised.value.partial)
    assert len(stub.seen) == len(replies)
    assert [outcome.change for outcome in outcomes] == changes[: len(expected)]
    for outcome, result in zip(outcomes, expected, strict=True):
        if result is None:
            assert outcome.change_status is None and not outcome.ok
        else:
            assert outcome.to_wire() == result
            integral = float(result["change-status"]).is_integer()
            assert type(outcome.change_status) is (int if integral else type(None))
    sent = [entry for body in stub.bodies() for entry in body["agents"]]
    assert sent[: len(changes)] == [change.to_wire() for change in changes][: len(sent)]


# -- error answers ------------------------------------------------------------------------

ERROR_BODIES = st.one_of(
    vendor_answers("vendor-problem.schema.json").map(lambda body: json.dumps(body).encode()),
    st.just(b""),
    st.just(b"<html><body><h1>Bad Gateway</h1></body></html>"),
    st.just(FORBIDDEN_XML.encode()),
    st.binary(max_size=60),
)
MEDIA_TYPES = st.sampled_from(
    ["application/json", "application/problem+json", "text/html", "application/xml", None]
)
CALLS = st.sampled_from(["list", "get", "set", "bulk"])


def expected_error(status: int, content_type: str | None, body: bytes, call: str) -> type:
    """The documented class (``client.errors``) of an error answer, from the status alone, but
    for the 403's two kinds and the 404 of an agent."""
    text = body.decode("utf-8", "replace")
    if status == 403:
        if "<API><Error>403" in text or "xml" in (content_type or ""):
            return ApiNotEnabledError
        try:
            problem = isinstance(json.loads(body), dict) and "json" in (content_type or "")
        except ValueError:
            problem = False
        return TenantForbiddenError if problem else ForbiddenError
    if status == 404:
        return AgentNotFoundError if call in ("get", "set") else UnexpectedResponseError
    by_status = {
        400: ChangeRejectedError,
        401: AuthenticationError,
        405: MethodNotAllowedError,
        429: RateLimitedError,
    }
    return by_status.get(status, ServerError if status >= 500 else UnexpectedResponseError)


def call_client(api: AgentStatusClient, call: str) -> object:
    if call == "list":
        return api.list_agents()
    if call == "get":
        return api.get_agent("agA")
    if call == "set":
        return api.set_agent_status("agA", 1)
    return api.set_agents_statuses([StatusChange("agA", 1)])


DOCUMENTED_STATUSES = st.sampled_from([400, 401, 403, 404, 405, 429, 500, 503])


@PROPERTY
@given(
    DOCUMENTED_STATUSES | st.integers(400, 599),
    MEDIA_TYPES,
    ERROR_BODIES,
    CALLS,
    st.none() | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
)
@example(500, "application/problem+json", b'{"detail": "one\\ntwo\\r\\nthree"}', "get", None)
@example(403, "text/html", b"<html>Forbidden</html>", "list", None)
@example(403, "application/json", b'{"title": "Forbidden"}', "get", None)
@example(403, None, FORBIDDEN_XML.encode(), "bulk", None)
@example(405, "application/json", b"", "bulk", None)
@example(404, "application/json", b"", "bulk", None)
def test_every_error_answer_raises_its_documented_class(
    status: int, content_type: str | None, body: bytes, call: str, retry_after: str | None
) -> None:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    with (
        served(Reply(status, body, content_type, headers)) as (api, _),
        pytest.raises(AgentStatusError) as raised,
    ):
        call_client(api, call)
    error = raised.value
    assert type(error) is expected_error(status, content_type, body, call)
    assert error.status == status
    assert "\n" not in str(error)
    if isinstance(error, RateLimitedError):
        assert error.retry_after is None or error.retry_after >= 0


# -- requests -----------------------------------------------------------------------------

DOT_SEGMENTS = (".", "..")
IDS = st.text(min_size=1).filter(lambda text: text not in DOT_SEGMENTS) | st.sampled_from(
    ["a/b", "100%", "a?b=c", "#top", "a b", "é/ü", "%2E", ".a", "..."]
)
STATUS_CODES = st.none() | st.builds(
    StatusCode, st.integers(), st.integers(), st.none() | st.text(max_size=10)
)
SETTABLE_STATUSES = st.sampled_from(sorted(SETTABLE))


def vendor_valid(name: str, body: object) -> None:
    Draft202012Validator(vendor_schema(name)).validate(body)


def agent_id_of(request: requests.PreparedRequest, tenant: str) -> str:
    """The agent id a server reads from the request's path: its last segment, decoded, once
    the path has exactly the agent operation's segments."""
    parts = urlsplit(request.url or "")
    assert (parts.query, parts.fragment) == ("", "")
    segments = parts.path.split("/")
    assert "/".join(segments[:-1]) == "/api/v1" + agents_path(tenant)
    return unquote(segments[-1], errors="strict")


@PROPERTY
@given(IDS, IDS, SETTABLE_STATUSES, STATUS_CODES)
def test_every_single_request_is_the_vendors(
    tenant: str, agent_id: str, status: int, status_code: StatusCode | None
) -> None:
    with served(Reply(), Reply(body={"agent-id": agent_id, "agent-status": 3}), tenant=tenant) as (
        api,
        stub,
    ):
        api.set_agent_status(agent_id, status, status_code)
        assert api.get_agent(agent_id).agent_id == agent_id
    put, get = stub.seen
    vendor_valid("vendor-set-status-request.schema.json", json.loads(put.body or b""))
    assert [agent_id_of(put, tenant), agent_id_of(get, tenant)] == [agent_id, agent_id]
    assert (put.method, get.method) == ("PUT", "GET")


@PROPERTY
@given(
    IDS,
    st.lists(st.builds(StatusChange, IDS, st.none() | SETTABLE_STATUSES, STATUS_CODES)),
    st.integers(1, 4),
    st.sampled_from(["POST", "PUT"]),
)
def test_every_bulk_request_is_the_vendors(
    tenant: str, changes: list[StatusChange], chunk_size: int, method: str
) -> None:
    options: dict[str, Any] = {"tenant": tenant, "bulk_chunk_size": chunk_size}
    with served(default=Reply(207, {"data": []}), bulk_method=method, **options) as (api, stub):
        api.set_agents_statuses(changes)
    sent = []
    for request in stub.seen:
        body = json.loads(request.body or b"")
        vendor_valid("vendor-bulk-request.schema.json", body)
        assert 1 <= len(body["agents"]) <= chunk_size
        assert request.method == method
        assert urlsplit(request.url or "").path == "/api/v1" + agents_path(tenant) + "/bulk"
        sent += body["agents"]
    assert sent == [change.to_wire() for change in changes]


@pytest.mark.parametrize("agent_id", DOT_SEGMENTS)
def test_a_dot_segment_agent_id_is_refused_before_sending(agent_id: str) -> None:
    """``requests`` (and every URL normaliser) removes ``.`` and ``..`` path segments, even
    escaped: the call would reach another resource (a set of ``..`` a PUT on the list)."""
    with served() as (api, stub):
        for call in (lambda: api.get_agent(agent_id), lambda: api.set_agent_status(agent_id, 3)):
            with pytest.raises(ValueError, match="cannot be sent in a URL path"):
                call()
    assert stub.seen == []


@pytest.mark.parametrize("tenant", DOT_SEGMENTS)
def test_a_dot_segment_tenant_is_refused(tenant: str) -> None:
    with pytest.raises(ConfigurationError, match="cannot be sent in a URL path"):
        AgentStatusClient(API_URL, tenant=tenant, username="u", token="t")
