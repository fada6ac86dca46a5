"""Tenants, groups, status-code lists and agents, and the operations on them. No Flask here.

``AgentStatusBackend`` is the whole state of an emulator. Every API operation is one method;
views translate an HTTP request into one call and the result back into HTTP. Every refusal
is an ``ApiError`` raised before anything changes, so a refused request changes nothing.
The state itself lives in a store (``mock_server.core.store``); every write runs in one of its write
transactions, so concurrent writes to one agent apply one after the other, across threads and
worker processes, and each bulk entry is applied atomically.
"""

from __future__ import annotations

import hmac
import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import orjson

from mock_server.core.caches import RevisionCache
from mock_server.core.entities import Agent, Tenant
from mock_server.core.errors import (
    AgentNotFound,
    ApiError,
    ApiNotEnabled,
    AuthenticationFailed,
    InvalidRequest,
    TenantForbidden,
    TenantNotFound,
)
from mock_server.core.fixtures import build_agent, build_tenants
from mock_server.core.profiles import (
    DEFAULT,
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    STATUS_CODE_FIELDS,
    Profile,
)
from mock_server.core.store import MemoryStore, StateReader, StateStore, StateWriter
from schemas.rules import (
    LOGGED_OUT_STATUS_CODE_ITEM_ID,
    LOGGED_OUT_STATUS_CODE_LIST_ID,
    AgentStatus,
    transition_refusal,
    unknown_status_refusal,
)

BULK_FIELD = "agents"
CACHED_ENTRIES = 50_000
"""At most this many agent bodies, lists or usernames per cache and revision."""
# The integers a request may carry: those every JSON parser reads exactly (I-JSON, RFC 7493).
SAFE_INTEGERS = range(-(2**53 - 1), 2**53)
MAX_SAFE_INTEGER = Decimal(2**53 - 1)
# A JSON number, as a query parameter the reference types ``number`` may carry one.
QUERY_NUMBER = re.compile(r"[-+]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
STATUS_BY_NUMBER = {int(status): status for status in AgentStatus}
NOT_NULL_FIELDS = ("agent-status", *STATUS_CODE_FIELDS)


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A validated request to change one agent. ``status`` None keeps the current status."""

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
class AgentPage:
    agents: list[dict[str, Any]]
    page: dict[str, int] | None


def _integer(value: object, where: str) -> int:
    """A JSON integer (5 or 5.0) within +-(2**53 - 1); booleans, strings, fractions are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"{where} must be an integer, got {_describe(value)}.")
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        raise InvalidRequest(f"{where} must be an integer, got {value!r}.")
    number = int(value)
    if number not in SAFE_INTEGERS:
        raise InvalidRequest(f"{where} must be an integer within +-(2**53 - 1), got {number}.")
    return number


def _describe(value: object) -> str:
    names = {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        float: "a number",
    }
    if value is None:
        return "null"
    text = repr(value)
    return f"{names.get(type(value), type(value).__name__)} {text[:40]}"


def parse_status_change(
    payload: object, *, where: str, require_status: bool, require_codes: bool
) -> StatusChange:
    """Check the shape and types of one change request; the agent-specific rules come later."""
    if not isinstance(payload, dict):
        raise InvalidRequest(f"{where} must be a JSON object, got {_describe(payload)}.")
    prefix = f"{where}." if where != "The request body" else ""

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

    list_raw = payload.get("status-code-list-id")
    item_raw = payload.get("status-code-item-id")
    short_raw = payload.get("status-code-item-short-code")
    if require_codes:
        for name, value in zip(STATUS_CODE_FIELDS, (list_raw, item_raw, short_raw), strict=True):
            if value is None:
                raise InvalidRequest(f"{prefix}{name} is required.")
    # An optional field is absent or typed: null is refused (the contract's schemas say so).
    for name in NOT_NULL_FIELDS:
        if name in payload and payload[name] is None:
            raise InvalidRequest(f"{prefix}{name} must not be null; leave it out instead.")
    list_id = None if list_raw is None else _integer(list_raw, f"{prefix}status-code-list-id")
    item_id = None if item_raw is None else _integer(item_raw, f"{prefix}status-code-item-id")
    if short_raw is not None and not isinstance(short_raw, str):
        raise InvalidRequest(
            f"{prefix}status-code-item-short-code must be a string, got {_describe(short_raw)}."
        )
    return StatusChange(status=status, list_id=list_id, item_id=item_id, short_code=short_raw)


