"""The control plane's edits of the state: what a test or a script does that the API cannot.

Fixtures loaded and reset, tenants and agents put (from fixture-format documents, validated
against the fixture schema here) and deleted, the API switched on or off, a token rotated.
``AgentStatusBackend`` (``mock_server.core.backend``) is this plus the API's rules; both work
through one ``StateStore``, and every write runs in one of its transactions.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson

from mock_server.core.entities import Agent, FixtureTenant, Tenant
from mock_server.core.errors import AgentNotFound, TenantNotFound
from mock_server.core.events import EventedStore
from mock_server.core.fixtures import build_agent, build_tenants, username_taken
from mock_server.core.store import MemoryStore, StateReader, StateStore, StateWriter

DELETED_LOG_SECONDS = 60
"""How long a deleted tenant's event log outlives it, for readers still connected to see its
agents' ``AgentDeleted``; the next deletion after that lets it go, numbering and all."""


class StateEditor:
    """One emulator's state in a store, and the control plane's edits of it."""

    def __init__(self, fixture: Mapping[str, Any], store: StateStore | None = None) -> None:
        """Seed ``store`` from ``fixture`` unless it already holds a state (a restart).

        Either way ``fixture`` becomes what a reset restores.
        """
        self._store = EventedStore(MemoryStore() if store is None else store)
        encoded = orjson.dumps(fixture)
        # Loading the fixture is where the state begins, not a change: it emits no events.
        with self._store.inner.writing() as state:
            if state.fixture() is None:
                state.replace_all(build_tenants(fixture).values(), encoded)
            else:
                state.set_fixture(encoded)

    def reset(self, tenant_id: str | None = None) -> None:
        """Back to the loaded fixture: every tenant, or just one (scoped reset)."""
        with self._store.writing() as state:
            self._let_go_of_old_logs(state)
            fixture = state.fixture() or b'{"tenants": []}'
            fresh = build_tenants(orjson.loads(fixture))
            if tenant_id is None:
                state.replace_all(fresh.values(), fixture)
            elif tenant_id in fresh:
                state.save_tenant(fresh[tenant_id].tenant, fresh[tenant_id].agents)
            elif state.tenant(tenant_id) is not None:
                state.delete_tenant(tenant_id)
            else:
                raise TenantNotFound(tenant_id)

    def load(self, fixture: Mapping[str, Any]) -> None:
        """Replace the fixture (and so the state) wholesale, as a hot reload does."""
        fresh = build_tenants(fixture)
        with self._store.writing() as state:
            self._let_go_of_old_logs(state)
            state.replace_all(fresh.values(), orjson.dumps(fixture))

    def put_tenant(self, tenant_id: str, document: Mapping[str, Any]) -> bool:
        """Create or replace one tenant from a fixture-format tenant; True when created."""
        return self.put_built_tenant(
            build_tenants({"tenants": [{**document, "tenant-id": tenant_id}]})[tenant_id]
        )

    def put_built_tenant(self, built: FixtureTenant) -> bool:
        """``put_tenant`` for a tenant already built (so checked)."""
        with self._store.writing() as state:
            return _save_built_tenant(state, built)

    def begin_tenant(self, built: FixtureTenant) -> None:
        """A tenant (built, so checked) whose state begins here, as a loaded fixture's does:
        with no events, so that its log holds only what happens to it next. The pytest
        plugin's tenant of one test, copied from one built once."""
        with self._store.inner.writing() as state:
            _save_built_tenant(state, built)

    def discard_tenant(self, tenant_id: str) -> None:
        """The tenant, if still there, and its history (``drop_history``: events, features'
        records of it) gone without an event, as if it had never been: the pytest plugin's
        tenant once its test is over (its id is never used again)."""
        with self._store.inner.writing() as state:
            if state.tenant(tenant_id) is not None:
                state.delete_tenant(tenant_id)
            state.drop_history(tenant_id)

    def delete_tenant(self, tenant_id: str) -> None:
        with self._store.writing() as state:
            tenant_of(state, tenant_id)
            self._let_go_of_old_logs(state)
            state.delete_tenant(tenant_id)

    def _let_go_of_old_logs(self, state: StateWriter) -> None:
        """In a write that deletes tenants, before it does: drop the history (log, records)
        of those deleted more than ``DELETED_LOG_SECONDS`` ago (by their newest event, the
        ``AgentDeleted``), so that tenants created and deleted test after test on a shared
        emulator do not keep memory or disk for good."""
        cutoff_ms = int((self._store.clock() - DELETED_LOG_SECONDS) * 1000)
        for tenant_id, newest_ms in state.orphan_event_logs():
            if newest_ms < cutoff_ms:
                state.drop_history(tenant_id)

    def tenant_ids(self) -> list[str]:
        with self._store.reading() as state:
            return state.tenant_ids()

    def tenant_state(self, tenant_id: str) -> dict[str, Any]:
        """The tenant and its agents in the fixture format, without its token."""
        with self._store.reading() as state:
            return tenant_of(state, tenant_id).to_state(state.agents(tenant_id))

    def api_credentials(self, tenant_id: str) -> tuple[str, str]:
        """The tenant's username and action token: what the dashboard signs its calls to the
        API with, on the server, so that the page never holds the token."""
        with self._store.reading() as state:
            tenant = tenant_of(state, tenant_id)
            return tenant.username, tenant.token

    def set_api_enabled(self, tenant_id: str, enabled: bool) -> dict[str, Any]:
        with self._store.writing() as state:
            tenant = replace(tenant_of(state, tenant_id), api_enabled=enabled)
            state.save_tenant(tenant)
            return tenant.to_state(state.agents(tenant_id))

    def rotate_token(self, tenant_id: str) -> str:
        """A new action token; the old one stops working at once, as the guide warns."""
        token = secrets.token_urlsafe(24)
        with self._store.writing() as state:
            state.save_tenant(replace(tenant_of(state, tenant_id), token=token))
        return token

    def put_agent(
        self, tenant_id: str, agent_id: str, document: Mapping[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """Create or replace an agent from a fixture-format agent, in any status; True when
        created. The document is checked against the fixture schema and the tenant's codes."""
        with self._store.writing() as state:
            tenant = tenant_of(state, tenant_id)
            agent = build_agent({**document, "agent-id": agent_id}, tenant, where="$")
            created = state.agent(tenant_id, agent_id) is None
            state.save_agent(tenant_id, agent)
            return agent.to_fixture(), created

    def delete_agent(self, tenant_id: str, agent_id: str) -> None:
        with self._store.writing() as state:
            tenant_of(state, tenant_id)
            agent_of(state, tenant_id, agent_id)
            state.delete_agent(tenant_id, agent_id)


def _save_built_tenant(state: StateWriter, built: FixtureTenant) -> bool:
    """Create or replace the tenant, refusing a username another tenant has; True when
    created."""
    username = built.tenant.username
    tenant_id = built.tenant.tenant_id
    if any(other.tenant_id != tenant_id for other in state.tenants_by_username(username)):
        raise username_taken("$", username)
    created = state.tenant(tenant_id) is None
    state.save_tenant(built.tenant, built.agents)
    return created


def tenant_of(state: StateReader, tenant_id: str) -> Tenant:
    """The tenant, or the 404 naming it."""
    tenant = state.tenant(tenant_id)
    if tenant is None:
        raise TenantNotFound(tenant_id)
    return tenant


def agent_of(state: StateReader, tenant_id: str, agent_id: str) -> Agent:
    """The agent, or the 404 naming it."""
    agent = state.agent(tenant_id, agent_id)
    if agent is None:
        raise AgentNotFound(agent_id)
    return agent
