"""The rendered agent list is cached per store revision: it must never outlive a write, from
this backend or from another process sharing the SQLite file."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from conftest import DEMO_TENANT

from mock_server.fixtures import load_fixture
from mock_server.models import AgentStatusBackend
from mock_server.sqlite_store import SQLiteStore
from mock_server.store import MemoryStore, StateStore

BOB = "agAQDqmvKiRbG4ekigNSmbbb"


def _status(body: bytes, agent_id: str) -> int:
    agents = orjson.loads(body)["data"]
    status: int = next(agent["agent-status"] for agent in agents if agent["agent-id"] == agent_id)
    return status


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_write_is_seen_by_the_next_list(kind: str, tmp_path: Path) -> None:
    store: StateStore = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "s.sqlite")
    backend = AgentStatusBackend(load_fixture(), store=store)
    first = backend.list_agents_json(DEMO_TENANT)
    assert backend.list_agents_json(DEMO_TENANT) is first  # served from the cache
    backend.set_agent_status(DEMO_TENANT, BOB, {"agent-status": 5})
    assert _status(backend.list_agents_json(DEMO_TENANT), BOB) == 5
    backend.reset(DEMO_TENANT)
    assert backend.list_agents_json(DEMO_TENANT) == first
    store.close()


def test_a_write_through_another_store_on_the_file_is_seen(tmp_path: Path) -> None:
    """Two backends on one file stand for two worker processes, each with its own cache."""
    stores = [SQLiteStore(tmp_path / "s.sqlite") for _ in range(2)]
    reader, writer = (AgentStatusBackend(load_fixture(), store=store) for store in stores)
    before = _status(reader.list_agents_json(DEMO_TENANT), BOB)
    target = 5 if before != 5 else 4
    writer.set_agent_status(DEMO_TENANT, BOB, {"agent-status": target})
    assert _status(reader.list_agents_json(DEMO_TENANT), BOB) == target
    for store in stores:
        store.close()
