"""The tenant's events, as the vendor's event streams carry them: an ``AgentStatusChange`` for
every change of an agent's status, whatever made it, and an ``AgentProvChange`` when an agent
is added or removed.

Events are found, not announced: ``EventedStore`` wraps any ``StateStore`` and compares each
agent a write transaction saves or deletes with the one it replaces, so the API's sets, each
applied bulk entry, the control plane's edits and resets all emit the same way, and a refused
change (which writes nothing) emits nothing. The events are appended to the store's log in the
same transaction as the change: they commit with it or not at all, numbered per tenant in
commit order, so every worker reading the shared store sees the same events in the same order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from mock_server.core.entities import Agent, Event, EventDraft, FixtureTenant, Tenant
from mock_server.core.store import Revision, StateReader, StateStore, StateWriter

STATUS_CHANGE = "AgentStatusChange"
PROVISIONING_CHANGE = "AgentProvChange"
INTERACTION = "Interaction"
"""The kind of every call event; which one (``InteractionCreated``...) is its body's ``event``."""
NONE = "none"
"""What the vendor's samples show for a sub-status or reason code that is not set."""


def status_fields(agent: Agent) -> tuple[int, str | None, int | None, int | None]:
    """What an ``AgentStatusChange`` reports; a save that leaves these alone emits nothing."""
    return agent.status, agent.sub_status, agent.list_id, agent.item_id


def status_change(agent: Agent, published_ms: int) -> EventDraft:
    """The vendor's sample: ``newReasonCodeUser`` is ``"<list>=<item>"`` (``"801=1722"``)."""
    reason = NONE if agent.list_id is None else f"{agent.list_id}={agent.item_id}"
    body = {
        "agentId": agent.agent_id,
        "newState": agent.status,
        "newSubState": agent.sub_status or NONE,
        "newSubStateReason": NONE,
        "newReasonCodeUser": reason,
        "statusEventTS": published_ms // 1000,
    }
    return EventDraft(STATUS_CHANGE, agent.agent_id, body)


def provisioning_change(agent_id: str, added: bool) -> EventDraft:
    body = {"agentId": agent_id, "event": "AgentCreated" if added else "AgentDeleted"}
    return EventDraft(PROVISIONING_CHANGE, agent_id, body)


def event_type(event: Event) -> str:
    """The type an ``event-v1/<type>`` topic names: an ``Interaction`` event's own ``event``."""
    if event.kind == INTERACTION:
        named = event.body.get("event")
        if isinstance(named, str):
            return named
    return event.kind


def agent_events(before: Agent | None, after: Agent | None, published_ms: int) -> list[EventDraft]:
    """The events of one agent going from ``before`` to ``after`` (None: absent)."""
    if after is None:
        return [] if before is None else [provisioning_change(before.agent_id, added=False)]
    if before is None:
        return [provisioning_change(after.agent_id, added=True), status_change(after, published_ms)]
    if status_fields(before) != status_fields(after):
        return [status_change(after, published_ms)]
    return []


class EventSignal:
    """Wakes this process's stream readers when a write committed events; readers of other
    processes find them by polling the shared store."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def listen(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` after each commit with events; returns how to stop."""
        with self._lock:
            self._listeners.append(listener)

        def stop() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return stop

    def notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()


class EventWriter(StateWriter, Protocol):
    """A write transaction of an ``EventedStore``: what it changes emits events, and ``emit``
    adds one of its own (the simulator's ``Interaction`` events) in order among them."""

    def emit(self, tenant_id: str, draft: EventDraft) -> None: ...


class EventedStore:
    """A ``StateStore`` whose write transactions log the events of what they change."""

    def __init__(self, store: StateStore, clock: Callable[[], float] = time.time) -> None:
        self.inner = store
        self.name = store.name
        self.clock = clock
        self.signal = EventSignal()

    def revision(self) -> Revision | None:
        return self.inner.revision()

    def reading(self) -> AbstractContextManager[StateReader]:
        return self.inner.reading()

    @contextmanager
    def writing(self) -> Iterator[EventWriter]:
        with self.inner.writing() as writer:
            evented = _EventingWriter(writer, int(self.clock() * 1000))
            yield evented
            evented.flush()
        if evented.emitted:
            self.signal.notify()

    def close(self) -> None:
        self.inner.close()


class _EventingWriter:
    """A writer that notes the events of each agent it saves or deletes, then appends them to
    the store's log (``flush``) at the end of the transaction, in the order they happened."""

    def __init__(self, writer: StateWriter, published_ms: int) -> None:
        self._writer = writer
        self._published_ms = published_ms
        self._drafts: list[tuple[str, EventDraft]] = []
        self.emitted = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)

    def emit(self, tenant_id: str, draft: EventDraft) -> None:
        self._drafts.append((tenant_id, draft))

    def _note(self, tenant_id: str, before: Agent | None, after: Agent | None) -> None:
        for draft in agent_events(before, after, self._published_ms):
            self._drafts.append((tenant_id, draft))

    def _note_agents(self, tenant_id: str, before: Iterable[Agent], after: Iterable[Agent]) -> None:
        old = {agent.agent_id: agent for agent in before}
        new = {agent.agent_id: agent for agent in after}
        for agent_id, agent in new.items():
            self._note(tenant_id, old.get(agent_id), agent)
        for agent_id, agent in old.items():
            if agent_id not in new:
                self._note(tenant_id, agent, None)

    def save_agent(self, tenant_id: str, agent: Agent) -> None:
        before = self._writer.agent(tenant_id, agent.agent_id)
        self._writer.save_agent(tenant_id, agent)
        self._note(tenant_id, before, agent)

    def delete_agent(self, tenant_id: str, agent_id: str) -> None:
        before = self._writer.agent(tenant_id, agent_id)
        self._writer.delete_agent(tenant_id, agent_id)
        self._note(tenant_id, before, None)

    def save_tenant(self, tenant: Tenant, agents: Iterable[Agent] | None = None) -> None:
        if agents is None:
            self._writer.save_tenant(tenant)
            return
        agents = list(agents)
        before = self._writer.agents(tenant.tenant_id)
        self._writer.save_tenant(tenant, agents)
        self._note_agents(tenant.tenant_id, before, agents)

    def delete_tenant(self, tenant_id: str) -> None:
        before = self._writer.agents(tenant_id)
        self._writer.delete_tenant(tenant_id)
        self._note_agents(tenant_id, before, ())

    def replace_all(self, tenants: Iterable[FixtureTenant], fixture: bytes) -> None:
        tenants = list(tenants)
        before = {
            tenant_id: self._writer.agents(tenant_id) for tenant_id in self._writer.tenant_ids()
        }
        self._writer.replace_all(tenants, fixture)
        for built in tenants:
            self._note_agents(
                built.tenant.tenant_id, before.pop(built.tenant.tenant_id, ()), built.agents
            )
        for tenant_id, agents in before.items():
            self._note_agents(tenant_id, agents, ())

    def flush(self) -> None:
        """Append what was noted, per tenant in the order it happened."""
        by_tenant: dict[str, list[EventDraft]] = {}
        for tenant_id, draft in self._drafts:
            by_tenant.setdefault(tenant_id, []).append(draft)
        for tenant_id, drafts in by_tenant.items():
            self._writer.append_events(tenant_id, drafts, self._published_ms)
        self.emitted = bool(self._drafts)
        self._drafts = []
