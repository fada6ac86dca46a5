"""The two state stores keep the same promises: a write transaction is all or nothing, and
what a transaction reads is a value no reader can change."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from conftest import DEMO_TENANT, OTHER_TENANT

from mock_server.core.backend import AgentStatusBackend
from mock_server.core.editor import DELETED_LOG_SECONDS
from mock_server.core.entities import EVENT_LOG_SIZE, Agent, EventDraft, FixtureTenant
from mock_server.core.fixtures import load_fixture
from mock_server.core.sqlite_store import SQLiteStore
from mock_server.core.store import (
    MemoryStore,
    StateReader,
    StateStore,
    StateWriter,
    tenant_record_key,
)

BOB = "agAQDqmvKiRbG4ekigNSmbbb"
Snapshot = tuple[object, ...]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    """A store seeded with the demo fixture."""
    chosen: StateStore = (
        MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "s.sqlite")
    )
    AgentStatusBackend(load_fixture(), store=chosen)
    yield chosen
    chosen.close()


def snapshot(state: StateReader) -> Snapshot:
    """Everything a reader can see, in order."""
    tenants = [state.tenant(tenant_id) for tenant_id in state.tenant_ids()]
    return (
        state.fixture(),
        state.tenant_ids(),
        tenants,
        [state.tenants_by_username(tenant.username) for tenant in tenants if tenant is not None],
        [state.agents(tenant_id) for tenant_id in state.tenant_ids()],
        state.events_after(DEMO_TENANT, 0, 100),
        state.last_event(DEMO_TENANT),
        state.record("feature"),
    )


def agent_writes(state: StateWriter) -> None:
    bob = state.agent(DEMO_TENANT, BOB)
    assert bob is not None
    state.save_agent(DEMO_TENANT, replace(bob, status=5))
    state.save_agent(DEMO_TENANT, Agent("agBrandNew", 100, 4))
    first = state.agents(DEMO_TENANT)[0]
    state.delete_agent(DEMO_TENANT, first.agent_id)
    state.save_agent(DEMO_TENANT, first)  # back, but last in order


def tenant_writes(state: StateWriter) -> None:
    tenant = state.tenant(DEMO_TENANT)
    other = state.tenant(OTHER_TENANT)
    assert tenant is not None and other is not None
    state.save_tenant(replace(tenant, api_enabled=False, username="someone-else"))
    state.save_agent(DEMO_TENANT, Agent("agBrandNew", 100, 4))
    state.save_tenant(replace(other, tenant_id="brand-new"), [Agent("agX", 100, 3)])
    state.delete_tenant(OTHER_TENANT)
    state.set_fixture(b'{"tenants": []}')


def everything_replaced(state: StateWriter) -> None:
    tenant = state.tenant(DEMO_TENANT)
    assert tenant is not None
    state.replace_all([FixtureTenant(tenant, [Agent("agOnly", 100, 3)])], b'{"tenants": []}')
    state.save_agent(DEMO_TENANT, Agent("agBrandNew", 100, 4))


def events_and_records(state: StateWriter) -> None:
    draft = EventDraft("AgentStatusChange", BOB, {"agentId": BOB, "newState": 5})
    state.append_events(DEMO_TENANT, [draft, draft], 1_700_000_000_000)
    state.put_record("feature", b"on")
    state.put_record("other", None)


@pytest.mark.parametrize(
    "writes",
    [agent_writes, tenant_writes, everything_replaced, events_and_records],
    ids=["agents", "tenants", "replace all", "events and records"],
)
def test_a_write_transaction_that_raises_leaves_nothing_behind(
    store: StateStore, writes: Callable[[StateWriter], None]
) -> None:
    with store.reading() as state:
        before = snapshot(state)
    revision = store.revision()
    with pytest.raises(RuntimeError, match="half-way"), store.writing() as state:
        writes(state)
        raise RuntimeError("half-way")
    with store.reading() as state:
        assert snapshot(state) == before
    assert store.revision() == revision
    with store.writing() as state:  # and the store takes the next write as usual
        writes(state)
    with store.reading() as state:
        assert snapshot(state) != before


def test_values_read_from_a_store_cannot_change_what_it_holds(store: StateStore) -> None:
    """Agents and tenants are shared values (a store's own objects, a decoded-settings cache):
    a reader that tries to change one changes nothing anyone reads next."""

    def shown() -> bytes:
        with store.reading() as state:
            tenant = state.tenant(DEMO_TENANT)
            assert tenant is not None
            return orjson.dumps(tenant.to_state(state.agents(DEMO_TENANT)))

    before = shown()
    with store.reading() as state:
        tenant, bob = state.tenant(DEMO_TENANT), state.agent(DEMO_TENANT, BOB)
        assert tenant is not None and bob is not None
        attempts: list[Callable[[], object]] = [
            lambda: setattr(bob, "status", 9),
            lambda: setattr(tenant, "api_enabled", False),
            lambda: tenant.status_code_lists[801].items.__setitem__(1722, "Changed"),  # type: ignore[attr-defined]
            lambda: tenant.status_code_lists[801].descriptions.clear(),  # type: ignore[attr-defined]
            lambda: tenant.groups.pop(100),  # type: ignore[attr-defined]
        ]
    for attempt in attempts:
        with contextlib.suppress(TypeError, AttributeError):  # FrozenInstanceError is one
            attempt()
    assert shown() == before


def test_dropped_events_are_gone_and_their_numbers_never_given_again(store: StateStore) -> None:
    """A reader's cursor stays valid: a tenant whose log was dropped, created again, numbers
    on above it (failed before: from 1, so a reader at 20 missed the first 20 events)."""
    draft = EventDraft("AgentStatusChange", BOB, {"agentId": BOB})
    with store.writing() as state:
        state.append_events(DEMO_TENANT, [draft] * 3, 1)
        state.append_events(OTHER_TENANT, [draft] * 2, 1)
    with pytest.raises(RuntimeError, match="half-way"), store.writing() as state:
        state.drop_history(DEMO_TENANT)
        raise RuntimeError("half-way")
    with store.reading() as state:
        assert [e.sequence for e in state.events_after(DEMO_TENANT, 0, 10)] == [1, 2, 3]
    with store.writing() as state:
        state.drop_history(DEMO_TENANT)
    with store.reading() as state:
        assert (state.events_after(DEMO_TENANT, 0, 10), state.last_event(DEMO_TENANT)) == ([], 3)
        assert [e.sequence for e in state.events_after(OTHER_TENANT, 0, 10)] == [1, 2]
    with store.writing() as state:
        state.append_events(DEMO_TENANT, [draft], 2)
        state.append_events("tNew", [draft], 2)
        state.drop_history("tNeverHadAny")
    with store.reading() as state:
        assert [e.sequence for e in state.events_after(DEMO_TENANT, 0, 10)] == [4]
        assert [e.sequence for e in state.events_after("tNew", 0, 10)] == [4]  # above all dropped
        assert [e.sequence for e in state.events_after(OTHER_TENANT, 0, 10)] == [1, 2]


def test_a_tenants_records_go_with_its_history(store: StateStore) -> None:
    """A feature's record of a tenant (the legacy stream's subscriptions) goes with the tenant's
    log, the store's own records stay (failed before: the record stayed for good)."""
    mine, other = tenant_record_key("feature", DEMO_TENANT), tenant_record_key("feature", "x")
    with store.writing() as state:
        for key in (mine, other, "feature"):
            state.put_record(key, b"kept")
    with pytest.raises(RuntimeError, match="half-way"), store.writing() as state:
        state.drop_history(DEMO_TENANT)
        raise RuntimeError("half-way")
    with store.reading() as state:
        assert state.record(mine) == b"kept"
    with store.writing() as state:
        state.drop_history(DEMO_TENANT)
    with store.reading() as state:
        assert [state.record(key) for key in (mine, other, "feature")] == [None, b"kept", b"kept"]


