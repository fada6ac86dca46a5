"""The Agent Status API's rules, applied to the state. No Flask, and no HTTP either.

``AgentStatusBackend`` is the whole state of an emulator: the control plane's edits
(``mock_server.core.editor``) and one method per API operation. Its arguments are typed values
(``StatusChange``, ``PageRequest``), parsed by the HTTP layer (``mock_server.http.parsing``),
and it answers with entities and frozen results, which that layer renders. Every refusal is an
``ApiError`` raised before anything changes, so a refused request changes nothing. Every write
runs in one of the store's write transactions, so concurrent writes to one agent apply one after
the other, across threads and worker processes, and each bulk entry is applied atomically.
"""

from __future__ import annotations

import base64
import hmac
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mock_server.core.caches import CACHED_ENTRIES, RevisionCache
from mock_server.core.editor import StateEditor, agent_of, tenant_of
from mock_server.core.entities import Agent, Event, Tenant
from mock_server.core.errors import (
    AgentNotFound,
    ApiError,
    ApiNotEnabled,
    AuthenticationFailed,
    InvalidRequest,
    TenantForbidden,
)
from mock_server.core.events import EventedStore, EventSignal
from mock_server.core.profiles import DEFAULT, Profile
from mock_server.core.store import StateStore, StateWriter
from schemas.rules import (
    LOGGED_OUT_STATUS_CODE_ITEM_ID,
    LOGGED_OUT_STATUS_CODE_LIST_ID,
    AgentStatus,
    transition_refusal,
)
from schemas.wire import STATUS_CODE_FIELDS


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A request to change one agent, its fields typed. ``status`` None keeps the current status."""

    status: AgentStatus | None
    list_id: int | None
    item_id: int | None
    short_code: str | None


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    """The result of one bulk entry: its agent id, its own status and the reason."""

    agent_id: str
    change_status: int
    reason: str


@dataclass(frozen=True, slots=True)
class PageRequest:
    """The reference's paging: ``size`` agents (1 to ``MAX_PAGE_SIZE``) from page ``index``."""

    size: int
    index: int


@dataclass(frozen=True, slots=True)
class PageResult:
    """The reference's PageResult object: where a page is among them all."""

    size: int
    total_elements: int
    total_pages: int
    index: int


@dataclass(frozen=True, slots=True)
class AgentPage:
    """Agents in fixture order; ``page`` None when the list was not paged."""

    agents: tuple[Agent, ...]
    page: PageResult | None


def pairing_refusal(change: StatusChange) -> str | None:
    """Why the status-code fields do not go together (list and item both or neither, a short
    code only with them), or None. Judged per change: a bulk entry's own 400, not the request's."""
    list_field, item_field, short_field = STATUS_CODE_FIELDS
    if (change.list_id is None) != (change.item_id is None):
        given, missing = (
            (list_field, item_field) if change.item_id is None else (item_field, list_field)
        )
        return f"{missing} is required when {given} is given."
    if change.short_code is not None and change.item_id is None:
        return f"{list_field} and {item_field} are required when {short_field} is given."
    return None


