"""Faults and the journal in one SQLite file, so that every worker process shares them.

``serve --workers N`` (and ``--state``) keeps them here: a fault's ``times`` and seeded
``probability`` run down once across all workers, and the journal holds every exchange in
the order they were recorded, whichever worker served it. The classes answer exactly as
``FaultRegistry`` and ``Journal`` do in one process (the same parsing, matching and JSON).

Writers queue on an ``flock`` of ``FILE.lock`` (woken at once, as the state store's are), and
the file's first bytes count fault changes, so a request checks "no faults" without SQL and
re-reads the definitions only after one changed. Matching a path runs outside every lock.
Nothing here needs to survive a crash: ``synchronous=OFF``; the file is made anew per run.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import random
import sqlite3
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import orjson

from mock_server.testdouble.faults import Fault, FaultNotFound, Target, parse_fault
from mock_server.testdouble.journal import Exchange, JournalFilter
from schemas.wire import path_ids

SUFFIX = ".testdouble"
SCHEMA = """
CREATE TABLE IF NOT EXISTS faults (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    definition BLOB NOT NULL,
    hits INTEGER NOT NULL,
    remaining INTEGER,
    rng BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    exchange BLOB NOT NULL,
    request_body BLOB,
    response_body BLOB
);
"""
COUNTERS = struct.Struct("<QQ")
"""(changes, count) of the faults, at the start of ``FILE.lock``."""
TRIM_EVERY = 64
"""The journal drops what fell out of its window once per this many records."""


def shared_test_double_path(state_file: str | Path) -> Path:
    """The test double's file beside a state file."""
    return Path(f"{state_file}{SUFFIX}")


def remove_shared_test_double(path: Path) -> None:
    """Start a run with no faults and an empty journal (they never outlive a run)."""
    for suffix in ("", "-wal", "-shm", ".lock"):
        with suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()


class SharedFile:
    """The SQLite file and its lock: one connection per process, writers serialised."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.Lock()
        self._pid = -1
        self._connection: sqlite3.Connection | None = None
        self._lock_file: IO[bytes] | None = None
        self._map: mmap.mmap | None = None
        connection = self._open()
        assert self._lock_file is not None
        fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        try:
            connection.executescript(SCHEMA)
        finally:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    def _open(self) -> sqlite3.Connection:
        """This process's connection; a forked child opens its own (SQLite's locks are per
        process), leaving the parent's untouched."""
        if self._pid != os.getpid() or self._connection is None:
            connection = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=OFF")
            lock_file = open(f"{self.path}.lock", "a+b")  # noqa: SIM115 - kept open
            if os.fstat(lock_file.fileno()).st_size < COUNTERS.size:
                os.ftruncate(lock_file.fileno(), COUNTERS.size)
            self._map = mmap.mmap(lock_file.fileno(), COUNTERS.size)
            self._connection, self._lock_file, self._pid = connection, lock_file, os.getpid()
        return self._connection

    def counters(self) -> tuple[int, int]:
        self._open()
        assert self._map is not None
        changes, count = COUNTERS.unpack_from(self._map)
        return int(changes), int(count)

    def set_fault_count(self, count: int) -> None:
        """Under ``writing()``: the faults changed; ``count`` of them exist now."""
        assert self._map is not None
        changes, _ = COUNTERS.unpack_from(self._map)
        COUNTERS.pack_into(self._map, 0, changes + 1, count)

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        with self._thread_lock:
            connection = self._open()
            connection.execute("BEGIN")
            try:
                yield connection
            finally:
                connection.execute("COMMIT")

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        with self._thread_lock:
            connection = self._open()
            assert self._lock_file is not None
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            try:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    yield connection
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
            finally:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)


def _rng_state(rng: random.Random) -> bytes:
    return orjson.dumps(rng.getstate())


def _rng(state: bytes) -> random.Random:
    version, internal, gauss = orjson.loads(state)
    rng = random.Random()
    rng.setstate((version, tuple(internal), gauss))
    return rng


