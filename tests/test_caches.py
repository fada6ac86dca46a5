"""What the backend caches per store revision (lists, single agents, credentials) must never
outlive a write: from this backend, or from another process sharing the SQLite file."""

from __future__ import annotations

import os
import sqlite3
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from conftest import DEMO_TENANT, DEMO_TOKEN, DEMO_USERNAME

from mock_server.core.backend import AgentStatusBackend
from mock_server.core.caches import RevisionCache
from mock_server.core.errors import AgentNotFound, AuthenticationFailed, InvalidRequest
from mock_server.core.fixtures import load_fixture
from mock_server.core.sqlite_store import SQLiteStore
from mock_server.core.store import MemoryStore, StateStore

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
    after = store.revision()
    assert before is not None and after is not None
    assert (after.state > before.state, after.tenants) == (True, before.tenants)


@pytest.mark.parametrize(
    "change",
    [
        lambda backend: backend.rotate_token(DEMO_TENANT),
        lambda backend: backend.set_api_enabled(DEMO_TENANT, False),
        lambda backend: backend.put_tenant(DEMO_TENANT, {"username": "someone", "token": "t"}),
        lambda backend: backend.delete_tenant(DEMO_TENANT),
        lambda backend: backend.reset(DEMO_TENANT),
        lambda backend: backend.reset(),
    ],
    ids=["rotate token", "disable", "put tenant", "delete tenant", "reset tenant", "reset"],
)
def test_every_tenant_change_moves_the_tenants_revision(
    store: StateStore, change: Callable[[AgentStatusBackend], object]
) -> None:
    backend = AgentStatusBackend(load_fixture(), store=store)
    before = store.revision()
    change(backend)
    after = store.revision()
    assert before is not None and after is not None
    assert after.tenants > before.tenants and after.state > before.state


def test_a_write_refused_inside_its_transaction_leaves_the_sqlite_revision_alone(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite")
    backend = AgentStatusBackend(load_fixture(), store=store)
    before = store.revision()
    with pytest.raises(AgentNotFound):  # refused after the write transaction began
        backend.set_agent_status(DEMO_TENANT, "agNobodyAtAll", {"agent-status": 4})
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


def test_a_settings_change_through_another_store_binds_the_next_write(
    two_workers: tuple[AgentStatusBackend, AgentStatusBackend],
) -> None:
    """The writers' cache of tenant settings follows a change made by another worker."""
    reader, writer = two_workers
    reader.set_agent_status(DEMO_TENANT, BOB, {"agent-status": 4})  # the reader caches them
    document = {**writer.tenant_state(DEMO_TENANT), "token": DEMO_TOKEN}
    for code_list in document["status-code-lists"]:
        if code_list["id"] == 801:
            code_list["items"] = [item for item in code_list["items"] if item["id"] != 1724]
    writer.put_tenant(DEMO_TENANT, document)  # item 1724 (Coach) of list 801 is gone
    change = {"agent-status": 3, "status-code-list-id": 801, "status-code-item-id": 1724}
    with pytest.raises(InvalidRequest, match="not an item of status-code list 801"):
        reader.set_agent_status(DEMO_TENANT, BOB, change)


def test_a_commit_whose_writer_died_before_ending_it_is_never_hidden_by_a_cache(
    tmp_path: Path,
) -> None:
    """A writer makes the counter odd before its commit and even after it. One killed in
    between leaves it odd: readers then serve what the file holds, never a cached copy."""
    store = SQLiteStore(tmp_path / "s.sqlite")
    backend = AgentStatusBackend(load_fixture(), store=store)
    backend.list_agents_json(DEMO_TENANT)
    backend.get_agent_json(DEMO_TENANT, BOB)
    revision = store.revision()
    assert revision is not None
    lock_file = Path(f"{store.path}.lock")
    with lock_file.open("r+b") as counters:  # the counters' documented layout: two u64, LE
        counters.write(struct.pack("<QQ", revision.state + 1, revision.tenants))
    with sqlite3.connect(store.path) as raw:  # the dead writer's commit
        raw.execute("UPDATE agents SET status = 5 WHERE agent_id = ?", (BOB,))
    raw.close()
    assert store.revision() is None
    for status in (5, 3):
        if status == 3:  # a second commit while still odd: still nothing served from cache
            with sqlite3.connect(store.path) as raw:
                raw.execute("UPDATE agents SET status = 3 WHERE agent_id = ?", (BOB,))
            raw.close()
        assert _listed_status(backend.list_agents_json(DEMO_TENANT), BOB) == status
        assert orjson.loads(backend.get_agent_json(DEMO_TENANT, BOB))["agent-status"] == status
    backend.set_agent_status(DEMO_TENANT, BOB, {"agent-status": 4})  # the next writer ends it
    assert store.revision() is not None
    assert backend.list_agents_json(DEMO_TENANT) is backend.list_agents_json(DEMO_TENANT)
    store.close()


def test_a_forked_child_takes_sqlite_locks_of_its_own(tmp_path: Path) -> None:
    """No connection crosses a fork: a child reading the file holds its own WAL read lock, so
    the parent closing its last connection does not checkpoint and delete the WAL under it."""
    store = SQLiteStore(tmp_path / "s.sqlite")
    backend = AgentStatusBackend(load_fixture(), store=store)
    backend.get_agent_json(DEMO_TENANT, BOB)  # the parent has a pooled connection
    child_reading, parent_closed = os.pipe(), os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: exit code 0 only if the WAL outlived the parent's close
        code = 1
        try:
            with store.reading() as state:
                state.agent(DEMO_TENANT, BOB)
                os.write(child_reading[1], b"r")
                os.read(parent_closed[0], 1)
                wal_kept = Path(f"{store.path}-wal").exists()
            backend.set_agent_status(DEMO_TENANT, BOB, {"agent-status": 5})
            code = 0 if wal_kept else 2
        finally:
            os._exit(code)
    os.read(child_reading[0], 1)
    with store.reading() as state:  # a connection opened after the fork
        state.agent(DEMO_TENANT, BOB)
    store.close()
    os.write(parent_closed[1], b"c")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    for end in (*child_reading, *parent_closed):
        os.close(end)
    reopened = SQLiteStore(tmp_path / "s.sqlite")
    assert (
        AgentStatusBackend(load_fixture(), store=reopened).get_agent(DEMO_TENANT, BOB)[
            "agent-status"
        ]
        == 5
    )
    reopened.close()


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
