"""Findings: where a target does what the vendor allows but the emulator chose otherwise.

The contract has two layers (``schemas/vendor-openapi.yaml``, the vendor contract, and
``schemas/openapi.yaml``, the emulator's promise). A live target that breaks the first fails
the run; one that only differs from the second gets a *finding*: a row of the report naming
the point, what the emulator does, what the target did, the evidence, and what to change in
the emulator or which profile already matches. Against an emulator, a finding is a failure:
the emulator must keep its own promise.

``CHOICES`` names every point the kit can tell apart (one per choice in docs/DECISIONS.md it
can observe); ``observe`` looks at every answer, the checks add the behavioural ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from contract_tests.answer import Answer
from schemas import load_schema
from schemas.contract import UNROUTED_RESPONSES
from schemas.documents import API_DOCUMENT
from schemas.wire import FORBIDDEN_XML

MAX_EVIDENCE = 3
EVIDENCE_CHARS = 240


@dataclass(frozen=True)
class Choice:
    """One choice of the emulator's that a vendor-conforming target may not share."""

    title: str
    emulator: str
    """What the emulator (default profile) does, in words."""
    change: str
    """What to change in the emulator to do as the target does, when no profile does."""


CHOICES: dict[str, Choice] = {
    "error_body": Choice(
        "error body",
        "RFC 7807 Problem JSON with type, title, status, detail and instance (urn:uuid:<id>)",
        "render errors in the target's shape (mock_server's one error renderer)",
    ),
    "unauthorized_body": Choice(
        "401 body",
        "RFC 7807 Problem JSON, like every other error",
        "give 401 the target's body (mock_server's error renderer, AuthenticationFailed)",
    ),
    "www_authenticate": Choice(
        "WWW-Authenticate on 401",
        'WWW-Authenticate: Basic realm="8x8 Agent Status API", charset="UTF-8"',
        "send the target's challenge, or none (AuthenticationFailed.headers)",
    ),
    "allow_header": Choice(
        "Allow on 405",
        "Allow lists the path's methods",
        "drop Allow from 405 (MethodNotAllowed)",
    ),
    "request_id": Choice(
        "X-Request-Id header",
        "every response carries X-Request-Id (32 hex digits)",
        "make X-Request-Id optional (mock_server's request-id middleware)",
    ),
    "extra_fields": Choice(
        "members the emulator does not send",
        "bodies carry only the members of schemas/*.schema.json",
        "add the members to the emulator's schemas and fixtures",
    ),
    "integral_numbers": Choice(
        "numbers written as floats",
        "integral numbers are written as integers (5, never 5.0)",
        "write integral numbers as the target does",
    ),
    "message_texts": Choice(
        "success and message texts",
        'reason "OK", message "Agent status change successful" / "Agent status change failed"',
        "use the target's texts (schemas/set-status-response and bulk-result schemas)",
    ),
    "success_body_format": Choice(
        "single set: 200 body format",
        "the guide's JSON body, or none in the reference profile",
        "answer the single set's 200 with the target's body",
    ),
    "bulk_result_order": Choice(
        "bulk results order",
        "one result per entry, in request order",
        "answer bulk results in the target's order (results are paired by agent-id)",
    ),
    "same_status": Choice(
        "setting the status an agent already has",
        "3 -> 3, 4 -> 4, 5 -> 5 are allowed (a new reason code)",
        "refuse a set to the current status (schemas/rules.py, ALLOWED_TRANSITIONS)",
    ),
    "refusal_status": Choice(
        "status of a refused change",
        "400 (a bulk entry's change-status 400)",
        "answer refusals with the target's status (mock_server/core/errors.py, InvalidRequest)",
    ),
    "short_code_check": Choice(
        "a short code that is not the item's",
        "refused with 400",
        "accept it and keep the item's own short code",
    ),
    "code_not_shown": Choice(
        "status code read back after a change",
        "a read shows the status code the change set",
        "show no status code for such an agent after a change",
    ),
    "unknown_agent_in_bulk": Choice(
        "bulk entry for an unknown agent",
        "change-status 404",
        "answer the target's change-status for an unknown agent in a bulk",
    ),
    "other_tenant_status": Choice(
        "another tenant's path",
        "403",
        "answer another tenant's path with the target's status",
    ),
    "bulk_shape_refusal": Choice(
        "bulk entry with an unsettable agent-status",
        "the whole bulk is refused with 400",
        "refuse such an entry inside the 207 instead",
    ),
    "other": Choice(
        "other differences from the emulator's document",
        "what schemas/openapi.yaml describes",
        "read the evidence: the emulator's document and this target differ here",
    ),
}


