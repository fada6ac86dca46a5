"""The bulk set: which method a platform takes, and its results put back in the caller's order.

The API reference documents POST, the developer guide PUT; a platform takes one of them. A
refusal that may mean "wrong method" changed nothing, so the other method may be tried.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import requests

from client.models import AGENT_ID, ChangeOutcome, StatusChange
from client.responses import json_object, unexpected

BulkMethod = Literal["POST", "PUT"]


def other_method(method: BulkMethod) -> BulkMethod:
    return "PUT" if method == "POST" else "POST"


def method_refused(method: BulkMethod, status: int | None) -> bool:
    """Whether a bulk refusal may mean "wrong method" rather than "wrong body".

    405 always does. A PUT on a POST-only platform reaches the single set of an agent named
    "bulk", refused with 400 (body) or 404 (agent). None of these changed anything.
    """
    return status == 405 or (method == "PUT" and status in (400, 404))


def method_hints(method: BulkMethod) -> dict[int, str]:
    """What to add to each refusal of ``method`` that may mean "wrong method"."""
    hint = (
        f"if this platform takes {other_method(method)} for bulk, set "
        f"bulk_method={other_method(method)!r} or bulk_method_fallback=True"
    )
    return {status: hint for status in (400, 404, 405) if method_refused(method, status)}


def chunk_outcomes(
    chunk: Sequence[StatusChange], response: requests.Response
) -> list[ChangeOutcome]:
    """The outcome of each change of one bulk request, from its 207 (or 200) answer."""
    if response.status_code not in (200, 207):
        raise unexpected(response, f"a bulk set answered {response.status_code}, not 207")
    data = json_object(response).get("data")
    if not isinstance(data, list):
        raise unexpected(response, "the bulk result has no 'data' array")
    return _merge(chunk, [item for item in data if isinstance(item, Mapping)])


def _merge(chunk: Sequence[StatusChange], results: list[Mapping[str, Any]]) -> list[ChangeOutcome]:
    """Results back onto the requested changes: by position, else by agent id in order."""
    if len(results) == len(chunk) and all(
        result.get(AGENT_ID) == change.agent_id
        for change, result in zip(chunk, results, strict=True)
    ):
        return [
            ChangeOutcome.from_wire(result, change)
            for change, result in zip(chunk, results, strict=True)
        ]
    by_agent: defaultdict[object, deque[Mapping[str, Any]]] = defaultdict(deque)
    for result in results:
        by_agent[result.get(AGENT_ID)].append(result)
    merged = []
    for change in chunk:
        queue = by_agent.get(change.agent_id)
        if queue:
            merged.append(ChangeOutcome.from_wire(queue.popleft(), change))
        else:
            merged.append(
                ChangeOutcome(
                    change.agent_id,
                    None,
                    reason="The service returned no result for this entry.",
                    change=change,
                )
            )
    return merged
