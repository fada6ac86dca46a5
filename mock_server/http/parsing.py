"""Request bodies and query strings read into the backend's typed arguments, or a 400 naming
the field. The backend (``mock_server.core.backend``) sees only what this module returns.

What is checked here is the request's shape, as the vendor's request schemas say it: types,
required fields, known statuses, the bulk limit. Whatever depends on the agent (how the
status-code fields pair, the transition, the codes) is the backend's, decided per bulk entry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from mock_server.core.backend import PageRequest, StatusChange
from mock_server.core.errors import InvalidRequest, excerpt
from mock_server.core.profiles import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Profile
from schemas.rules import AgentStatus, transition_refusal, unknown_status_refusal
from schemas.wire import MAX_SAFE_INTEGER, STATUS_CODE_FIELDS, integral

BULK_FIELD = "agents"
SINGLE_BODY = "The request body"
# A JSON number, as a query parameter the reference types ``number`` may carry one.
QUERY_NUMBER = re.compile(r"[-+]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
STATUS_BY_NUMBER = {int(status): status for status in AgentStatus}
NOT_NULL_FIELDS = ("agent-status", *STATUS_CODE_FIELDS)


def describe(value: object) -> str:
    """A JSON value for a message: its kind and the start of it (``a string 'abc'``)."""
    names = {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        float: "a number",
    }
    if value is None:
        return "null"
    return f"{names.get(type(value), type(value).__name__)} {excerpt(value)}"


def _integer(value: object, where: str) -> int:
    """A JSON integer (5 or 5.0) within +-(2**53 - 1); booleans, strings, fractions are refused."""
    number = integral(value)
    if number is None:
        shown = excerpt(value) if isinstance(value, float) else describe(value)
        raise InvalidRequest(f"{where} must be an integer, got {shown}.")
    if abs(number) > MAX_SAFE_INTEGER:
        raise InvalidRequest(f"{where} must be an integer within +-(2**53 - 1), got {number}.")
    return number


def status_change(
    payload: object, *, where: str, require_status: bool, require_codes: bool
) -> StatusChange:
    """One change request's fields, typed; the agent-specific rules come later."""
    if not isinstance(payload, dict):
        raise InvalidRequest(f"{where} must be a JSON object, got {describe(payload)}.")
    prefix = f"{where}." if where != SINGLE_BODY else ""

    status: AgentStatus | None = None
    raw_status = payload.get("agent-status")
    if raw_status is None:
        if require_status:
            raise InvalidRequest(f"{prefix}agent-status is required.")
    else:
        number = _integer(raw_status, f"{prefix}agent-status")
        status = STATUS_BY_NUMBER.get(number)
        if status is None:
            raise InvalidRequest(f"{prefix}{unknown_status_refusal(number)}")
        if not status.settable:
            raise InvalidRequest(f"{prefix}{transition_refusal(status, status)}")

    list_field, item_field, short_field = STATUS_CODE_FIELDS
    list_raw, item_raw, short_raw = (payload.get(name) for name in STATUS_CODE_FIELDS)
    if require_codes:
        for name, value in zip(STATUS_CODE_FIELDS, (list_raw, item_raw, short_raw), strict=True):
            if value is None:
                raise InvalidRequest(f"{prefix}{name} is required.")
    # An optional field is absent or typed: null is refused (the contract's schemas say so).
    for name in NOT_NULL_FIELDS:
        if name in payload and payload[name] is None:
            raise InvalidRequest(f"{prefix}{name} must not be null; leave it out instead.")
    list_id = None if list_raw is None else _integer(list_raw, f"{prefix}{list_field}")
    item_id = None if item_raw is None else _integer(item_raw, f"{prefix}{item_field}")
    if short_raw is not None and not isinstance(short_raw, str):
        raise InvalidRequest(f"{prefix}{short_field} must be a string, got {describe(short_raw)}.")
    return StatusChange(status=status, list_id=list_id, item_id=item_id, short_code=short_raw)


def single_change(payload: object, profile: Profile) -> StatusChange:
    """The single set's body."""
    return status_change(
        payload,
        where=SINGLE_BODY,
        require_status=True,
        require_codes=profile.single_requires_status_codes,
    )


