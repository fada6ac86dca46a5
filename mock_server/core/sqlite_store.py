"""The state in a SQLite file: shared by every worker process and kept across restarts.

WAL mode lets readers run beside the one writer. A write transaction is ``BEGIN IMMEDIATE``
taken under a thread lock and an exclusive ``flock`` on ``FILE.lock``: writers from threads and
processes queue on the lock and are woken at once, instead of polling SQLite's busy handler,
and ``BEGIN IMMEDIATE`` still serialises them should anything else open the file.

Durability: ``synchronous=NORMAL`` in WAL mode. A commit has written its frames to the WAL
file before the answer is sent, so every acknowledged write survives the process being
killed (SIGKILL included: the data is in the kernel's page cache). It does not promise to
survive a power cut or kernel crash, which would need ``synchronous=FULL``.

Revision: two counters in ``FILE.lock``, mapped into every process's memory, so reading them
costs no SQL and a worker's caches check, per request, that no other worker has written since
(``Revision``). The writer, holding the lock, makes ``state`` odd before its commit and even
again after it (a sequence lock): while it is odd, or if the writer died in between, readers
get no revision and bypass every cache, so a commit is never hidden behind a cached value.

Connections are pooled per process and never cross a fork: SQLite's own locks are per
process, and a child's new connection would believe it holds the parent's. Idle connections
are closed before any fork (the parent reopens on demand), and the child forgets any other.
"""

from __future__ import annotations

import mmap
import os
import sqlite3
import struct
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import orjson

from mock_server.core.entities import (
    EVENT_LOG_SIZE,
    Agent,
    Event,
    EventDraft,
    FixtureTenant,
    Group,
    StatusCodeList,
    Tenant,
)
from mock_server.core.fixtures import build_settings
from mock_server.core.store import Revision, StateReader, StateWriter, tenant_record_suffix