class SharedFaults:
    """``FaultRegistry`` over a ``SharedFile``: the same faults, counters and draws in every
    worker. Ids come from the table's own sequence, so they are never reused."""

    def __init__(self, shared: SharedFile) -> None:
        self.shared = shared
        self._seen = -1
        self._definitions: list[Fault] = []

    def add(self, definition: object) -> Fault:
        with self.shared.writing() as connection:
            row = connection.execute("SELECT seq FROM sqlite_sequence WHERE name = 'faults'")
            found = row.fetchone()
            fault = parse_fault(f"f{(found[0] if found else 0) + 1}", definition)
            connection.execute(
                "INSERT INTO faults (id, definition, hits, remaining, rng) VALUES (?, ?, 0, ?, ?)",
                (fault.id, orjson.dumps(fault.definition), fault.remaining, _rng_state(fault.rng)),
            )
            self._count_changed(connection)
        return fault

    def _count_changed(self, connection: sqlite3.Connection) -> None:
        (count,) = connection.execute("SELECT count(*) FROM faults").fetchone()
        self.shared.set_fault_count(int(count))

    def _rows(self, connection: sqlite3.Connection) -> list[Fault]:
        rows = connection.execute(
            "SELECT id, definition, hits, remaining, rng FROM faults ORDER BY position"
        )
        return [_fault(*row) for row in rows]

    def all(self) -> list[dict[str, Any]]:
        with self.shared.reading() as connection:
            return [fault.to_json() for fault in self._rows(connection)]

    def get(self, fault_id: str) -> dict[str, Any]:
        with self.shared.reading() as connection:
            row = connection.execute(
                "SELECT id, definition, hits, remaining, rng FROM faults WHERE id = ?", (fault_id,)
            ).fetchone()
        if row is None:
            raise FaultNotFound(fault_id)
        return _fault(*row).to_json()

    def delete(self, fault_id: str) -> None:
        with self.shared.writing() as connection:
            deleted = connection.execute("DELETE FROM faults WHERE id = ?", (fault_id,)).rowcount
            if not deleted:
                raise FaultNotFound(fault_id)
            self._count_changed(connection)

    def clear(self) -> None:
        with self.shared.writing() as connection:
            connection.execute("DELETE FROM faults")
            self._count_changed(connection)

    def _current(self, changes: int) -> list[Fault]:
        """The definitions as of ``changes``, parsed once per change in this process."""
        if changes != self._seen:
            with self.shared.reading() as connection:
                self._definitions = self._rows(connection)
            self._seen = changes
        return self._definitions

    def select(self, method: str, path: str) -> Fault | None:
        """As ``FaultRegistry.select``; the counters of the fault chosen change for everyone."""
        changes, count = self.shared.counters()
        if count == 0:
            return None
        target = Target(method, path, *path_ids(path))
        candidates = [fault for fault in self._current(changes) if fault.match.accepts(target)]
        if not candidates:
            return None
        with self.shared.writing() as connection:
            for fault in candidates:
                row = connection.execute(
                    "SELECT hits, remaining, rng FROM faults WHERE id = ?", (fault.id,)
                ).fetchone()
                if row is None:
                    continue
                hits, remaining, rng_state = row
                if remaining is not None and remaining <= 0:
                    continue
                if fault.probability < 1:
                    rng = _rng(rng_state)
                    drawn = rng.random()
                    connection.execute(
                        "UPDATE faults SET rng = ? WHERE id = ?", (_rng_state(rng), fault.id)
                    )
                    if drawn >= fault.probability:
                        continue
                hits += 1
                remaining = None if remaining is None else remaining - 1
                connection.execute(
                    "UPDATE faults SET hits = ?, remaining = ? WHERE id = ?",
                    (hits, remaining, fault.id),
                )
                return replace(fault, hits=hits, remaining=remaining)
        return None


def _fault(fault_id: str, definition: bytes, hits: int, remaining: int | None, rng: bytes) -> Fault:
    fault = parse_fault(fault_id, orjson.loads(definition))
    return replace(fault, hits=hits, remaining=remaining, rng=_rng(rng))


def _encode(exchange: Exchange) -> tuple[bytes, bytes | int, bytes | int]:
    fields = {
        "method": exchange.method,
        "path": exchange.path,
        "query": exchange.query,
        "fault": exchange.fault,
        "request_headers": exchange.request_headers,
        "started": exchange.started,
        "outcome": exchange.outcome,
        "status": exchange.status,
        "duration_ms": exchange.duration_ms,
        "response_headers": exchange.response_headers,
    }
    return orjson.dumps(fields), exchange.request_body, exchange.response_body


def _decode(
    exchange_id: int, fields: bytes, request_body: bytes | int, response_body: bytes | int
) -> Exchange:
    data = orjson.loads(fields)
    response_headers = data["response_headers"]
    return Exchange(
        method=data["method"],
        path=data["path"],
        query=data["query"],
        fault=data["fault"],
        request_headers=[(name, value) for name, value in data["request_headers"]],
        request_body=request_body,
        started=data["started"],
        outcome=data["outcome"],
        status=data["status"],
        duration_ms=data["duration_ms"],
        response_headers=None
        if response_headers is None
        else [(name, value) for name, value in response_headers],
        response_body=response_body,
        id=exchange_id,
    )


class SharedJournal:
    """``Journal`` over a ``SharedFile``: the last ``size`` exchanges of every worker, ids
    in the order they were recorded."""

    def __init__(self, shared: SharedFile, size: int) -> None:
        if size < 1:
            raise ValueError(f"the journal size must be at least 1, got {size}")
        self.shared = shared
        self.size = size

    def record(self, exchange: Exchange) -> None:
        with self.shared.writing() as connection:
            cursor = connection.execute(
                "INSERT INTO journal (exchange, request_body, response_body) VALUES (?, ?, ?)",
                _encode(exchange),
            )
            exchange.id = int(cursor.lastrowid or 0)
            if exchange.id % TRIM_EVERY == 0:
                connection.execute("DELETE FROM journal WHERE id <= ?", (exchange.id - self.size,))

    def _window(self, connection: sqlite3.Connection) -> list[Exchange]:
        rows = connection.execute(
            "SELECT id, exchange, request_body, response_body FROM journal "
            "WHERE id > (SELECT coalesce(max(id), 0) FROM journal) - ? ORDER BY id",
            (self.size,),
        )
        return [_decode(*row) for row in rows]

    def entries(self, where: JournalFilter | None = None) -> list[dict[str, Any]]:
        chosen = where or JournalFilter()
        with self.shared.reading() as connection:
            exchanges = self._window(connection)
        return [exchange.to_json() for exchange in exchanges if chosen.accepts(exchange)]

    def clear(self, where: JournalFilter | None = None) -> int:
        chosen = where or JournalFilter()
        with self.shared.writing() as connection:
            window = self._window(connection)
            gone = [exchange.id for exchange in window if chosen.accepts(exchange)]
            connection.executemany("DELETE FROM journal WHERE id = ?", [(i,) for i in gone])
            if where is None:
                connection.execute("DELETE FROM journal")
        return len(gone)