def bulk_changes(payload: object, profile: Profile) -> list[tuple[str, StatusChange]]:
    """The bulk set's body as (agent id, change) pairs, or a 400 for the whole request: an
    ``agents`` array within the profile's limit, each entry an object with a string
    ``agent-id`` and typed fields (what the reference's request schema says)."""
    if not isinstance(payload, dict):
        raise InvalidRequest(f"{SINGLE_BODY} must be a JSON object, got {describe(payload)}.")
    entries = payload.get(BULK_FIELD)
    if entries is None:
        raise InvalidRequest("agents is required: an array of agent status changes.")
    if not isinstance(entries, list):
        raise InvalidRequest(f"agents must be an array, got {describe(entries)}.")
    limit = profile.bulk_limit
    if limit is not None and len(entries) > limit:
        raise InvalidRequest(f"agents has {len(entries)} entries; at most {limit} are allowed.")
    agent_ids = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidRequest(f"agents[{index}] must be a JSON object, got {describe(entry)}.")
        agent_id = entry.get("agent-id")
        if agent_id is None:
            raise InvalidRequest(f"agents[{index}].agent-id is required.")
        if not isinstance(agent_id, str):
            raise InvalidRequest(
                f"agents[{index}].agent-id must be a string, got {describe(agent_id)}."
            )
        agent_ids.append(agent_id)
    return [
        (
            agent_id,
            status_change(
                entry,
                where=f"agents[{index}]",
                require_status=profile.bulk_requires_agent_status,
                require_codes=profile.bulk_requires_status_codes,
            ),
        )
        for index, (agent_id, entry) in enumerate(zip(agent_ids, entries, strict=True))
    ]


def page_request(page_size: str | None, page_index: str | None) -> PageRequest:
    """The reference's ``pageSize`` and ``pageIndex`` query parameters, defaults filled in."""
    size = DEFAULT_PAGE_SIZE if page_size is None else _query_integer(page_size, "pageSize")
    index = 0 if page_index is None else _query_integer(page_index, "pageIndex")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise InvalidRequest(f"pageSize must be between 1 and {MAX_PAGE_SIZE}, got {size}.")
    if index < 0:
        raise InvalidRequest(f"pageIndex must be 0 or more, got {index}.")
    return PageRequest(size, index)


MAX_EVENTS_PER_READ = 1000


def events_window(after: str | None, limit: str | None) -> tuple[int, int]:
    """``after`` (an event number, default 0) and ``limit`` (1 to 1000, default 1000) of a
    read of the control plane's event log."""
    start = 0 if after is None else _query_integer(after, "after")
    count = MAX_EVENTS_PER_READ if limit is None else _query_integer(limit, "limit")
    if start < 0:
        raise InvalidRequest(f"after must be 0 or more, got {start}.")
    if not 1 <= count <= MAX_EVENTS_PER_READ:
        raise InvalidRequest(f"limit must be between 1 and {MAX_EVENTS_PER_READ}, got {count}.")
    return start, count


def _query_integer(value: str, name: str) -> int:
    """A query parameter the reference types ``number``: ``2``, ``2.0`` or ``2e0`` is 2; a
    fraction, anything but a decimal number, or beyond +-(2**53 - 1) is a 400 naming it.

    Read exactly (``Decimal``), not as a float: ``1.00000000000000001`` is a fraction."""
    text = value.strip()
    if QUERY_NUMBER.fullmatch(text) is None:
        raise InvalidRequest(f"{name} must be an integer, got '{text[:40]}'.")
    number = Decimal(text)
    if abs(number) > MAX_SAFE_INTEGER:
        raise InvalidRequest(f"{name} must be an integer within +-(2**53 - 1), got {text[:40]}.")
    if number != number.to_integral_value():
        raise InvalidRequest(f"{name} must be an integer, got '{text[:40]}'.")
    return int(number)


def api_enabled(body: object) -> bool:
    """The control plane's ``{"api-enabled": true}`` or ``false``."""
    if not isinstance(body, dict) or set(body) != {"api-enabled"}:
        raise InvalidRequest('The body must be {"api-enabled": true} or {"api-enabled": false}.')
    enabled = body["api-enabled"]
    if not isinstance(enabled, bool):
        raise InvalidRequest(f"api-enabled must be true or false, got {describe(enabled)}.")
    return enabled


def tenant_document(body: object, tenant_id: str) -> Mapping[str, Any]:
    """A fixture-format tenant for the tenant at ``tenant_id``; the fixture schema comes next."""
    if not isinstance(body, dict):
        raise InvalidRequest(
            "The request body must be a JSON object in the fixture's tenant format."
        )
    if body.get("tenant-id", tenant_id) != tenant_id:
        raise InvalidRequest(
            f"tenant-id '{body.get('tenant-id')}' in the body does not match "
            f"'{tenant_id}' in the path."
        )
    return body


def agent_document(body: object, agent_id: str) -> Mapping[str, Any]:
    """A fixture-format agent for the agent at ``agent_id``; the fixture schema comes next."""
    if not isinstance(body, dict):
        raise InvalidRequest(f"{SINGLE_BODY} must be a JSON object, got {describe(body)}.")
    if body.get("agent-id", agent_id) != agent_id:
        raise InvalidRequest(
            f"agent-id '{body.get('agent-id')}' in the body does not match "
            f"'{agent_id}' in the path."
        )
    return body
