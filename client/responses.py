"""Reading what the service answered: the typed error of a failure (``client.errors``), the
JSON object of a success, the agents and the next page of a list.

An error keeps what the response said, never the response: that holds the request, whose
Authorization header carries the token.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from http import HTTPStatus
from typing import Any

import requests

from client.errors import (
    AgentNotFoundError,
    AgentStatusError,
    ApiNotEnabledError,
    AuthenticationError,
    ChangeRejectedError,
    ForbiddenError,
    MethodNotAllowedError,
    RateLimitedError,
    ServerError,
    TenantForbiddenError,
    TransportError,
    UnexpectedResponseError,
    describe_failure,
    never_connected,
)
from client.models import Agent, ChangeOutcome, StatusChange
from client.retry import parse_retry_after
from schemas.wire import REQUEST_ID_HEADER, integral

BODY_PREVIEW_CHARS = 300
XML_FORBIDDEN_MARK = "<API><Error>403"


def error_from_response(
    response: requests.Response,
    *,
    agent_id: str | None = None,
    hints: Mapping[int, str] | None = None,
    attempts: int = 1,
) -> AgentStatusError:
    """The typed error for a non-2xx response, with the server's own explanation."""
    status = response.status_code
    text = response.text
    problem = _problem(response)
    request_id = response.headers.get(REQUEST_ID_HEADER)
    instance = problem.get("instance") if problem else None
    if request_id is None and isinstance(instance, str) and instance.startswith("urn:uuid:"):
        request_id = instance.removeprefix("urn:uuid:")
    detail = problem.get("detail") if problem else None
    detail = _one_line(detail) if isinstance(detail, str) and detail.strip() else _preview(response)
    hint = (hints or {}).get(status)
    message = f"{status} {_phrase(status, response)}" + (f": {detail}" if detail else "")
    if hint:
        message += f" ({hint})"
    fields: dict[str, Any] = {
        "status": status,
        "body": text,
        "request_id": request_id,
        "problem": problem,
        "method": response.request.method if response.request is not None else None,
        "url": response.url,
        "attempts": attempts,
    }
    if status == 400:
        return ChangeRejectedError(message, **fields)
    if status == 401:
        return AuthenticationError(message, **fields)
    if status == 403:
        if XML_FORBIDDEN_MARK in text or "xml" in response.headers.get("Content-Type", ""):
            return ApiNotEnabledError(
                f"{message} (the Agent Status API is not enabled for this tenant: ask 8x8 "
                "support to enable it)",
                **fields,
            )
        if problem is not None:
            return TenantForbiddenError(message, **fields)
        return ForbiddenError(message, **fields)
    if status == 404 and agent_id is not None:
        return AgentNotFoundError(message, agent_id=agent_id, **fields)
    if status == 405:
        return MethodNotAllowedError(message, **fields)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return RateLimitedError(message, retry_after=retry_after, **fields)
    if status >= 500:
        return ServerError(message, **fields)
    return UnexpectedResponseError(message, **fields)


def transport_error(
    failure: requests.RequestException, method: str, url: str, attempts: int
) -> TransportError:
    """A TransportError saying what failed, in one line; it keeps neither the failure nor its
    request (which holds the Authorization header)."""
    return TransportError(
        describe_failure(failure, url),
        sent=not never_connected(failure),
        method=method,
        url=url,
        attempts=attempts,
    )


def unexpected(response: requests.Response, what: str) -> UnexpectedResponseError:
    """A 2xx whose body is not the contract's: ``what`` is wrong, then the body's start."""
    return UnexpectedResponseError(
        f"{what}: {_preview(response)}",
        status=response.status_code,
        body=response.text,
        request_id=response.headers.get(REQUEST_ID_HEADER),
        method=response.request.method if response.request is not None else None,
        url=response.url,
    )


def json_object(response: requests.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        raise unexpected(response, "the response is not JSON") from None
    if not isinstance(body, dict):
        raise unexpected(response, "the response is not a JSON object")
    return body


def set_outcome(response: requests.Response, change: StatusChange) -> ChangeOutcome:
    """The outcome of a single set answered 2xx: the change was applied, whatever the body.

    The reference documents no body for that 200, the guide a JSON object; a body that is
    neither (none, ``text/plain`` "OK", HTML) is still a success, since calling it a failure
    would make a caller apply the change again. A ``change-status`` in the body is kept.
    """
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return ChangeOutcome(change.agent_id, response.status_code, change=change)
    outcome = ChangeOutcome.from_wire(body, change)
    if outcome.change_status is None:
        return replace(outcome, change_status=response.status_code)
    return outcome


def read_agent(response: requests.Response, data: object) -> Agent:
    """One agent of an answer; one the client cannot read makes the answer unexpected."""
    try:
        return Agent.from_wire(data)
    except ValueError as problem:
        raise unexpected(response, str(problem)) from None


def agent_page(response: requests.Response) -> tuple[list[Agent], dict[str, str] | None]:
    """The agents of a list answer, and the query of the next page (None: this is the last)."""
    body = json_object(response)
    data = body.get("data")
    if not isinstance(data, list):
        raise unexpected(response, "the agent list has no 'data' array")
    return [read_agent(response, item) for item in data], _next_page(body.get("page"))


def _next_page(page: object) -> dict[str, str] | None:
    """The query of the next page when the service pages (the reference's ``page`` object)."""
    if not isinstance(page, Mapping):
        return None
    index, total, size = (
        integral(page.get(name)) for name in ("pageIndex", "totalPages", "pageSize")
    )
    if index is None or total is None or size is None:
        return None
    if index + 1 >= total:
        return None
    return {"pageIndex": str(index + 1), "pageSize": str(size)}


def _phrase(status: int, response: requests.Response) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return response.reason or "Unknown"


def _preview(response: requests.Response) -> str:
    return _one_line(response.text)[:BODY_PREVIEW_CHARS]


def _one_line(text: str) -> str:
    """Text for a one-line message: each run of whitespace (newlines too) as one space."""
    return " ".join(text.split())


def _problem(response: requests.Response) -> dict[str, Any] | None:
    """The body as a JSON object when the response declares JSON, else None."""
    if "json" not in response.headers.get("Content-Type", ""):
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
