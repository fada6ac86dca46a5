"""What the backend caches per store revision (lists, single agents, credentials) must never
outlive a write: from this backend, or from another process sharing the SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from conftest import DEMO_TENANT, DEMO_TOKEN, DEMO_USERNAME

from mock_server.caches import RevisionCache
from mock_server.errors import AuthenticationFailed, InvalidRequest
from mock_server.fixtures import load_fixture
from mock_server.models import AgentStatusBackend
from mock_server.sqlite_store import SQLiteStore
from mock_server.store import MemoryStore, Revision, StateStore

BOB = "agAQDqmvKiRbG4ekigNSmbbb"


def _listed_status(body: bytes, agent_id: str) -> int:
    agents = orjson.loads(body)["data"]
    status: int = next(agent["agent-status"] for agent in agents if agent["agent-id"] == agent_id)
    return status


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    chosen: StateStore = (
        MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "s.sqlite")
    )
    yield chosen
    chosen.close()


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[AgentStatusBackend, AgentStatusBackend]]:
    """Two backends on one file stand for two worker processes, each with its own caches."""
    stores = [SQLiteStore(tmp_path / "s.sqlite") for _ in range(2)]
    reader, writer = (AgentStatusBackend(load_fixture(), store=store) for store in stores)
    yield reader, writer
    for store in stores:
        store.close()


def test_a_write_is_seen_by_the_next_list_and_get(store: StateStore) -> None:
    backend = AgentStatusBackend(load_fixture(), store=store)
    first_list = backend.list_agents_json(DEMO_TENANT)
    first_get = backend.get_agent_json(DEMO_TENANT, BOB)
    assert backend.list_agents_json(DEMO_TENANT) is first_list  # served from the cache
    assert backend.get_agent_json(DEMO_TENANT, BOB) is first_get
    backend.set_agent_status(DEMO_TENANT, BOB, {"agent-status": 5})
    assert _listed_status(backend.list_agents_json(DEMO_TENANT), BOB) == 5
    assert orjson.loads(backend.get_agent_json(DEMO_TENANT, BOB))["agent-status"] == 5
    backend.reset(DEMO_TENANT)
    assert backend.list_agents_json(DEMO_TENANT) == first_list
    assert backend.get_agent_json(DEMO_TENANT, BOB) == first_get


def test_a_rotated_token_fails_at_once(store: StateStore) -> None:
    backend = AgentStatusBackend(load_fixture(), store=store)
    backend.authorize(DEMO_TENANT, DEMO_USERNAME, DEMO_TOKEN)
    token = backend.rotate_token(DEMO_TENANT)
    with pytest.raises(AuthenticationFailed):
        backend.authorize(DEMO_TENANT, DEMO_USERNAME, DEMO_TOKEN)
    backend.authorize(DEMO_TENANT, DEMO_USERNAME, token)


def test_agent_writes_move_only_the_state_revision(store: StateStore) -> None:
    backend = AgentStatusBackend(load_fixture(), store=store)
    before = store.revision()
    backend.set_agent_status(DEMO_TENANT, BOB, {"agent-status": 5})
    after_agent = store.revision()
    assert after_agent == Revision(before.state + 1, before.tenants)
    backend.rotate_token(DEMO_TENANT)
    assert store.revision() == Revision(after_agent.state + 1, after_agent.tenants + 1)


def test_a_refused_write_leaves_the_sqlite_revision_alone(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite")
    backend = AgentStatusBackend(load_fixture(), store=store)
    before = store.revision()
    with pytest.raises(InvalidRequest, match="agent-status"):
        backend.set_agent_status(DEMO_TENANT, BOB, {"agent-status": 7})
    assert store.revision() == before
    store.close()


def test_writes_through_another_store_on_the_file_are_seen(
    two_workers: tuple[AgentStatusBackend, AgentStatusBackend],
) -> None:
    reader, writer = two_workers
    before = _listed_status(reader.list_agents_json(DEMO_TENANT), BOB)
    reader.get_agent_json(DEMO_TENANT, BOB)
    reader.authorize(DEMO_TENANT, DEMO_USERNAME, DEMO_TOKEN)
    target = 5 if before != 5 else 4
    writer.set_agent_status(DEMO_TENANT, BOB, {"agent-status": target})
    token = writer.rotate_token(DEMO_TENANT)
    assert _listed_status(reader.list_agents_json(DEMO_TENANT), BOB) == target
    assert orjson.loads(reader.get_agent_json(DEMO_TENANT, BOB))["agent-status"] == target
    with pytest.raises(AuthenticationFailed):
        reader.authorize(DEMO_TENANT, DEMO_USERNAME, DEMO_TOKEN)
    reader.authorize(DEMO_TENANT, DEMO_USERNAME, token)


def test_the_revision_survives_a_restart(tmp_path: Path) -> None:
    """Counters that went back to zero could match a revision some worker still caches."""
    first = SQLiteStore(tmp_path / "s.sqlite")
    AgentStatusBackend(load_fixture(), store=first).set_agent_status(
        DEMO_TENANT, BOB, {"agent-status": 5}
    )
    written = first.revision()
    first.close()
    second = SQLiteStore(tmp_path / "s.sqlite")
    assert second.revision() == written
    second.close()


def test_revision_cache_keeps_one_revision_and_drops_older_values() -> None:
    cache: RevisionCache[str, int] = RevisionCache(max_entries=2)
    cache.put(3, "a", 1)
    assert cache.get(3, "a") == 1
    assert cache.get(4, "a") is None
    cache.put(2, "b", 2)  # computed against an older state than the cache holds: dropped
    assert cache.get(2, "b") is None
    assert cache.get(3, "b") is None
    cache.put(4, "c", 3)  # a newer revision empties the cache
    assert (cache.get(3, "a"), cache.get(4, "c")) == (None, 3)
    cache.put(4, "d", 4)
    cache.put(4, "e", 5)  # over max_entries: not kept
    assert (cache.get(4, "d"), cache.get(4, "e")) == (4, None)
