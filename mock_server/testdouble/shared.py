"""Faults and the journal in files every worker process maps, so that all of them share them.

``serve --workers N`` (and ``--state``) keeps them here: a fault's ``times`` and seeded
``probability`` run down once across all workers, and the journal holds every exchange in
the order they were recorded, whichever worker served it. The classes answer exactly as
``FaultRegistry`` and ``Journal`` do in one process (the same parsing, matching and JSON).

Faults are rows of a SQLite file; the journal is a ring of slots in ``FILE.journal``, so that
recording an exchange (every API request) is a copy of bytes, not a SQL transaction. Writers
queue on an ``flock`` of ``FILE.lock`` (woken at once, as the state store's are), and that
file's first bytes count fault changes, so a request checks "no faults" without SQL and
re-reads the definitions only after one changed. Matching a path runs outside every lock.
Nothing here needs to survive a crash (``synchronous=OFF``); the files are made anew per run.
"""

from __future__ import annotations

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
from mock_server.testdouble.journal import JOURNAL_BYTES, Exchange, JournalFilter
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
"""
COUNTERS = struct.Struct("<QQ")
"""(changes, count) of the faults, at the start of ``FILE.lock``."""


def shared_test_double_path(state_file: str | Path) -> Path:
    """The test double's file beside a state file."""
    return Path(f"{state_file}{SUFFIX}")


def remove_shared_test_double(path: Path) -> None:
    """Start a run with no faults and an empty journal (they never outlive a run)."""
    for suffix in ("", "-wal", "-shm", ".lock", ".journal"):
        with suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()


_forks = [0]
"""How many forks this process is away from the one that imported this module."""


def _count_fork() -> None:
    _forks[0] += 1


if hasattr(os, "register_at_fork"):  # not on Windows, where serve cannot run
    os.register_at_fork(after_in_child=_count_fork)


class SharedFile:
    """The SQLite file and its lock: one connection per process, writers serialised.

    A forked child opens its own connection, lock file and mapping on first use (SQLite's locks
    are per process, and an inherited descriptor would share the parent's ``flock``), leaving
    the parent's untouched. A fork hook counts forks, so that every request learns it is still
    in the process that opened them without a ``getpid()`` system call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.Lock()
        self._opened_at = -1
        self._connection: sqlite3.Connection | None = None
        self._lock_file: IO[bytes] | None = None
        self._lock_fd = -1
        self._map: mmap.mmap | None = None
        import fcntl  # here, not at the top: there is none on Windows, where serve cannot run

        self._flock = fcntl.flock
        self._exclusive, self._unlock = fcntl.LOCK_EX, fcntl.LOCK_UN
        connection = self._open()
        self._flock(self._lock_fd, self._exclusive)
        try:
            connection.executescript(SCHEMA)
        finally:
            self._flock(self._lock_fd, self._unlock)

    def _open(self) -> sqlite3.Connection:
        """This process's connection, opened with the lock file and its mapping."""
        if self._opened_at != _forks[0] or self._connection is None:
            connection = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=OFF")
            lock_file = open(f"{self.path}.lock", "a+b")  # noqa: SIM115 - kept open
            if os.fstat(lock_file.fileno()).st_size < COUNTERS.size:
                os.ftruncate(lock_file.fileno(), COUNTERS.size)
            self._map = mmap.mmap(lock_file.fileno(), COUNTERS.size)
            self._connection, self._lock_file = connection, lock_file
            self._lock_fd, self._opened_at = lock_file.fileno(), _forks[0]
        return self._connection

    def close(self) -> None:
        """Close this process's connection, mapping and lock file."""
        if self._opened_at == _forks[0]:
            if self._map is not None:
                self._map.close()
            if self._lock_file is not None:
                self._lock_file.close()
            if self._connection is not None:
                self._connection.close()
        self._connection, self._lock_file, self._map, self._opened_at = None, None, None, -1
        self._lock_fd = -1

    def counters(self) -> tuple[int, int]:
        """(changes, count) of the faults, read from the mapping: no lock, no SQL."""
        if self._opened_at != _forks[0] or self._map is None:
            self._open()
        assert self._map is not None
        changes, count = COUNTERS.unpack_from(self._map)
        return changes, count

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

    def locked(self) -> SharedFile:
        """The writers' lock alone, for what lives beside the database (the journal):
        ``with shared.locked():``. A class's ``__enter__``/``__exit__``, not a generator: the
        journal takes it on every request."""
        return self

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        try:
            if self._opened_at != _forks[0] or self._connection is None:
                self._open()
            self._flock(self._lock_fd, self._exclusive)
        except BaseException:
            self._thread_lock.release()
            raise

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._flock(self._lock_fd, self._unlock)
        finally:
            self._thread_lock.release()

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        with self:
            connection = self._open()
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")


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


def _encode(exchange: Exchange) -> tuple[bytes, bytes, bytes]:
    """The fields as a JSON array (``_FIELDS`` in order; a body kept only as its size goes
    there too) and the two bodies. An array rather than an object: it is built and written
    on every API request, and only ``_decode`` reads it."""
    request_body, response_body = exchange.request_body, exchange.response_body
    fields = (
        exchange.method,
        exchange.path,
        exchange.query,
        exchange.fault,
        exchange.request_headers,
        exchange.started,
        exchange.outcome,
        exchange.status,
        exchange.duration_ms,
        exchange.response_headers,
        request_body if isinstance(request_body, int) else None,
        response_body if isinstance(response_body, int) else None,
    )
    return (
        orjson.dumps(fields),
        b"" if isinstance(request_body, int) else request_body,
        b"" if isinstance(response_body, int) else response_body,
    )