def pairing_refusal(change: StatusChange) -> str | None:
    """Why the status-code fields do not go together (list and item both or neither, a short
    code only with them), or None. Judged per change: a bulk entry's own 400, not the request's."""
    if (change.list_id is None) != (change.item_id is None):
        given, missing = (
            ("status-code-list-id", "status-code-item-id")
            if change.item_id is None
            else ("status-code-item-id", "status-code-list-id")
        )
        return f"{missing} is required when {given} is given."
    if change.short_code is not None and change.item_id is None:
        return (
            "status-code-list-id and status-code-item-id are required "
            "when status-code-item-short-code is given."
        )
    return None


class AgentStatusBackend:
    """All tenants of one emulator, the rules applied to them, and the control-plane edits.

    The state lives in a ``StateStore`` (memory by default, SQLite for several workers); this
    class is the only place where requests are checked and the rules decided.
    """

    def __init__(
        self,
        fixture: Mapping[str, Any],
        profile: Profile = DEFAULT,
        store: StateStore | None = None,
    ) -> None:
        """Seed ``store`` from ``fixture`` unless it already holds a state (a restart).

        Either way ``fixture`` becomes what a reset restores.
        """
        self.profile = profile
        self._store: StateStore = MemoryStore() if store is None else store
        self._lists: RevisionCache[str, bytes] = RevisionCache(CACHED_ENTRIES)
        """Whole agent lists as JSON, per tenant."""
        self._agents: RevisionCache[tuple[str, str], bytes] = RevisionCache(CACHED_ENTRIES)
        """Single agents as JSON, per (tenant, agent)."""
        self._credentials: RevisionCache[str, list[Tenant]] = RevisionCache(CACHED_ENTRIES)
        """The tenants of each username, keyed on the tenants' own revision: agent writes
        leave it alone."""
        self._tenants: RevisionCache[str, Tenant] = RevisionCache(CACHED_ENTRIES)
        """Tenant settings for the writers, keyed on the tenants' revision."""
        encoded = orjson.dumps(fixture)
        with self._store.writing() as state:
            if state.fixture() is None:
                state.replace_all(build_tenants(fixture).values(), encoded)
            else:
                state.set_fixture(encoded)

    # -- control plane -------------------------------------------------------------------

    def reset(self, tenant_id: str | None = None) -> None:
        """Back to the loaded fixture: every tenant, or just one (scoped reset)."""
        with self._store.writing() as state:
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
            state.replace_all(fresh.values(), orjson.dumps(fixture))

    def put_tenant(self, tenant_id: str, document: Mapping[str, Any]) -> bool:
        """Create or replace one tenant from a fixture-format tenant; True when created."""
        if document.get("tenant-id", tenant_id) != tenant_id:
            raise InvalidRequest(
                f"tenant-id '{document.get('tenant-id')}' in the body does not match "
                f"'{tenant_id}' in the path."
            )
        built = build_tenants({"tenants": [{**document, "tenant-id": tenant_id}]})[tenant_id]
        with self._store.writing() as state:
            created = state.tenant(tenant_id) is None
            state.save_tenant(built.tenant, built.agents)
        return created

    def delete_tenant(self, tenant_id: str) -> None:
        with self._store.writing() as state:
            _tenant(state, tenant_id)
            state.delete_tenant(tenant_id)

    def tenant_ids(self) -> list[str]:
        with self._store.reading() as state:
            return state.tenant_ids()

    def tenant_state(self, tenant_id: str) -> dict[str, Any]:
        with self._store.reading() as state:
            return _tenant(state, tenant_id).to_state(state.agents(tenant_id))

    def set_api_enabled(self, tenant_id: str, enabled: object) -> dict[str, Any]:
        if not isinstance(enabled, bool):
            raise InvalidRequest(f"api-enabled must be true or false, got {_describe(enabled)}.")
        with self._store.writing() as state:
            tenant = replace(_tenant(state, tenant_id), api_enabled=enabled)
            state.save_tenant(tenant)
            return tenant.to_state(state.agents(tenant_id))

    def rotate_token(self, tenant_id: str) -> str:
        """A new action token; the old one stops working at once, as the guide warns."""
        token = secrets.token_urlsafe(24)
        with self._store.writing() as state:
            state.save_tenant(replace(_tenant(state, tenant_id), token=token))
        return token

    def put_agent(
        self, tenant_id: str, agent_id: str, document: object
    ) -> tuple[dict[str, Any], bool]:
        """Create or replace an agent in any status 0-11; True when created."""
        if not isinstance(document, dict):
            raise InvalidRequest(
                f"The request body must be a JSON object, got {_describe(document)}."
            )
        if document.get("agent-id", agent_id) != agent_id:
            raise InvalidRequest(
                f"agent-id '{document.get('agent-id')}' in the body does not match "
                f"'{agent_id}' in the path."
            )
        with self._store.writing() as state:
            tenant = _tenant(state, tenant_id)
            agent = build_agent({**document, "agent-id": agent_id}, tenant, where="$")
            created = state.agent(tenant_id, agent_id) is None
            state.save_agent(tenant_id, agent)
            return agent.to_fixture(), created

    def delete_agent(self, tenant_id: str, agent_id: str) -> None:
        with self._store.writing() as state:
            _tenant(state, tenant_id)
            _agent(state, tenant_id, agent_id)
            state.delete_agent(tenant_id, agent_id)

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
                candidates = state.tenants_by_username(username)
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

    # -- the API -------------------------------------------------------------------------

    def list_agents(
        self,
        tenant_id: str,
        group_id: str | None = None,
        page_size: object = None,
        page_index: object = None,
    ) -> AgentPage:
        """All agents, optionally of one group (``groupId``), paged if the profile pages."""
        with self._store.reading() as state:
            _tenant(state, tenant_id)
            agents = state.agents(tenant_id)
        if group_id is not None and self.profile.group_filter:
            agents = [agent for agent in agents if str(agent.group_id) == group_id.strip()]
        bodies = [agent.to_api() for agent in agents]
        if not self.profile.pagination:
            return AgentPage(agents=bodies, page=None)
        return _paginate(bodies, page_size, page_index)

    def list_agents_json(
        self,
        tenant_id: str,
        group_id: str | None = None,
        page_size: object = None,
        page_index: object = None,
    ) -> bytes:
        """The list's response body, as ``list_agents`` makes it.

        A whole list (no group filter, no paging) is rendered once per tenant and store
        revision and then served as is, so a large tenant costs a lookup rather than a render;
        any write changes the revision, so a list is never served stale.
        """
        if (group_id is not None and self.profile.group_filter) or self.profile.pagination:
            page = self.list_agents(tenant_id, group_id, page_size, page_index)
            body: dict[str, Any] = {"data": page.agents}
            if page.page is not None:
                body["page"] = page.page
            return orjson.dumps(body)
        revision = self._state_revision()
        rendered = self._lists.get(revision, tenant_id)
        if rendered is None:
            with self._store.reading() as state:
                _tenant(state, tenant_id)
                agents = state.agents(tenant_id)
            rendered = orjson.dumps({"data": [agent.to_api() for agent in agents]})
            self._lists.put(revision, tenant_id, rendered)
        return rendered

    def get_agent(self, tenant_id: str, agent_id: str) -> dict[str, Any]:
        """One agent; the tenant is looked up only when the agent is missing (an agent exists
        only in an existing tenant), to tell a missing tenant from a missing agent."""
        with self._store.reading() as state:
            agent = state.agent(tenant_id, agent_id)
            if agent is None:
                _tenant(state, tenant_id)
                raise AgentNotFound(agent_id)
            return agent.to_api()

    def get_agent_json(self, tenant_id: str, agent_id: str) -> bytes:
        """The response body of ``get_agent``, rendered once per agent and store revision."""
        revision = self._state_revision()
        rendered = self._agents.get(revision, (tenant_id, agent_id))
        if rendered is None:
            rendered = orjson.dumps(self.get_agent(tenant_id, agent_id))
            self._agents.put(revision, (tenant_id, agent_id), rendered)
        return rendered

    def set_agent_status(self, tenant_id: str, agent_id: str, payload: object) -> None:
        """The single set: validate the body, then apply it to the agent, or refuse."""
        change = parse_status_change(
            payload,
            where="The request body",
            require_status=True,
            require_codes=self.profile.single_requires_status_codes,
        )
        with self._store.writing() as state:
            _apply(state, self._writers_tenant(state, tenant_id), agent_id, change)

    def set_agents_statuses(self, tenant_id: str, payload: object) -> list[BulkOutcome]:
        """The bulk set: each entry goes through the single-agent path, independently.

        The shape of the whole request (an ``agents`` array, each entry an object with a
        string ``agent-id``, the entry limit, field types and statuses: what the reference's
        request schema says) is checked first and refused as a whole; everything else (how
        the status-code fields pair, the agent, its transition, its codes) is decided per
        entry, by the single set's own ``_apply``. The entries are applied in order in one
        write transaction: each is atomic and none is lost once answered.
        """
        entries = self._bulk_entries(payload)
        changes = [
            (
                agent_id,
                parse_status_change(
                    entry,
                    where=f"agents[{index}]",
                    require_status=self.profile.bulk_requires_agent_status,
                    require_codes=self.profile.bulk_requires_status_codes,
                ),
            )
            for index, (agent_id, entry) in enumerate(entries)
        ]
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

    def _state_revision(self) -> int | None:
        revision = self._store.revision()
        return None if revision is None else revision.state

    def _tenants_revision(self) -> int | None:
        revision = self._store.revision()
        return None if revision is None else revision.tenants

    def _writers_tenant(self, state: StateWriter, tenant_id: str) -> Tenant:
        """The tenant's settings, read once per tenants' revision. Only inside a write
        transaction: no other writer can move the revision until it ends."""
        revision = self._tenants_revision()
        tenant = self._tenants.get(revision, tenant_id)
        if tenant is None:
            tenant = _tenant(state, tenant_id)
            self._tenants.put(revision, tenant_id, tenant)
        return tenant

    def _bulk_entries(self, payload: object) -> list[tuple[str, dict[str, Any]]]:
        if not isinstance(payload, dict):
            raise InvalidRequest(
                f"The request body must be a JSON object, got {_describe(payload)}."
            )
        entries = payload.get(BULK_FIELD)
        if entries is None:
            raise InvalidRequest("agents is required: an array of agent status changes.")
        if not isinstance(entries, list):
            raise InvalidRequest(f"agents must be an array, got {_describe(entries)}.")
        limit = self.profile.bulk_limit
        if limit is not None and len(entries) > limit:
            raise InvalidRequest(f"agents has {len(entries)} entries; at most {limit} are allowed.")
        checked = []
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise InvalidRequest(
                    f"agents[{index}] must be a JSON object, got {_describe(entry)}."
                )
            agent_id = entry.get("agent-id")
            if agent_id is None:
                raise InvalidRequest(f"agents[{index}].agent-id is required.")
            if not isinstance(agent_id, str):
                raise InvalidRequest(
                    f"agents[{index}].agent-id must be a string, got {_describe(agent_id)}."
                )
            checked.append((agent_id, entry))
        return checked


