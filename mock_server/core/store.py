"""Where the state lives: the storage interface and its in-memory implementation.

The rules (``mock_server.core.backend``) run over a ``StateStore`` and never know which one:
``MemoryStore`` (one process, the default) or ``SQLiteStore`` (``mock_server.core.sqlite_store``:
a file shared by every worker, kept across restarts). A store only keeps and finds; it decides
nothing. Every access happens inside a transaction: ``reading()`` sees one consistent state,
``writing()`` excludes every other writer (threads and processes) until it ends, and a writer
that raises leaves nothing behind, because the rules refuse before they change anything.

``revision()`` is read without a transaction, so that a cache of the state costs one lookup
per request: it changes once every write transaction has committed (``Revision.tenants`` only
when tenant settings changed, so that agent writes keep credentials cached). A value read in a
transaction opened after ``revision()`` returned is at least as new as that revision.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import NamedTuple, Protocol

from mock_server.core.entities import Agent, FixtureTenant, Tenant


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


class StateStore(Protocol):
    """A place for the state that hands out transactions."""

    name: str

    def revision(self) -> Revision | None:
        """The revision of the last committed write (see the module's docstring); None when
        none can be trusted right now (a commit under way in another process): cache nothing."""

    def reading(self) -> AbstractContextManager[StateReader]: ...

    def writing(self) -> AbstractContextManager[StateWriter]: ...

    def close(self) -> None: ...


class MemoryStore:
    """The state in this process's memory, behind one re-entrant lock.

    Agents are replaced, never changed in place, so a reader may keep what it read. The
    fixture is kept as JSON bytes: a fraction of the memory of the parsed document.
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

    @contextmanager
    def reading(self) -> Iterator[StateReader]:
        with self._lock:
            yield self

    @contextmanager
    def writing(self) -> Iterator[StateWriter]:
        with self._lock:
            try:
                yield self
            finally:
                # Bumped even when the writer raises: nothing is rolled back here.
                state, tenants = self._revision
                self._revision = Revision(state + 1, tenants + self._tenants_changed)
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

    def replace_all(self, tenants: Iterable[FixtureTenant], fixture: bytes) -> None:
        self._fixture = fixture
        self._tenants_changed = True
        self._tenants, self._agents, self._by_username = {}, {}, {}
        for built in tenants:
            self.save_tenant(built.tenant, built.agents)

    def set_fixture(self, fixture: bytes) -> None:
        self._fixture = fixture

    def save_tenant(self, tenant: Tenant, agents: Iterable[Agent] | None = None) -> None:
        self._tenants_changed = True
        previous = self._tenants.get(tenant.tenant_id)
        if previous is not None:
            self._unindex(previous)
        self._tenants[tenant.tenant_id] = tenant
        self._by_username.setdefault(tenant.username, []).append(tenant.tenant_id)
        if agents is not None or previous is None:
            self._agents[tenant.tenant_id] = {agent.agent_id: agent for agent in agents or ()}

    def delete_tenant(self, tenant_id: str) -> None:
        tenant = self._tenants.pop(tenant_id, None)
        self._tenants_changed = True
        if tenant is not None:
            self._unindex(tenant)
            del self._agents[tenant_id]

    def save_agent(self, tenant_id: str, agent: Agent) -> None:
        self._agents[tenant_id][agent.agent_id] = agent

    def delete_agent(self, tenant_id: str, agent_id: str) -> None:
        self._agents[tenant_id].pop(agent_id, None)

    def _unindex(self, tenant: Tenant) -> None:
        owners = self._by_username[tenant.username]
        owners.remove(tenant.tenant_id)
        if not owners:
            del self._by_username[tenant.username]