def _decode(exchange_id: int, fields: bytes, request_body: bytes, response_body: bytes) -> Exchange:
    (
        method,
        path,
        query,
        fault,
        request_headers,
        started,
        outcome,
        status,
        duration_ms,
        response_headers,
        request_size,
        response_size,
    ) = orjson.loads(fields)
    return Exchange(
        method=method,
        path=path,
        query=query,
        fault=fault,
        request_headers=[(name, value) for name, value in request_headers],
        request_body=request_body if request_size is None else request_size,
        started=started,
        outcome=outcome,
        status=status,
        duration_ms=duration_ms,
        response_headers=None
        if response_headers is None
        else [(name, value) for name, value in response_headers],
        response_body=response_body if response_size is None else response_size,
        id=exchange_id,
    )


MIN_SLOT_BYTES = 4096
JOURNAL_HEADER = struct.Struct("<QQ")
"""(next id, first id not cleared) at the start of ``FILE.journal``."""
SLOT_HEADER = struct.Struct("<QIII")
"""(id, length of the fields, of the request body, of the response body) at a slot's start."""


class SharedJournal:
    """``Journal`` across processes: a ring of ``size`` slots in a file mapped by every
    worker, the exchange of id ``n`` in slot ``n % size``, ``JOURNAL_BYTES`` in all (a sparse
    file: only what was written takes memory or disk). Recording copies bytes under the
    lock (no SQL); an exchange too large for its slot keeps its bodies' sizes only."""

    def __init__(self, shared: SharedFile, size: int) -> None:
        if size < 1:
            raise ValueError(f"the journal size must be at least 1, got {size}")
        self.shared = shared
        self.size = size
        self.slot = max(MIN_SLOT_BYTES, JOURNAL_BYTES // size)
        self._path = Path(f"{shared.path}.journal")
        self._mapped_at = -1
        self._map: mmap.mmap | None = None

    def _mapped(self) -> mmap.mmap:
        """This process's mapping (a forked child maps the file anew)."""
        if self._map is None or self._mapped_at != _forks[0]:
            length = JOURNAL_HEADER.size + self.size * self.slot
            with open(self._path, "a+b") as file:
                if os.fstat(file.fileno()).st_size < length:
                    os.ftruncate(file.fileno(), length)
                self._map = mmap.mmap(file.fileno(), length)
            self._mapped_at = _forks[0]
        return self._map

    def close(self) -> None:
        if self._map is not None and self._mapped_at == _forks[0]:
            self._map.close()
        self._map, self._mapped_at = None, -1

    def _offset(self, exchange_id: int) -> int:
        return JOURNAL_HEADER.size + (exchange_id % self.size) * self.slot

    def record(self, exchange: Exchange) -> None:
        """Encoded before the lock is taken; under it, one copy into the slot (its header
        and the bytes together) and the journal's header."""
        fields, request_body, response_body = _encode(exchange)
        if SLOT_HEADER.size + len(fields) + len(request_body) + len(response_body) > self.slot:
            exchange.request_body = len(request_body) or exchange.request_body
            exchange.response_body = len(response_body) or exchange.response_body
            fields, request_body, response_body = _encode(exchange)
        if SLOT_HEADER.size + len(fields) > self.slot:
            exchange.request_headers = [("X-Emulator-Note", "headers too large to record")]
            exchange.response_headers = None
            fields, request_body, response_body = _encode(exchange)
        lengths = (len(fields), len(request_body), len(response_body))
        body = fields + request_body + response_body
        journal = self._mapped()
        with self.shared.locked():
            next_id, floor = JOURNAL_HEADER.unpack_from(journal)
            exchange_id = next_id or 1
            offset = JOURNAL_HEADER.size + (exchange_id % self.size) * self.slot
            journal[offset : offset + SLOT_HEADER.size + len(body)] = (
                SLOT_HEADER.pack(exchange_id, *lengths) + body
            )
            JOURNAL_HEADER.pack_into(journal, 0, exchange_id + 1, floor)
        exchange.id = exchange_id

    def _window(self, journal: mmap.mmap) -> list[Exchange]:
        next_id, floor = JOURNAL_HEADER.unpack_from(journal)
        exchanges = []
        for exchange_id in range(max(floor, next_id - self.size, 1), next_id):
            offset = self._offset(exchange_id)
            stored, fields, request, response = SLOT_HEADER.unpack_from(journal, offset)
            if stored != exchange_id:
                continue  # cleared
            start = offset + SLOT_HEADER.size
            exchanges.append(
                _decode(
                    exchange_id,
                    journal[start : start + fields],
                    journal[start + fields : start + fields + request],
                    journal[start + fields + request : start + fields + request + response],
                )
            )
        return exchanges

    def entries(self, where: JournalFilter | None = None) -> list[dict[str, Any]]:
        chosen = where or JournalFilter()
        with self.shared.locked():
            exchanges = self._window(self._mapped())
        return [exchange.to_json() for exchange in exchanges if chosen.accepts(exchange)]

    def clear(self, where: JournalFilter | None = None) -> int:
        chosen = where or JournalFilter()
        with self.shared.locked():
            journal = self._mapped()
            gone = [exchange.id for exchange in self._window(journal) if chosen.accepts(exchange)]
            if where is None:
                next_id, _ = JOURNAL_HEADER.unpack_from(journal)
                JOURNAL_HEADER.pack_into(journal, 0, next_id, next_id)
            for exchange_id in gone:
                SLOT_HEADER.pack_into(journal, self._offset(exchange_id), 0, 0, 0, 0)
        return len(gone)
