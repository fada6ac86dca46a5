"""What is cached per store revision (rendered lists and agents in the views, credentials and
tenant settings in the backend) must never outlive a write: from this process, or from another
process sharing the SQLite file."""

from __future__ import annotations

import os
import sqlite3
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from conftest import DEMO_TENANT, DEMO_TOKEN, DEMO_USERNAME, GUIDE_AUTH_HEADER, api_path
from flask.testing import FlaskClient

from mock_server.app import create_app
from mock_server.core.backend import AgentStatusBackend, StatusChange
from mock_server.core.caches import RevisionCache
from mock_server.core.errors import AgentNotFound, AuthenticationFailed, InvalidRequest
from mock_server.core.fixtures import load_fixture
from mock_server.core.sqlite_store import SQLiteStore
from mock_server.core.store import MemoryStore, StateStore
from mock_server.http.context import EXTENSION
from schemas.rules import AgentStatus
from schemas.wire import basic_authorization

BOB = "agAQDqmvKiRbG4ekigNSmbbb"
PADMA = "ag64oyEUb_Sk6bxVB9P5yaaa"


def status(number: int, list_id: int | None = None, item_id: int | None = None) -> StatusChange:
    return StatusChange(AgentStatus(number), list_id, item_id, None)


class Worker:
    """One emulator process over a store: its views' caches and its backend's."""

    def __init__(self, store: StateStore) -> None:
        app = create_app(load_fixture(), store=store)
        self.client: FlaskClient = app.test_client()
        self.backend: AgentStatusBackend = app.extensions[EXTENSION].backend

    def read(self, suffix: str = "", authorization: str = GUIDE_AUTH_HEADER) -> bytes:
        reply = self.client.get(api_path(suffix=suffix), headers={"Authorization": authorization})
        assert reply.status_code == 200, reply.get_data(as_text=True)
        return reply.get_data()

    def refused(self, authorization: str) -> int:
        return self.client.get(api_path(), headers={"Authorization": authorization}).status_code

    def listed_status(self, agent_id: str, authorization: str = GUIDE_AUTH_HEADER) -> int:
        agents = orjson.loads(self.read(authorization=authorization))["data"]
        found: int = next(a["agent-status"] for a in agents if a["agent-id"] == agent_id)
        return found

    def got_status(self, agent_id: str, authorization: str = GUIDE_AUTH_HEADER) -> int:
        found: int = orjson.loads(self.read(f"/{agent_id}", authorization))["agent-status"]
        return found


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    chosen: StateStore = (
        MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "s.sqlite")
    )
    yield chosen
    chosen.close()


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[Worker, Worker]]:
    """Two apps on one file stand for two worker processes, each with its own caches."""
    stores = [SQLiteStore(tmp_path / "s.sqlite") for _ in range(2)]
    reader, writer = (Worker(store) for store in stores)
    yield reader, writer
    for store in stores:
        store.close()


def test_a_write_is_seen_by_the_next_list_and_get(store: StateStore) -> None:
    worker = Worker(store)
    first_list, first_get = worker.read(), worker.read(f"/{BOB}")
    assert (worker.read(), worker.read(f"/{BOB}")) == (first_list, first_get)
    worker.backend.set_agent_status(DEMO_TENANT, BOB, status(5))
    assert (worker.listed_status(BOB), worker.got_status(BOB)) == (5, 5)
    worker.backend.reset(DEMO_TENANT)
    assert (worker.read(), worker.read(f"/{BOB}")) == (first_list, first_get)


def test_reads_are_served_from_the_cache_until_the_revision_moves(tmp_path: Path) -> None:
    """A change the revision does not count (written to the file behind the store's back) is
    not seen, which shows the bodies come from the cache; the next write shows it."""
    store = SQLiteStore(tmp_path / "s.sqlite")
    worker = Worker(store)
    before = (worker.listed_status(PADMA), worker.got_status(PADMA))
    with sqlite3.connect(store.path) as raw:
        raw.execute("UPDATE agents SET status = 9 WHERE agent_id = ?", (PADMA,))
    raw.close()
    assert (worker.listed_status(PADMA), worker.got_status(PADMA)) == before
    worker.backend.set_agent_status(DEMO_TENANT, BOB, status(5))
    assert (worker.listed_status(PADMA), worker.got_status(PADMA)) == (9, 9)
    store.close()


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
    backend.set_agent_status(DEMO_TENANT, BOB, status(5))
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
        backend.set_agent_status(DEMO_TENANT, "agNobodyAtAll", status(4))
    assert store.revision() == before
    store.close()