class AgentStatusBackend(StateEditor):
    """All tenants of one emulator, the rules applied to them, and the control-plane edits.

    The state lives in a ``StateStore`` (memory by default, SQLite for several workers); this
    class is the only place where the rules are decided.
    """

    def __init__(
        self,
        fixture: Mapping[str, Any],
        profile: Profile = DEFAULT,
        store: StateStore | None = None,
    ) -> None:
        self.profile = profile
        self._credentials: RevisionCache[str, tuple[Tenant, ...]] = RevisionCache(CACHED_ENTRIES)
        """The tenants of each username, keyed on the tenants' own revision: agent writes
        leave it alone."""
        self._tenants: RevisionCache[str, Tenant] = RevisionCache(CACHED_ENTRIES)
        """Tenant settings for the writers, keyed on the tenants' revision."""
        super().__init__(fixture, store)

    def revision(self) -> int | None:
        """The state's revision: what the API reads cannot change while it stays the same, so
        a value derived from a read begun after asking may be kept under it. None: keep nothing
        (the store cannot vouch for one right now)."""
        revision = self._store.revision()
        return None if revision is None else revision.state

    # -- authentication ------------------------------------------------------------------

    def authorize(self, tenant_id: str, username: str, token: str) -> None:
        """401 for unknown credentials, 403 for another tenant's path, XML 403 when disabled.

        Tenants are found by username through the store's index (cached until a tenant
        changes); every token of that username is compared in constant time.
        """
        revision = self._tenants_revision()
        candidates = self._credentials.get(revision, username)
        if candidates is None:
            with self._store.reading() as state:
                candidates = tuple(state.tenants_by_username(username))
            if candidates:  # a made-up username is looked up again, never kept
                self._credentials.put(revision, username, candidates)
        given = token.encode()
        owner: Tenant | None = None
        for tenant in candidates:
            if hmac.compare_digest(tenant.token.encode(), given):
                owner = tenant
        if owner is None:
            raise AuthenticationFailed("Unknown username or wrong action token.")
        if owner.tenant_id != tenant_id:
            raise TenantForbidden()
        if not owner.api_enabled:
            raise ApiNotEnabled()

    def authorize_stream(
        self, tenant_id: str, key: str | None, basic: tuple[str, str] | None
    ) -> None:
        """The event streams' check: the tenant's action token as ``X-API-Key``, or that key
        in the vendor's "CC token" form (base64 of ``username:token``), or Basic credentials.
        A wrong key and another tenant's key are the same 401, naming neither tenant."""
        with self._store.reading() as state:
            tenant = state.tenant(tenant_id)
        given: list[bytes] = []
        if key is not None:
            given.append(key.encode())
        if basic is not None:
            given.append(f"{basic[0]}:{basic[1]}".encode())
        if tenant is not None and given:
            accepted = (
                tenant.token.encode(),
                base64.b64encode(f"{tenant.username}:{tenant.token}".encode()),
                f"{tenant.username}:{tenant.token}".encode(),
            )
            matched = False
            for value in given:
                for expected in accepted:
                    matched |= hmac.compare_digest(value, expected)
            if matched:
                return
        raise AuthenticationFailed(
            "Unauthorized: the X-API-Key (or Basic credentials) is not valid for this tenant."
        )

    def events_after(self, tenant_id: str, sequence: int, limit: int) -> list[Event]:
        """The tenant's events numbered above ``sequence``, oldest first (``core.events``)."""
        with self._store.reading() as state:
            return state.events_after(tenant_id, sequence, limit)

    def last_event(self, tenant_id: str) -> int:
        with self._store.reading() as state:
            return state.last_event(tenant_id)

    def read_record(self, key: str) -> bytes | None:
        """A feature's own shared record (``StateReader.record``)."""
        with self._store.reading() as state:
            return state.record(key)

    def update_record(
        self, key: str, change: Callable[[bytes | None], bytes | None]
    ) -> bytes | None:
        """``change`` applied to a record in one write transaction, so that processes sharing
        the state take turns; returns what was kept. ``change`` may raise to refuse."""
        with self._store.writing() as state:
            value = change(state.record(key))
            state.put_record(key, value)
            return value

    @property
    def evented_store(self) -> EventedStore:
        """The store as the platform itself writes it (the simulator): agents saved directly,
        its own events emitted in order among those their changes emit."""
        return self._store

    @property
    def event_signal(self) -> EventSignal:
        """Wakes this process's stream readers after a write that emitted events."""
        return self._store.signal

    @property
    def shared_state(self) -> bool:
        """Whether other processes write this state too (their events must be polled for)."""
        return self._store.name != "memory"

    # -- the API -------------------------------------------------------------------------

    def list_agents(
        self, tenant_id: str, group_id: str | None = None, page: PageRequest | None = None
    ) -> AgentPage:
        """All agents, or those of one group (``groupId``), and one page of them if asked."""
        with self._store.reading() as state:
            tenant_of(state, tenant_id)
            agents = tuple(state.agents(tenant_id))
        if group_id is not None:
            agents = tuple(agent for agent in agents if str(agent.group_id) == group_id)
        if page is None:
            return AgentPage(agents, None)
        total = len(agents)
        return AgentPage(
            agents[page.index * page.size : (page.index + 1) * page.size],
            PageResult(page.size, total, math.ceil(total / page.size), page.index),
        )

    def get_agent(self, tenant_id: str, agent_id: str) -> Agent:
        """One agent; the tenant is looked up only when the agent is missing (an agent exists
        only in an existing tenant), to tell a missing tenant from a missing agent."""
        with self._store.reading() as state:
            agent = state.agent(tenant_id, agent_id)
            if agent is None:
                tenant_of(state, tenant_id)
                raise AgentNotFound(agent_id)
            return agent

    def set_agent_status(self, tenant_id: str, agent_id: str, change: StatusChange) -> None:
        """The single set: apply the change to the agent, or refuse it."""
        with self._store.writing() as state:
            _apply(state, self._writers_tenant(state, tenant_id), agent_id, change)

    def set_agents_statuses(
        self, tenant_id: str, changes: Sequence[tuple[str, StatusChange]]
    ) -> list[BulkOutcome]:
        """The bulk set: each (agent id, change) goes through the single set's ``_apply``,
        independently, so each is refused or applied on its own (the request's shape was
        checked as a whole before). They are applied in order in one write transaction: each
        is atomic and none is lost once answered."""
        outcomes = []
        with self._store.writing() as state:
            tenant = self._writers_tenant(state, tenant_id)
            for agent_id, change in changes:
                try:
                    _apply(state, tenant, agent_id, change)
                except ApiError as refusal:
                    outcomes.append(BulkOutcome(agent_id, int(refusal.status), refusal.detail))
                else:
                    outcomes.append(BulkOutcome(agent_id, 200, "OK"))
        return outcomes

    def _tenants_revision(self) -> int | None:
        revision = self._store.revision()
        return None if revision is None else revision.tenants

    def _writers_tenant(self, state: StateWriter, tenant_id: str) -> Tenant:
        """The tenant's settings, read once per tenants' revision. Only inside a write
        transaction: no other writer can move the revision until it ends."""
        revision = self._tenants_revision()
        tenant = self._tenants.get(revision, tenant_id)
        if tenant is None:
            tenant = tenant_of(state, tenant_id)
            self._tenants.put(revision, tenant_id, tenant)
        return tenant