def _tenant(state: StateReader, tenant_id: str) -> Tenant:
    tenant = state.tenant(tenant_id)
    if tenant is None:
        raise TenantNotFound(tenant_id)
    return tenant


def _agent(state: StateReader, tenant_id: str, agent_id: str) -> Agent:
    agent = state.agent(tenant_id, agent_id)
    if agent is None:
        raise AgentNotFound(agent_id)
    return agent


def _apply(state: StateWriter, tenant: Tenant, agent_id: str, change: StatusChange) -> None:
    """Apply one change to one agent inside the caller's write transaction, or refuse it.

    The order is the single set's: status-code pairing, agent exists, transition, status codes.
    """
    pairing = pairing_refusal(change)
    if pairing is not None:
        raise InvalidRequest(pairing)
    agent = _agent(state, tenant.tenant_id, agent_id)
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


def _paginate(bodies: list[dict[str, Any]], page_size: object, page_index: object) -> AgentPage:
    """The reference's pageSize/pageIndex and its PageResult object."""
    size = DEFAULT_PAGE_SIZE if page_size is None else _query_integer(page_size, "pageSize")
    index = 0 if page_index is None else _query_integer(page_index, "pageIndex")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise InvalidRequest(f"pageSize must be between 1 and {MAX_PAGE_SIZE}, got {size}.")
    if index < 0:
        raise InvalidRequest(f"pageIndex must be 0 or more, got {index}.")
    total = len(bodies)
    return AgentPage(
        agents=bodies[index * size : (index + 1) * size],
        page={
            "pageSize": size,
            "totalElements": total,
            "totalPages": math.ceil(total / size),
            "pageIndex": index,
        },
    )


def _query_integer(value: object, name: str) -> int:
    """A query parameter the reference types ``number``: ``2``, ``2.0`` or ``2e0`` is 2; a
    fraction, anything but a decimal number, or beyond +-(2**53 - 1) is a 400 naming it."""
    text = str(value).strip()
    if QUERY_NUMBER.fullmatch(text) is None:
        raise InvalidRequest(f"{name} must be an integer, got '{text[:40]}'.")
    number = Decimal(text)
    if abs(number) > MAX_SAFE_INTEGER:
        raise InvalidRequest(f"{name} must be an integer within +-(2**53 - 1), got {text[:40]}.")
    if number != number.to_integral_value():
        raise InvalidRequest(f"{name} must be an integer, got '{text[:40]}'.")
    return int(number)