def test_a_deleted_tenants_log_is_kept_a_while_then_let_go(store: StateStore) -> None:
    """A shared emulator whose tests each create and delete a tenant must not keep every log
    (failed before: the logs of deleted tenants stayed for good, 60 events per test)."""
    draft = EventDraft("AgentStatusChange", BOB, {"agentId": BOB})
    now_ms = int(time.time() * 1000)
    long_ago_ms = now_ms - 2 * DELETED_LOG_SECONDS * 1000
    with store.writing() as state:
        state.append_events("tGoneLongAgo", [draft] * 3, long_ago_ms)
        state.append_events("tGoneJustNow", [draft], now_ms)
        state.append_events(DEMO_TENANT, [draft], long_ago_ms)  # still there: kept
        state.append_events(OTHER_TENANT, [draft], long_ago_ms)  # deleted below
    AgentStatusBackend(load_fixture(), store=store).delete_tenant(OTHER_TENANT)
    with store.reading() as state:
        assert state.events_after("tGoneLongAgo", 0, 10) == []
        assert state.last_event("tGoneLongAgo") == 3
        assert [e.sequence for e in state.events_after("tGoneJustNow", 0, 10)] == [1]
        assert [e.sequence for e in state.events_after(DEMO_TENANT, 0, 10)] == [1]
        # The one deleted now keeps its log, numbered on, for a reader still connected to it.
        logged = state.events_after(OTHER_TENANT, 0, 100)
        assert [e.sequence for e in logged] == list(range(1, len(logged) + 1))
        assert {e.body.get("event") for e in logged[1:]} == {"AgentDeleted"}