@dataclass
class Finding:
    """One row of the report's "differs from the emulator" section."""

    key: str
    title: str
    emulator: str
    observed: str
    evidence: list[str]
    count: int = 1
    matching_profiles: list[str] = field(default_factory=list)
    change: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class ChoiceBroken(AssertionError):
    """An emulator did not do what it chose to do: a failure, unlike a live target's finding."""


class Findings:
    """The findings of one run, one per key, with up to ``MAX_EVIDENCE`` examples each."""

    def __init__(self) -> None:
        self.found: dict[str, Finding] = {}

    def add(
        self,
        key: str,
        observed: str,
        evidence: str,
        *,
        choice: Choice | None = None,
        matching_profiles: list[str] | None = None,
    ) -> None:
        """One more example of ``key``; ``choice`` when it is not one of ``CHOICES``."""
        evidence = evidence if len(evidence) <= EVIDENCE_CHARS else evidence[:EVIDENCE_CHARS] + "…"
        known = self.found.get(key)
        if known is None:
            choice = choice or CHOICES[key]
            self.found[key] = Finding(
                key,
                choice.title,
                choice.emulator,
                observed,
                [evidence],
                matching_profiles=sorted(matching_profiles or []),
                change=choice.change,
            )
            return
        known.count += 1
        if len(known.evidence) < MAX_EVIDENCE and evidence not in known.evidence:
            known.evidence.append(evidence)

    def to_json(self) -> list[dict[str, Any]]:
        return [finding.to_json() for finding in self.found.values()]


# -- what every answer is looked at for --------------------------------------------------


def _properties(schema_file: str) -> frozenset[str]:
    return frozenset(load_schema(schema_file)["properties"])


AGENT_MEMBERS = _properties("agent.schema.json")
LIST_MEMBERS = _properties("agent-list.schema.json")
PAGE_MEMBERS = _properties("page.schema.json")
BULK_MEMBERS = _properties("bulk-response.schema.json")
RESULT_MEMBERS = _properties("bulk-result.schema.json")
SET_BODY = load_schema("set-status-response.schema.json")["properties"]
SET_MEMBERS = frozenset(SET_BODY)
SUCCESS_REASON: str = SET_BODY["reason"]["const"]
SUCCESS_MESSAGE: str = SET_BODY["message"]["const"]
RESULT_MESSAGES = frozenset(load_schema("bulk-result.schema.json")["properties"]["message"]["enum"])
RESULT_STATUSES = frozenset(
    load_schema("bulk-result.schema.json")["properties"]["change-status"]["enum"]
)
# Every status the emulator's promise declares: for some operation, or before routing.
DECLARED_STATUSES = frozenset(UNROUTED_RESPONSES) | frozenset(
    int(code)
    for item in load_schema(API_DOCUMENT)["paths"].values()
    for operation in item.values()
    if isinstance(operation, dict) and "responses" in operation
    for code in operation["responses"]
    if str(code).isdigit()
)
PROBLEM_MEMBERS = frozenset(load_schema("problem.schema.json")["required"])
XML_FORBIDDEN = FORBIDDEN_XML.encode()


def _problem_difference(answer: Answer, body: Any) -> str | None:
    """How an error body differs from the emulator's Problem JSON (every member it sends,
    ``status`` equal to the HTTP status, ``instance`` a urn:uuid), or None."""
    if not answer.body.strip():
        return "no body"
    if not isinstance(body, dict):
        return f"a {answer.media_type or 'untyped'} body that is not a JSON object"
    missing = sorted(PROBLEM_MEMBERS - set(body))
    if missing:
        return f"a JSON object without {', '.join(missing)}"
    if body.get("status") != answer.status:
        return f"status {body.get('status')!r} in a {answer.status} answer"
    if not str(body.get("instance")).startswith("urn:uuid:"):
        return f"instance {body.get('instance')!r}"
    return None