BUSY_TIMEOUT_SECONDS = 30.0
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS tenants (
    position INTEGER PRIMARY KEY,
    tenant_id TEXT NOT NULL UNIQUE,
    username TEXT NOT NULL,
    token TEXT NOT NULL,
    api_enabled INTEGER NOT NULL,
    settings BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS tenants_by_username ON tenants (username);
CREATE TABLE IF NOT EXISTS agents (
    position INTEGER PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    group_id INTEGER NOT NULL,
    status INTEGER NOT NULL,
    name TEXT,
    sub_status TEXT,
    list_id INTEGER,
    item_id INTEGER,
    short_code TEXT,
    UNIQUE (tenant_id, agent_id)
);
CREATE INDEX IF NOT EXISTS agents_in_order ON agents (tenant_id, position);
CREATE TABLE IF NOT EXISTS events (
    tenant_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    published_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (tenant_id, sequence)
) WITHOUT ROWID;
"""
EVENT_COLUMNS = "sequence, published_ms, kind, agent_id, body"
RECORD = "record:"
"""The prefix of ``put_record``'s keys in ``meta``, apart from the fixture's."""
DROPPED_UP_TO = "events-dropped-up-to"
"""The ``meta`` key of the highest event number a dropped log held (``drop_history``)."""
PUT_META = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"
PRUNE_EVERY = 256
"""The log is cut back to ``EVENT_LOG_SIZE`` events when a tenant's count passes a multiple of
this: at most this many more are kept, and a write rarely pays for the delete."""
ORPHAN_EVENT_LOGS = """
WITH RECURSIVE logged(tenant_id) AS (
    SELECT MIN(tenant_id) FROM events
    UNION ALL
    SELECT (SELECT MIN(tenant_id) FROM events WHERE tenant_id > logged.tenant_id)
    FROM logged WHERE logged.tenant_id IS NOT NULL
)
SELECT tenant_id, (
    SELECT published_ms FROM events WHERE events.tenant_id = logged.tenant_id
    ORDER BY sequence DESC LIMIT 1
)
FROM logged
WHERE tenant_id IS NOT NULL AND tenant_id NOT IN (SELECT tenant_id FROM tenants)
"""
AGENT_COLUMNS = "agent_id, group_id, status, name, sub_status, list_id, item_id, short_code"
TENANT_COLUMNS = "tenant_id, username, token, api_enabled, settings"
INSERT_AGENT = f"INSERT INTO agents (tenant_id, {AGENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
UPDATE_AGENT = """
UPDATE agents SET group_id = ?, status = ?, name = ?, sub_status = ?, list_id = ?, item_id = ?,
    short_code = ?
WHERE tenant_id = ? AND agent_id = ?
"""
REVISION = struct.Struct("<QQ")
"""The two counters of ``Revision`` at the start of ``FILE.lock``, little-endian."""
_unpack_revision = REVISION.unpack_from
SAVE_TENANT = f"""
INSERT INTO tenants ({TENANT_COLUMNS}) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (tenant_id) DO UPDATE SET
    username = excluded.username, token = excluded.token,
    api_enabled = excluded.api_enabled, settings = excluded.settings
"""


class StateFileError(Exception):
    """The state file cannot be used: its folder is missing or unwritable, or it is not an
    emulator's SQLite file. The message names the file and SQLite's reason; nothing was
    written to it."""


class SQLiteStore:
    """A ``StateStore`` in one SQLite file (created when missing, reused when present)."""

    name = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._pool: list[sqlite3.Connection] = []
        self._inherited: list[object] = []
        self._thread_lock = threading.Lock()
        if self.path.is_dir():
            raise StateFileError(f"{self.path}: is a directory; name a file in it")
        if not self.path.parent.is_dir():
            raise StateFileError(f"{self.path}: the folder {self.path.parent} does not exist")
        try:
            connection = self._connect()
        except sqlite3.DatabaseError as error:
            raise StateFileError(f"{self.path}: {error}") from None
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(SCHEMA)
        except sqlite3.DatabaseError as error:
            connection.close()
            raise StateFileError(f"{self.path}: {error}") from None
        self._pool.append(connection)
        self._shared = _SharedFile(Path(f"{self.path}.lock"))
        release = weakref.WeakMethod(self._release_connections)
        forget_parent = weakref.WeakMethod(self._forget_parent)
        os.register_at_fork(
            before=lambda: _call_if_alive(release),
            after_in_child=lambda: _call_if_alive(forget_parent),
        )

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=64,
        )
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    def _release_connections(self) -> None:
        """Before a fork: close the idle connections, so that none crosses it."""
        while self._pool:
            self._pool.pop().close()

    def _forget_parent(self) -> None:
        """In a forked child: leave what the parent still had open, without closing it.

        A connection another thread was using during the fork is kept referenced, never used or
        closed: closing it could let SQLite believe it is the last user of the WAL and remove
        it under the parent's feet. The lock file is reopened because an inherited descriptor
        would share the parent's ``flock``. Fork hooks rather than a ``getpid()`` per call: a
        system call less on every request.
        """
        self._inherited.extend([*self._pool, self._shared])
        self._pool = []
        self._thread_lock = threading.Lock()
        if not self._shared.closed:
            self._shared = _SharedFile(self._shared.path)

    def revision(self) -> Revision | None:
        return self._shared.revision()

    def _take(self) -> sqlite3.Connection:
        """A pooled connection of this process (a new one when all are in use)."""
        try:
            return self._pool.pop()
        except IndexError:
            return self._connect()

    @contextmanager
    def reading(self) -> Iterator[StateReader]:
        """A read transaction: WAL readers take no lock, neither the thread's nor the file's."""
        connection = self._take()
        try:
            connection.execute("BEGIN")
            try:
                yield _Transaction(connection)
            finally:
                connection.execute("COMMIT")
        finally:
            self._pool.append(connection)

    @contextmanager
    def writing(self) -> Iterator[StateWriter]:
        """The one writer: after its commit, and before it lets the next writer in, it bumps
        the revision, so a reader that sees the new revision finds the commit in the file."""
        import fcntl  # here, not at the top: there is none on Windows, where serve cannot run

        shared = self._shared
        connection = self._take()
        try:
            with self._thread_lock:
                fcntl.flock(shared.file, fcntl.LOCK_EX)
                try:
                    connection.execute("BEGIN IMMEDIATE")
                    transaction = _Transaction(connection)
                    try:
                        yield transaction
                    except BaseException:
                        connection.execute("ROLLBACK")
                        raise
                    shared.begin_commit()
                    connection.execute("COMMIT")
                    shared.end_commit(transaction.tenants_changed)
                finally:
                    fcntl.flock(shared.file, fcntl.LOCK_UN)
        finally:
            self._pool.append(connection)

    def close(self) -> None:
        """Close this process's connections and lock file."""
        while self._pool:
            self._pool.pop().close()
        self._shared.close()


def _call_if_alive(method: weakref.WeakMethod[Callable[[], None]]) -> None:
    """Fork hooks stay registered for good: they must not keep a closed store alive."""
    bound = method()
    if bound is not None:
        bound()


class _SharedFile:
    """``FILE.lock``, open and mapped: ``flock`` on it orders the writers of every process,
    and its first bytes hold the ``Revision`` counters, shared through the mapping."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: IO[bytes] = open(path, "a+b")  # noqa: SIM115 - kept open until close()
        if os.fstat(self.file.fileno()).st_size < REVISION.size:
            # Only ever grows the file: a process racing here cannot zero the counters.
            os.ftruncate(self.file.fileno(), REVISION.size)
        self._map = mmap.mmap(self.file.fileno(), REVISION.size)
        self._last = Revision(-1, -1)

    def revision(self) -> Revision | None:
        """The counters, or None while a commit is under way (``state`` odd) or they changed
        while being read: the caller then trusts no cache. Read on every API request (twice),
        so the ``Revision`` of unchanged counters is the one made last time."""
        counters = _unpack_revision(self._map)
        if counters[0] % 2 or _unpack_revision(self._map) != counters:
            return None
        if counters != self._last:
            self._last = Revision._make(counters)
        return self._last

    def begin_commit(self) -> None:
        """Make ``state`` odd. Called by the writer holding the lock, so no other process
        changes the counters meanwhile; an odd value left by a dead writer is rounded up."""
        state, tenants = REVISION.unpack_from(self._map)
        REVISION.pack_into(self._map, 0, state + 1 + state % 2, tenants)

    def end_commit(self, tenants_changed: bool) -> None:
        """Make ``state`` even again, and count a change of tenant settings."""
        state, tenants = REVISION.unpack_from(self._map)
        REVISION.pack_into(self._map, 0, state + 1, tenants + tenants_changed)

    @property
    def closed(self) -> bool:
        return self.file.closed

    def close(self) -> None:
        self._map.close()
        self.file.close()


class _Transaction:
    """One transaction's view of the file: reads and, under ``writing()``, writes."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection
        self.tenants_changed = False

    def fixture(self) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'fixture'").fetchone()
        return None if row is None else bytes(row[0])

    def tenant_ids(self) -> list[str]:
        return [
            row[0] for row in self._db.execute("SELECT tenant_id FROM tenants ORDER BY position")
        ]

    def tenant(self, tenant_id: str) -> Tenant | None:
        row = self._db.execute(
            f"SELECT {TENANT_COLUMNS} FROM tenants WHERE tenant_id = ?", (tenant_id,)
        ).fetchone()
        return None if row is None else _tenant(*row)

    def tenants_by_username(self, username: str) -> list[Tenant]:
        rows = self._db.execute(
            f"SELECT {TENANT_COLUMNS} FROM tenants WHERE username = ? ORDER BY position",
            (username,),
        )
        return [_tenant(*row) for row in rows]

    def agent(self, tenant_id: str, agent_id: str) -> Agent | None:
        row = self._db.execute(
            f"SELECT {AGENT_COLUMNS} FROM agents WHERE tenant_id = ? AND agent_id = ?",
            (tenant_id, agent_id),
        ).fetchone()
        return None if row is None else Agent(*row)

    def agents(self, tenant_id: str) -> list[Agent]:
        rows = self._db.execute(
            f"SELECT {AGENT_COLUMNS} FROM agents WHERE tenant_id = ? ORDER BY position",
            (tenant_id,),
        )
        return [Agent(*row) for row in rows]

    def events_after(self, tenant_id: str, sequence: int, limit: int) -> list[Event]:
        rows = self._db.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE tenant_id = ? AND sequence > ?"
            " ORDER BY sequence LIMIT ?",
            (tenant_id, sequence, limit),
        )
        return [
            Event(tenant_id, number, published, kind, agent_id, orjson.loads(body))
            for number, published, kind, agent_id, body in rows
        ]

    def orphan_event_logs(self) -> list[tuple[str, int]]:
        """Each tenant id of the log found by a seek along the primary key, and its newest
        event by one more: a ``GROUP BY`` read the whole log (83 ms for 500,000 events, under
        the write lock every worker waits for) where this reads two rows per tenant."""
        rows = self._db.execute(ORPHAN_EVENT_LOGS)
        return [(tenant_id, int(newest)) for tenant_id, newest in rows]

    def record(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (RECORD + key,)).fetchone()
        return None if row is None else bytes(row[0])

    def put_record(self, key: str, value: bytes | None) -> None:
        if value is None:
            self._db.execute("DELETE FROM meta WHERE key = ?", (RECORD + key,))
        else:
            self._db.execute(PUT_META, (RECORD + key, value))

    def last_event(self, tenant_id: str) -> int:
        newest = self._newest_event(tenant_id)
        return self._dropped_up_to() if newest is None else newest

    def append_events(
        self, tenant_id: str, drafts: Iterable[EventDraft], published_ms: int
    ) -> None:
        first = self.last_event(tenant_id) + 1
        rows = [
            (tenant_id, number, published_ms, draft.kind, draft.agent_id, orjson.dumps(draft.body))
            for number, draft in enumerate(drafts, start=first)
        ]
        self._db.executemany(
            f"INSERT INTO events (tenant_id, {EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", rows
        )
        last = first + len(rows) - 1
        if last // PRUNE_EVERY != (first - 1) // PRUNE_EVERY:
            self._db.execute(
                "DELETE FROM events WHERE tenant_id = ? AND sequence <= ?",
                (tenant_id, last - EVENT_LOG_SIZE),
            )

    def drop_history(self, tenant_id: str) -> None:
        suffix = tenant_record_suffix(tenant_id)
        self._db.execute(
            "DELETE FROM meta WHERE substr(key, 1, ?) = ? AND substr(key, -?) = ?",
            (len(RECORD), RECORD, len(suffix), suffix),
        )
        newest = self._newest_event(tenant_id)
        if newest is None:
            return
        if newest > self._dropped_up_to():
            self._db.execute(PUT_META, (DROPPED_UP_TO, str(newest).encode()))
        self._db.execute("DELETE FROM events WHERE tenant_id = ?", (tenant_id,))

    def _dropped_up_to(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (DROPPED_UP_TO,)).fetchone()
        return 0 if row is None else int(bytes(row[0]))

    def _newest_event(self, tenant_id: str) -> int | None:
        row = self._db.execute(
            "SELECT MAX(sequence) FROM events WHERE tenant_id = ?", (tenant_id,)
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def replace_all(self, tenants: Iterable[FixtureTenant], fixture: bytes) -> None:
        self.tenants_changed = True
        self._db.execute("DELETE FROM agents")
        self._db.execute("DELETE FROM tenants")
        self.set_fixture(fixture)
        for built in tenants:
            self.save_tenant(built.tenant, built.agents)

    def set_fixture(self, fixture: bytes) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('fixture', ?)", (fixture,)
        )

    def save_tenant(self, tenant: Tenant, agents: Iterable[Agent] | None = None) -> None:
        self.tenants_changed = True
        self._db.execute(
            SAVE_TENANT,
            (
                tenant.tenant_id,
                tenant.username,
                tenant.token,
                int(tenant.api_enabled),
                _encode_settings(tenant),
            ),
        )
        if agents is not None:
            self._db.execute("DELETE FROM agents WHERE tenant_id = ?", (tenant.tenant_id,))
            self._db.executemany(
                INSERT_AGENT,
                (_agent_row(tenant.tenant_id, agent) for agent in agents),
            )

    def delete_tenant(self, tenant_id: str) -> None:
        self.tenants_changed = True
        self._db.execute("DELETE FROM agents WHERE tenant_id = ?", (tenant_id,))
        self._db.execute("DELETE FROM tenants WHERE tenant_id = ?", (tenant_id,))

    def save_agent(self, tenant_id: str, agent: Agent) -> None:
        """One UPDATE for an existing agent (a status change); an INSERT only for a new one."""
        row = _agent_row(tenant_id, agent)
        if self._db.execute(UPDATE_AGENT, (*row[2:], *row[:2])).rowcount == 0:
            self._db.execute(INSERT_AGENT, row)

    def delete_agent(self, tenant_id: str, agent_id: str) -> None:
        self._db.execute(
            "DELETE FROM agents WHERE tenant_id = ? AND agent_id = ?", (tenant_id, agent_id)
        )


def _agent_row(tenant_id: str, agent: Agent) -> tuple[Any, ...]:
    return (
        tenant_id,
        agent.agent_id,
        agent.group_id,
        agent.status,
        agent.name,
        agent.sub_status,
        agent.list_id,
        agent.item_id,
        agent.short_code,
    )


def _encode_settings(tenant: Tenant) -> bytes:
    state = tenant.to_state(())
    return orjson.dumps({key: state[key] for key in ("status-code-lists", "groups")})


def _tenant(tenant_id: str, username: str, token: str, enabled: int, settings: bytes) -> Tenant:
    lists, groups = _decode_settings(bytes(settings))
    return Tenant(tenant_id, username, token, bool(enabled), lists, groups)


@lru_cache(maxsize=256)
def _decode_settings(
    settings: bytes,
) -> tuple[Mapping[int, StatusCodeList], Mapping[int, Group]]:
    """Status-code lists and groups, decoded once per distinct value and shared by every tenant
    read with it: read-only maps of frozen values, so no reader can change them for the next."""
    raw = {"tenant-id": "-", "username": "-", "token": "-", **orjson.loads(settings)}
    tenant = build_settings(raw)
    return tenant.status_code_lists, tenant.groups