def test_a_fixture_tenant_created_again_by_a_reset_numbers_on(store: StateStore) -> None:
    draft = EventDraft("AgentStatusChange", BOB, {"agentId": BOB})
    long_ago_ms = int(time.time() * 1000) - 2 * DELETED_LOG_SECONDS * 1000
    with store.writing() as state:
        state.append_events(OTHER_TENANT, [draft] * 20, long_ago_ms)
        state.delete_tenant(OTHER_TENANT)  # deleted long ago, its log kept since
    AgentStatusBackend(load_fixture(), store=store).reset()
    with store.reading() as state:
        again = state.events_after(OTHER_TENANT, 0, 100)
        assert again and again[0].sequence == 21
        assert again[0].body["event"] == "AgentCreated"


def test_events_are_numbered_per_tenant_and_only_the_newest_are_kept(store: StateStore) -> None:
    draft = EventDraft("AgentStatusChange", BOB, {"agentId": BOB})
    with store.writing() as state:
        state.append_events(DEMO_TENANT, [draft] * (EVENT_LOG_SIZE + 300), 1)
        state.append_events(OTHER_TENANT, [draft] * 3, 2)
    with store.writing() as state:  # a tenant deleted and created again numbers on
        tenant = state.tenant(OTHER_TENANT)
        assert tenant is not None
        state.delete_tenant(OTHER_TENANT)
        state.save_tenant(tenant, [])
        state.append_events(OTHER_TENANT, [draft], 3)
    with store.reading() as state:
        assert state.last_event(DEMO_TENANT) == EVENT_LOG_SIZE + 300
        kept = state.events_after(DEMO_TENANT, 0, 2 * EVENT_LOG_SIZE)
        assert EVENT_LOG_SIZE <= len(kept) < EVENT_LOG_SIZE + 300
        assert [e.sequence for e in kept] == list(range(kept[0].sequence, EVENT_LOG_SIZE + 301))
        assert [e.sequence for e in state.events_after(DEMO_TENANT, EVENT_LOG_SIZE + 298, 5)] == [
            EVENT_LOG_SIZE + 299,
            EVENT_LOG_SIZE + 300,
        ]
        assert [e.sequence for e in state.events_after(OTHER_TENANT, 0, 10)] == [1, 2, 3, 4]