def _unknown_members(answer: Answer, body: Any) -> Iterator[str]:
    if not isinstance(body, dict):
        return
    if answer.operation == "getagentstatus":
        yield from sorted(set(body) - AGENT_MEMBERS)
    elif answer.operation == "getagentsstatus":
        yield from sorted(set(body) - LIST_MEMBERS)
        if isinstance(body.get("page"), dict):
            yield from (f"page.{name}" for name in sorted(set(body["page"]) - PAGE_MEMBERS))
        for agent in body.get("data") or []:
            if isinstance(agent, dict):
                yield from (f"data[].{name}" for name in sorted(set(agent) - AGENT_MEMBERS))
    elif answer.operation == "setagentstatus":
        yield from sorted(set(body) - SET_MEMBERS)
    elif answer.operation in ("setagentsstatuses", "setagentsstatusesput"):
        yield from sorted(set(body) - BULK_MEMBERS)
        for result in body.get("data") or []:
            if isinstance(result, dict):
                yield from (f"data[].{name}" for name in sorted(set(result) - RESULT_MEMBERS))


def _floats(node: Any) -> Iterator[float]:
    if isinstance(node, float):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _floats(value)
    elif isinstance(node, list):
        for value in node:
            yield from _floats(value)


def _texts(answer: Answer, body: Any) -> Iterator[str]:
    """Success texts and bulk messages that are not the emulator's."""
    if answer.operation == "setagentstatus" and isinstance(body, dict):
        if body.get("reason", SUCCESS_REASON) != SUCCESS_REASON:
            yield f"reason {body['reason']!r}"
        if body.get("message", SUCCESS_MESSAGE) != SUCCESS_MESSAGE:
            yield f"message {body['message']!r}"
    if answer.operation in ("setagentsstatuses", "setagentsstatusesput") and isinstance(body, dict):
        for result in body.get("data") or []:
            if not isinstance(result, dict):
                continue
            if "message" in result and result["message"] not in RESULT_MESSAGES:
                yield f"result message {result['message']!r}"
            if result.get("change-status") == 200 and result.get("reason") != SUCCESS_REASON:
                yield f"success reason {result.get('reason')!r}"


Observer = Callable[[Answer, Any], Iterator[tuple[str, str, str]]]


def _errors(answer: Answer, body: Any) -> Iterator[tuple[str, str, str]]:
    if answer.status < 400:
        return
    difference = _problem_difference(answer, body)
    if answer.status == 401:
        if difference is not None:
            yield "unauthorized_body", difference, answer.describe()
        challenge = answer.headers.get("www-authenticate", "")
        if not challenge.lower().startswith("basic"):
            yield "www_authenticate", f"401 with WWW-Authenticate {challenge!r}", answer.describe()
        return
    if answer.status == 403 and answer.body.strip() == XML_FORBIDDEN:
        return
    if difference is not None:
        yield "error_body", difference, answer.describe()
    if answer.status == 405 and not answer.headers.get("allow"):
        yield "allow_header", "405 without Allow", answer.describe()


def _successes(answer: Answer, body: Any) -> Iterator[tuple[str, str, str]]:
    if answer.status not in (200, 207) or answer.operation is None:
        return
    unknown = sorted(set(_unknown_members(answer, body)))
    if unknown:
        yield "extra_fields", f"members {', '.join(unknown)}", answer.describe()
    floats = [number for number in _floats(body) if number.is_integer()]
    if floats:
        yield "integral_numbers", f"numbers such as {floats[0]!r}", answer.describe()
    texts = list(_texts(answer, body))
    if texts:
        yield "message_texts", "; ".join(texts), answer.describe()
    if answer.operation == "setagentstatus" and answer.body.strip() and not isinstance(body, dict):
        yield "success_body_format", "a 200 body that is not a JSON object", answer.describe()


def _statuses(answer: Answer, body: Any) -> Iterator[tuple[str, str, str]]:
    """A refusal in a status the emulator never gives (422, say): the answer or a result's."""
    if 400 <= answer.status < 500 and answer.status not in DECLARED_STATUSES:
        yield "refusal_status", f"answered {answer.status}", answer.describe()
    if answer.status == 207 and isinstance(body, dict):
        odd = [
            result.get("change-status")
            for result in body.get("data") or []
            if isinstance(result, dict) and result.get("change-status") not in RESULT_STATUSES
        ]
        if odd:
            yield "refusal_status", f"results with change-status {odd[0]!r}", answer.describe()


def _headers(answer: Answer, body: Any) -> Iterator[tuple[str, str, str]]:
    if "x-request-id" not in answer.headers:
        yield "request_id", "no X-Request-Id", answer.describe()


OBSERVERS: tuple[Observer, ...] = (_errors, _successes, _statuses, _headers)


def observe(answer: Answer) -> list[tuple[str, str, str]]:
    """Every (key, observed, evidence) on which this answer differs from the emulator's choices."""
    body = answer.parsed()
    return [found for observer in OBSERVERS for found in observer(answer, body)]