def test_writes_through_another_store_on_the_file_are_seen(
    two_workers: tuple[Worker, Worker],
) -> None:
    reader, writer = two_workers
    before = reader.listed_status(BOB)  # the list, the agent and the credentials cached
    reader.got_status(BOB)
    target = 5 if before != 5 else 4
    writer.backend.set_agent_status(DEMO_TENANT, BOB, status(target))
    rotated = basic_authorization(DEMO_USERNAME, writer.backend.rotate_token(DEMO_TENANT))
    assert reader.refused(GUIDE_AUTH_HEADER) == 401
    assert (reader.listed_status(BOB, rotated), reader.got_status(BOB, rotated)) == (target,) * 2


def test_a_settings_change_through_another_store_binds_the_next_write(
    two_workers: tuple[Worker, Worker],
) -> None:
    """The writers' cache of tenant settings follows a change made by another worker."""
    reader, writer = two_workers
    reader.backend.set_agent_status(DEMO_TENANT, BOB, status(4))  # the reader caches them
    document = {**writer.backend.tenant_state(DEMO_TENANT), "token": DEMO_TOKEN}
    for code_list in document["status-code-lists"]:
        if code_list["id"] == 801:
            code_list["items"] = [item for item in code_list["items"] if item["id"] != 1724]
    writer.backend.put_tenant(DEMO_TENANT, document)  # item 1724 (Coach) of list 801 is gone
    with pytest.raises(InvalidRequest, match="not an item of status-code list 801"):
        reader.backend.set_agent_status(DEMO_TENANT, BOB, status(3, 801, 1724))


def test_a_commit_whose_writer_died_before_ending_it_is_never_hidden_by_a_cache(
    tmp_path: Path,
) -> None:
    """A writer makes the counter odd before its commit and even after it. One killed in
    between leaves it odd: readers then serve what the file holds, never a cached copy."""
    store = SQLiteStore(tmp_path / "s.sqlite")
    worker = Worker(store)
    cached = worker.read()
    worker.read(f"/{BOB}")
    revision = store.revision()
    assert revision is not None
    lock_file = Path(f"{store.path}.lock")
    with lock_file.open("r+b") as counters:  # the counters' documented layout: two u64, LE
        counters.write(struct.pack("<QQ", revision.state + 1, revision.tenants))
    with sqlite3.connect(store.path) as raw:  # the dead writer's commit
        raw.execute("UPDATE agents SET status = 5 WHERE agent_id = ?", (BOB,))
    raw.close()
    assert store.revision() is None
    for held in (5, 3):
        if held == 3:  # a second commit while still odd: still nothing served from cache
            with sqlite3.connect(store.path) as raw:
                raw.execute("UPDATE agents SET status = 3 WHERE agent_id = ?", (BOB,))
            raw.close()
        assert (worker.listed_status(BOB), worker.got_status(BOB)) == (held, held)
    worker.backend.set_agent_status(DEMO_TENANT, BOB, status(4))  # the next writer ends it
    assert store.revision() is not None
    assert worker.read() == cached  # BOB is 4 again, as when the list was first cached
    with sqlite3.connect(store.path) as raw:  # behind the even counter: caching is back
        raw.execute("UPDATE agents SET status = 9 WHERE agent_id = ?", (BOB,))
    raw.close()
    assert worker.read() == cached
    store.close()


def test_a_forked_child_takes_sqlite_locks_of_its_own(tmp_path: Path) -> None:
    """No connection crosses a fork: a child reading the file holds its own WAL read lock, so
    the parent closing its last connection does not checkpoint and delete the WAL under it."""
    store = SQLiteStore(tmp_path / "s.sqlite")
    backend = AgentStatusBackend(load_fixture(), store=store)
    backend.get_agent(DEMO_TENANT, BOB)  # the parent has a pooled connection
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
            backend.set_agent_status(DEMO_TENANT, BOB, status(5))
            code = 0 if wal_kept else 2
        finally:
            os._exit(code)
    os.read(child_reading[0], 1)
    with store.reading() as state:  # a connection opened after the fork
        state.agent(DEMO_TENANT, BOB)
    store.close()
    os.write(parent_closed[1], b"c")
    _, exit_status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(exit_status) == 0
    for end in (*child_reading, *parent_closed):
        os.close(end)
    reopened = SQLiteStore(tmp_path / "s.sqlite")
    assert (
        AgentStatusBackend(load_fixture(), store=reopened).get_agent(DEMO_TENANT, BOB).status == 5
    )
    reopened.close()


def test_the_revision_survives_a_restart(tmp_path: Path) -> None:
    """Counters that went back to zero could match a revision some worker still caches."""
    first = SQLiteStore(tmp_path / "s.sqlite")
    AgentStatusBackend(load_fixture(), store=first).set_agent_status(DEMO_TENANT, BOB, status(5))
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
