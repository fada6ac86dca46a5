"""The entities of an emulator's state: plain data, no behaviour beyond how they are shown.

They are values: frozen, their maps read-only (``MappingProxyType``), so a reader, a store and
a cache can share one object and none of them can change what the others see.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from schemas.wire import STATUS_CODE_FIELDS

LIST_FIELD, ITEM_FIELD, SHORT_FIELD = STATUS_CODE_FIELDS


@dataclass(frozen=True, slots=True)
class StatusCodeList:
    id: int
    name: str | None
    items: Mapping[int, str]
    """item id -> short code"""
    descriptions: Mapping[int, str]
    """item id -> description, for the items that have one"""


@dataclass(frozen=True, slots=True)
class Group:
    id: int
    name: str | None
    status_code_lists: tuple[int, ...]

    @property
    def label(self) -> str:
        return f"{self.id} ({self.name})" if self.name else str(self.id)


@dataclass(frozen=True, slots=True)
class Agent:
    agent_id: str
    group_id: int
    status: int
    name: str | None = None
    sub_status: str | None = None
    list_id: int | None = None
    item_id: int | None = None
    short_code: str | None = None

    def to_api(self) -> dict[str, Any]:
        """The agent as the API shows it, in the guide's field order; absent fields omitted."""
        body: dict[str, Any] = {"agent-id": self.agent_id, "agent-status": self.status}
        if self.list_id is not None:
            body[LIST_FIELD] = self.list_id
        if self.item_id is not None:
            body[ITEM_FIELD] = self.item_id
        if self.short_code is not None:
            body[SHORT_FIELD] = self.short_code
        if self.name is not None:
            body["name"] = self.name
        if self.sub_status is not None:
            body["agent-sub-status"] = self.sub_status
        return body

    def to_fixture(self) -> dict[str, Any]:
        """The agent in the fixture format: the API shape plus ``group-id``."""
        return {**self.to_api(), "group-id": self.group_id}


@dataclass(frozen=True, slots=True)
class Tenant:
    """A tenant's settings. Its agents live beside it in the store, so that one agent can be
    read or written without loading the rest (a tenant may hold 50,000)."""

    tenant_id: str
    username: str
    token: str
    api_enabled: bool
    status_code_lists: Mapping[int, StatusCodeList]
    groups: Mapping[int, Group]

    def to_state(self, agents: Iterable[Agent]) -> dict[str, Any]:
        """The tenant in the fixture format, without its token (secrets stay out of reads)."""
        return {
            "tenant-id": self.tenant_id,
            "username": self.username,
            "api-enabled": self.api_enabled,
            "status-code-lists": [
                {
                    "id": code_list.id,
                    **({"name": code_list.name} if code_list.name is not None else {}),
                    "items": [
                        {
                            "id": item_id,
                            "short-code": short_code,
                            **(
                                {"description": code_list.descriptions[item_id]}
                                if item_id in code_list.descriptions
                                else {}
                            ),
                        }
                        for item_id, short_code in code_list.items.items()
                    ],
                }
                for code_list in self.status_code_lists.values()
            ],
            "groups": [
                {
                    "id": group.id,
                    **({"name": group.name} if group.name is not None else {}),
                    "status-code-lists": list(group.status_code_lists),
                }
                for group in self.groups.values()
            ],
            "agents": [agent.to_fixture() for agent in agents],
        }


@dataclass(frozen=True, slots=True)
class FixtureTenant:
    """A tenant with its agents in fixture order: what a fixture seeds a store with."""

    tenant: Tenant
    agents: tuple[Agent, ...]


INSTANCE_ID = "agentstatus-mock"
"""``msgInfo.instanceId`` of every event: the vendor names its server instance there."""
EVENT_LOG_SIZE = 10_000
"""Events a store keeps per tenant: a reader resuming from an older one starts at the oldest."""


@dataclass(frozen=True, slots=True)
class EventDraft:
    """An event before the store numbers it."""

    kind: str
    agent_id: str
    body: Mapping[str, Any]
    """The event's own fields, without ``msgInfo`` (the store's numbering adds it)."""


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a tenant's log: ``sequence`` counts from 1 and never repeats."""

    tenant_id: str
    sequence: int
    published_ms: int
    kind: str
    agent_id: str
    body: Mapping[str, Any]

    def payload(self) -> dict[str, Any]:
        """The event as the vendor's streams send it: ``{"AgentStatusChange": {...}}``."""
        info = {
            "instanceId": INSTANCE_ID,
            "sequenceId": self.sequence,
            "timestamp": self.published_ms,
        }
        return {self.kind: {**self.body, "msgInfo": info}}