def _apply(state: StateWriter, tenant: Tenant, agent_id: str, change: StatusChange) -> None:
    """Apply one change to one agent inside the caller's write transaction, or refuse it.

    The order is the single set's: status-code pairing, agent exists, transition, status codes.
    """
    pairing = pairing_refusal(change)
    if pairing is not None:
        raise InvalidRequest(pairing)
    agent = agent_of(state, tenant.tenant_id, agent_id)
    target = AgentStatus(agent.status) if change.status is None else change.status
    refusal = transition_refusal(agent.status, target)
    if refusal is not None:
        if change.status is None:
            refusal = f"agent-status was omitted, so the current status is kept: {refusal}"
        raise InvalidRequest(refusal)
    short_code = _check_status_code(tenant, agent, target, change)
    list_id, item_id = change.list_id, change.item_id
    if list_id is None and target == AgentStatus.LOGGED_OUT:
        list_id, item_id = LOGGED_OUT_STATUS_CODE_LIST_ID, LOGGED_OUT_STATUS_CODE_ITEM_ID
    # Built directly: dataclasses.replace costs several times more, on every set.
    updated = Agent(
        agent_id=agent.agent_id,
        group_id=agent.group_id,
        status=int(target),
        name=agent.name,
        sub_status=agent.sub_status,
        list_id=list_id,
        item_id=item_id,
        short_code=short_code,
    )
    state.save_agent(tenant.tenant_id, updated)


def _check_status_code(
    tenant: Tenant, agent: Agent, target: AgentStatus, change: StatusChange
) -> str | None:
    """The short code to store, once the list, item and short code are proven consistent."""
    if change.list_id is None or change.item_id is None:
        return None
    if (
        target == AgentStatus.LOGGED_OUT
        and change.list_id == LOGGED_OUT_STATUS_CODE_LIST_ID
        and change.item_id == LOGGED_OUT_STATUS_CODE_ITEM_ID
        and change.short_code is None
    ):
        return None
    group = tenant.groups[agent.group_id]
    if change.list_id not in group.status_code_lists:
        assigned = ", ".join(map(str, group.status_code_lists)) or "none"
        raise InvalidRequest(
            f"The status code list id is invalid: status-code-list-id {change.list_id} is not "
            f"assigned to the agent's group {group.label} (assigned lists: {assigned})."
        )
    code_list = tenant.status_code_lists[change.list_id]
    expected = code_list.items.get(change.item_id)
    if expected is None:
        raise InvalidRequest(
            f"The status code item id is invalid: status-code-item-id {change.item_id} is not "
            f"an item of status-code list {change.list_id}."
        )
    if change.short_code is not None and change.short_code != expected:
        raise InvalidRequest(
            f"The status code item short code is invalid: status-code-item-short-code "
            f"'{change.short_code[:40]}' is not the short code of item {change.item_id} "
            f"(it is '{expected}')."
        )
    return expected
