"""Where the state lives: the storage interface and its in-memory implementation.

The rules (``mock_server.core.backend``) run over a ``StateStore`` and never know which one:
``MemoryStore`` (one process, the default) or ``SQLiteStore`` (``mock_server.core.sqlite_store``:
a file shared by every worker, kept across restarts). A store only keeps and finds; it decides
nothing. Every access happens inside a transaction: ``reading()`` sees one consistent state,
``writing()`` excludes every other writer (threads and processes) until it ends, and is all or
nothing: a writer that raises leaves nothing behind, whatever it changed before raising.

``revision()`` is read without a transaction, so that a cache of the state costs one lookup
per request: it changes once every write transaction has committed (``Revision.tenants`` only
when tenant settings changed, so that agent writes keep credentials cached). A value read in a
transaction opened after ``revision()`` returned is at least as new as that revision.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import NamedTuple, Protocol

from mock_server.core.entities import (
    EVENT_LOG_SIZE,
    Agent,
    Event,
    EventDraft,
    FixtureTenant,
    Tenant,
)


def tenant_record_key(feature: str, tenant_id: str) -> str:
    """The key of ``feature``'s record of one tenant, which goes with the tenant's history
    (``drop_history``); ``feature`` holds no colon."""
    return feature + tenant_record_suffix(tenant_id)


def tenant_record_suffix(tenant_id: str) -> str:
    """How the key of every record of the tenant ends: no tenant id holds a colon (the
    fixture schema's ``tenant-id`` pattern), so no other tenant's key ends so."""
    return f":{tenant_id}"


class Revision(NamedTuple):
    """Counters that only grow: ``state`` on every committed write, ``tenants`` on writes that
    created, changed or removed a tenant's settings (credentials, groups, status codes)."""

    state: int
    tenants: int


class StateReader(Protocol):
    """What a transaction can read. Returned objects are values: change them only via a writer."""

    def fixture(self) -> bytes | None:
        """The fixture document (JSON) that a reset restores; None in a store never seeded."""

    def tenant_ids(self) -> list[str]: ...

    def tenant(self, tenant_id: str) -> Tenant | None: ...

    def tenants_by_username(self, username: str) -> list[Tenant]:
        """The tenants whose username this is: an index lookup, never a scan."""

    def agent(self, tenant_id: str, agent_id: str) -> Agent | None: ...

    def agents(self, tenant_id: str) -> list[Agent]:
        """The tenant's agents in fixture order (new agents last)."""

    def events_after(self, tenant_id: str, sequence: int, limit: int) -> list[Event]:
        """Up to ``limit`` of the tenant's logged events numbered above ``sequence``, in order
        (the oldest kept first when ``sequence`` is older than the log)."""

    def last_event(self, tenant_id: str) -> int:
        """The number of the tenant's newest event; for a tenant without a log, the highest
        number a dropped log held (``drop_history``), or 0 before any."""

    def orphan_event_logs(self) -> list[tuple[str, int]]:
        """Each tenant no longer there whose events are still kept, with the time (ms) of
        its newest event."""

    def record(self, key: str) -> bytes | None:
        """What ``put_record`` kept under ``key`` (a feature's own state, such as the
        simulator's or the legacy stream's subscriptions, shared like the rest); None if none."""


class StateWriter(StateReader, Protocol):
    """What a write transaction can change."""

    def replace_all(self, tenants: Iterable[FixtureTenant], fixture: bytes) -> None:
        """Drop every tenant, store these and remember ``fixture`` for the next reset."""

    def set_fixture(self, fixture: bytes) -> None: ...

    def save_tenant(self, tenant: Tenant, agents: Iterable[Agent] | None = None) -> None:
        """Create or replace a tenant's settings; ``agents`` not None replaces its agents too."""

    def delete_tenant(self, tenant_id: str) -> None: ...

    def save_agent(self, tenant_id: str, agent: Agent) -> None:
        """Create (last in order) or replace (same place in order) one agent."""

    def delete_agent(self, tenant_id: str, agent_id: str) -> None: ...

    def append_events(
        self, tenant_id: str, drafts: Iterable[EventDraft], published_ms: int
    ) -> None:
        """Log these events after the tenant's newest, numbered on from it, keeping the
        newest ``EVENT_LOG_SIZE``; a tenant deleted and created again numbers on too."""

    def drop_history(self, tenant_id: str) -> None:
        """Forget what a tenant leaves behind it: its events, and the records features keep
        of it (``tenant_record_key``). The events' numbers are not given again: a tenant
        without a log numbers on above the highest any dropped log held, so a reader's cursor
        stays valid for a tenant created again; one number for the store, not one per tenant."""

    def put_record(self, key: str, value: bytes | None) -> None:
        """Keep ``value`` under ``key`` (None removes it); resets leave records alone."""


class StateStore(Protocol):
    """A place for the state that hands out transactions."""

    name: str

    def revision(self) -> Revision | None:
        """The revision of the last committed write (see the module's docstring); None when
        none can be trusted right now (a commit under way in another process): cache nothing."""

    def reading(self) -> AbstractContextManager[StateReader]: ...

    def writing(self) -> AbstractContextManager[StateWriter]:
        """The one writer; when its block raises, every change it made is undone."""

    def close(self) -> None: ...


class MemoryStore:
    """The state in this process's memory, behind one re-entrant lock.

    Agents are replaced, never changed in place, so a reader may keep what it read. The
    fixture is kept as JSON bytes: a fraction of the memory of the parsed document. A write
    transaction logs how to undo each change as it makes it (for a status change, putting the
    previous agent back), and a writer that raises has the log run backwards.
    """

    name = "memory"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._fixture: bytes | None = None
        self._tenants: dict[str, Tenant] = {}
        self._agents: dict[str, dict[str, Agent]] = {}
        self._by_username: dict[str, list[str]] = {}
        self._revision = Revision(0, 0)
        self._tenants_changed = False
        self._undo: list[Callable[[], None]] = []
        self._events: dict[str, deque[Event]] = {}
        self._records: dict[str, bytes] = {}
        self._last_event: dict[str, int] = {}
        self._dropped_up_to = 0

    @contextmanager
    def reading(self) -> Iterator[StateReader]:
        with self._lock:
            yield self

    @contextmanager
    def writing(self) -> Iterator[StateWriter]:
        with self._lock:
            try:
                yield self
            except BaseException:
                while self._undo:
                    self._undo.pop()()
                raise
            else:
                # Only a committed write moves the revision, as in SQLiteStore.
                state, tenants = self._revision
                self._revision = Revision(state + 1, tenants + self._tenants_changed)
            finally:
                self._undo.clear()
                self._tenants_changed = False

    def close(self) -> None:
        """Nothing to release: the state goes with the process."""

    def fixture(self) -> bytes | None:
        return self._fixture

    def revision(self) -> Revision | None:
        return self._revision

    def tenant_ids(self) -> list[str]:
        return list(self._tenants)

    def tenant(self, tenant_id: str) -> Tenant | None:
        return self._tenants.get(tenant_id)

    def tenants_by_username(self, username: str) -> list[Tenant]:
        return [self._tenants[tenant_id] for tenant_id in self._by_username.get(username, ())]

    def agent(self, tenant_id: str, agent_id: str) -> Agent | None:
        agents = self._agents.get(tenant_id)
        return None if agents is None else agents.get(agent_id)

    def agents(self, tenant_id: str) -> list[Agent]:
        return list(self._agents.get(tenant_id, {}).values())

    def events_after(self, tenant_id: str, sequence: int, limit: int) -> list[Event]:
        log = self._events.get(tenant_id)
        if not log or log[-1].sequence <= sequence:
            return []
        skip = max(0, sequence - log[0].sequence + 1)
        return [log[index] for index in range(skip, min(len(log), skip + limit))]

    def last_event(self, tenant_id: str) -> int:
        return self._last_event.get(tenant_id, self._dropped_up_to)

    def orphan_event_logs(self) -> list[tuple[str, int]]:
        return [
            (tenant_id, log[-1].published_ms if log else 0)
            for tenant_id, log in self._events.items()
            if tenant_id not in self._tenants
        ]

    def record(self, key: str) -> bytes | None:
        return self._records.get(key)

    def put_record(self, key: str, value: bytes | None) -> None:
        previous = self._records.get(key)

        def undo() -> None:
            if previous is None:
                self._records.pop(key, None)
            else:
                self._records[key] = previous

        self._undo.append(undo)
        if value is None:
            self._records.pop(key, None)
        else:
            self._records[key] = value

    def append_events(
        self, tenant_id: str, drafts: Iterable[EventDraft], published_ms: int
    ) -> None:
        log = self._events.setdefault(tenant_id, deque(maxlen=EVENT_LOG_SIZE))
        drafts = list(drafts)
        last = self.last_event(tenant_id)
        # Undone by taking the new events off and putting back the oldest they pushed out.
        pushed_out = [
            log[index]
            for index in range(min(len(log), max(0, len(log) + len(drafts) - EVENT_LOG_SIZE)))
        ]
        previous_last = last

        def undo() -> None:
            for _ in range(min(len(drafts), len(log))):
                log.pop()
            log.extendleft(reversed(pushed_out))
            self._last_event[tenant_id] = previous_last

        self._undo.append(undo)
        for draft in drafts:
            last += 1
            log.append(Event(tenant_id, last, published_ms, draft.kind, draft.agent_id, draft.body))
        self._last_event[tenant_id] = last

    def drop_history(self, tenant_id: str) -> None:
        log, last = self._events.pop(tenant_id, None), self._last_event.pop(tenant_id, None)
        dropped_up_to = self._dropped_up_to
        self._dropped_up_to = max(dropped_up_to, last or 0)
        suffix = tenant_record_suffix(tenant_id)
        records = {key: value for key, value in self._records.items() if key.endswith(suffix)}
        for key in records:
            del self._records[key]

        def undo() -> None:
            self._dropped_up_to = dropped_up_to
            self._records.update(records)
            if log is not None:
                self._events[tenant_id] = log
            if last is not None:
                self._last_event[tenant_id] = last

        self._undo.append(undo)

    def replace_all(self, tenants: Iterable[FixtureTenant], fixture: bytes) -> None:
        self._remember_tenants()
        self._fixture = fixture
        self._tenants_changed = True
        self._tenants, self._agents, self._by_username = {}, {}, {}
        for built in tenants:
            self._put_tenant(built.tenant, built.agents)

    def set_fixture(self, fixture: bytes) -> None:
        self._remember_tenants()
        self._fixture = fixture

    def save_tenant(self, tenant: Tenant, agents: Iterable[Agent] | None = None) -> None:
        self._remember_tenants()
        self._put_tenant(tenant, agents)

    def _put_tenant(self, tenant: Tenant, agents: Iterable[Agent] | None) -> None:
        self._tenants_changed = True
        previous = self._tenants.get(tenant.tenant_id)
        if previous is not None:
            self._unindex(previous)
        self._tenants[tenant.tenant_id] = tenant
        self._by_username.setdefault(tenant.username, []).append(tenant.tenant_id)
        if agents is not None or previous is None:
            self._agents[tenant.tenant_id] = {agent.agent_id: agent for agent in agents or ()}

    def delete_tenant(self, tenant_id: str) -> None:
        self._remember_tenants()
        tenant = self._tenants.pop(tenant_id, None)
        self._tenants_changed = True
        if tenant is not None:
            self._unindex(tenant)
            del self._agents[tenant_id]

    def save_agent(self, tenant_id: str, agent: Agent) -> None:
        agents = self._agents[tenant_id]
        previous = agents.get(agent.agent_id)

        def undo() -> None:
            if previous is None:  # it was new, so last in order: removing it restores the order
                del agents[agent.agent_id]
            else:  # it replaced one in its place
                agents[agent.agent_id] = previous

        self._undo.append(undo)
        agents[agent.agent_id] = agent

    def delete_agent(self, tenant_id: str, agent_id: str) -> None:
        agents = self._agents[tenant_id]
        if agent_id not in agents:
            return
        before = dict(agents)  # a copy to restore in place: the agent's position with it

        def undo() -> None:
            agents.clear()
            agents.update(before)

        self._undo.append(undo)
        del agents[agent_id]

    def _remember_tenants(self) -> None:
        """Log how to restore the tenants, their agent maps and the fixture as they are now.

        Shallow copies: an agent map changed later in the transaction has its own undo entries,
        which run first."""
        saved = (
            self._fixture,
            dict(self._tenants),
            dict(self._agents),
            {username: list(owners) for username, owners in self._by_username.items()},
        )

        def undo() -> None:
            self._fixture, self._tenants, self._agents, self._by_username = saved

        self._undo.append(undo)

    def _unindex(self, tenant: Tenant) -> None:
        owners = self._by_username[tenant.username]
        owners.remove(tenant.tenant_id)
        if not owners:
            del self._by_username[tenant.username]
