"""The reference client against the vendor contract, by property: answers generated from the
vendor's JSON Schemas (``schemas/vendor-*.schema.json``, through hypothesis-jsonschema) are read
exactly or refused with the client's own error, error answers map onto the documented hierarchy,
and every request the client builds validates against the vendor's request schemas.

The answers are served by a fake transport (a ``requests`` adapter mounted on the client's
session), so no server runs. ``make test`` runs ``AGENTSTATUS_FUZZ_EXAMPLES`` (default 50)
examples per property.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import urllib3
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from requests.adapters import HTTPAdapter
from support_client import make_client

from client import (
    AgentStatusClient,
    StatusChange,
)
from client.retry import NO_RETRY
from schemas import load_schema

MAX_EXAMPLES = int(os.environ.get("AGENTSTATUS_FUZZ_EXAMPLES", "50"))
PROPERTY = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
API_URL = "http://vendor.test/api/v1"
TENANT = "acme01"
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


# -- the fake transport ------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One scripted answer: ``body`` bytes as given, or JSON for anything else."""

    status: int = 200
    body: Any = None
    content_type: str | None = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


class Stub(HTTPAdapter):
    """Answers from a script, in order, and keeps what was sent; no socket."""

    def __init__(self, replies: list[Reply], default: Reply | None = None) -> None:
        super().__init__()
        self.replies = list(replies)
        self.default = default
        self.seen: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        self.seen.append(request)
        reply = self.replies.pop(0) if self.replies else self.default
        assert reply is not None, f"unscripted request {request.method} {request.url}"
        headers = dict(reply.headers)
        if reply.content_type is not None:
            headers["Content-Type"] = reply.content_type
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(reply.payload()),
            headers=headers,
            status=reply.status,
            preload_content=False,
        )
        return self.build_response(request, raw)

    def bodies(self) -> list[Any]:
        return [json.loads(request.body or b"null") for request in self.seen]


@contextmanager
def served(*replies: Reply, **options: Any) -> Iterator[tuple[AgentStatusClient, Stub]]:
    """A client whose session is answered by ``replies``."""
    stub = Stub(list(replies), options.pop("default", None))
    session = requests.Session()
    session.mount("http://", stub)
    options.setdefault("retry", NO_RETRY)
    with make_client(API_URL, tenant=TENANT, session=session, **options) as api:
        yield api, stub
    session.close()


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
