"""The recording's tenants and agents onto the fixture's, as the package's docstring says: the
mappings, chosen from what the recording shows, and the paths and bodies they rewrite."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mock_server.live.recording import Message, answered
from mock_server.testdouble.journal import bulk_agent_ids
from schemas.contract import is_json_media_type
from schemas.rules import AgentStatus
from schemas.wire import AGENT, API_BASE, integral, path_ids

ABSENT = -1
"""A recorded agent the upstream answered 404 for."""
FIRST_SEEN_IN_WRITE = int(AgentStatus.WAIT_TRANSACT)
_TEMPLATE = (API_BASE + AGENT).split("/")
TENANT_SEGMENT = _TEMPLATE.index("{tenantId}")
AGENT_SEGMENT = _TEMPLATE.index("{agentId}")
"""Where the tenant and the agent of a path split at ``/`` sit: where the API's template has
them (``path_ids`` says whether a path names them, and which they are)."""


class UsageError(Exception):
    """The options do not fit the recording or the fixture; exit status 2."""


def first_sightings(exchanges: Iterable[dict[str, Any]]) -> dict[str, int | None]:
    """Each recorded agent's status when the recording first shows it: from a read, ABSENT
    when the upstream did not know it, None when first seen in a successful write."""
    seen: dict[str, int | None] = {}
    for _, exchange in answered(list(exchanges)):
        _, agent = path_ids(exchange["path"])
        status = exchange["status"]
        response = (exchange.get("response") or {}).get("body")
        request = (exchange.get("request") or {}).get("body")
        if exchange["method"] == "GET" and status == 200 and isinstance(response, dict):
            entries = response.get("data") if agent is None else [response]
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and isinstance(entry.get("agent-id"), str):
                    seen.setdefault(entry["agent-id"], integral(entry.get("agent-status")))
        elif agent is not None:
            seen.setdefault(agent, ABSENT if status == 404 else None)
        else:
            results = response.get("data") if isinstance(response, dict) else None
            for index, agent_id in enumerate(bulk_agent_ids(request)):
                result = (
                    results[index] if isinstance(results, list) and index < len(results) else {}
                )
                missing = isinstance(result, dict) and result.get("change-status") == 404
                seen.setdefault(agent_id, ABSENT if missing else None)
    return seen


def map_agents(
    sightings: Mapping[str, int | None],
    fixture_agents: Sequence[Mapping[str, Any]],
    chosen: Mapping[str, str],
) -> dict[str, str]:
    """Live agent id → fixture agent id, as the package's docstring describes."""
    known = {str(agent["agent-id"]): agent.get("agent-status") for agent in fixture_agents}
    used = {agent for agent in sightings if agent in known} | set(chosen.values())
    mapping: dict[str, str] = {}
    for agent, status in sightings.items():
        if agent in chosen:
            mapping[agent] = chosen[agent]
            continue
        if agent in known or status == ABSENT:
            continue
        wanted = FIRST_SEEN_IN_WRITE if status is None else status
        same = [candidate for candidate, its in known.items() if its == wanted]
        fresh = [candidate for candidate in same if candidate not in used]
        if fresh or same:
            mapping[agent] = (fresh or same)[0]
            used.add(mapping[agent])
    return mapping


def map_tenants(
    exchanges: Sequence[Mapping[str, Any]], document: Mapping[str, Any], chosen: Mapping[str, str]
) -> tuple[dict[str, str], Mapping[str, Any]]:
    """Recorded tenant → fixture tenant, and the fixture tenant whose credentials replay."""
    tenants = {str(tenant["tenant-id"]): tenant for tenant in document["tenants"]}
    if not tenants:
        raise UsageError("the fixture has no tenant to replay against")
    mapping = dict(chosen)
    recorded = [tenant for tenant, _ in (path_ids(e["path"]) for e in exchanges) if tenant]
    home = recorded[0] if recorded else None
    if home is not None:
        mapping.setdefault(home, next(iter(tenants)))
    for target in mapping.values():
        if target not in tenants:
            raise UsageError(f"--tenant-map names {target!r}, which the fixture does not have")
    return mapping, tenants[mapping[home]] if home is not None else next(iter(tenants.values()))


@dataclass(frozen=True)
class IdMap:
    """Recorded id → fixture id, for tenants and for agents; an unmapped id stays as it is."""

    tenants: dict[str, str]
    agents: dict[str, str]

    def path(self, recorded: str) -> str:
        """The recorded path with its tenant and its agent mapped."""
        tenant, agent = path_ids(recorded)
        if tenant is None:
            return recorded
        parts = recorded.split("/")
        parts[TENANT_SEGMENT] = self.tenants.get(tenant, tenant)
        if agent is not None:
            parts[AGENT_SEGMENT] = self.agents.get(agent, agent)
        return "/".join(parts)

    def body(self, request: Message) -> bytes:
        """The recorded request body with the agents of a bulk set mapped."""
        if not request.body or not is_json_media_type(request.media_type):
            return request.body
        try:
            value = json.loads(request.body)
        except ValueError:
            return request.body
        if not bulk_agent_ids(value):
            return request.body
        for entry in value["agents"]:
            if isinstance(entry, dict) and isinstance(entry.get("agent-id"), str):
                entry["agent-id"] = self.agents.get(entry["agent-id"], entry["agent-id"])
        return json.dumps(value).encode("utf-8")
