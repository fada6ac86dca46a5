"""Faults and the journal in files every worker process maps, so that all of them share them.

``serve --workers N`` (and ``--state``) keeps them here: a fault's ``times`` and seeded
``probability`` run down once across all workers, and the journal holds every exchange in
the order they were recorded, whichever worker served it. The classes answer exactly as
``FaultRegistry`` and ``Journal`` do in one process (the same parsing, matching and JSON).

Faults are rows of a SQLite file. Their writers queue on an ``flock`` of ``FILE.lock``
(woken at once, as the state store's are), and that file's first bytes count fault changes,
so a request checks "no faults" without SQL and re-reads the definitions only after one
changed. Matching a path runs outside every lock. The journal is a ring of slots per worker
(``FILE.journal.N``), so that recording an exchange (every API request) is a copy of bytes
into the worker's own ring, waiting for no other process; readers put the rings in order.
Nothing here needs to survive a crash (``synchronous=OFF``); the files are made anew per run.
"""

from __future__ import annotations

import glob
import mmap
import os
import random
import sqlite3
import struct
import threading
import time
import zlib
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
    for ring in path.parent.glob(f"{glob.escape(path.name)}.journal.*"):
        with suppress(FileNotFoundError):
            ring.unlink()


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
INDEX = struct.Struct("<QQQ")
"""(next id, first id not cleared, rings made) in ``FILE.journal``; only readers write it,
under the lock."""
HEAD = struct.Struct("<Q")
"""A sequence number: at a ring's start the last one its worker wrote, at ``GIVEN_AT`` the
last one readers gave an id."""
GIVEN_AT = 64
"""Readers' word of a ring, on a cache line apart from the worker's."""
IDS_AT = 128
ASSIGNMENT = struct.Struct("<QQ")
"""(sequence number, id) of each slot, in a table at ``IDS_AT``; only readers write it."""
SLOT_HEADER = struct.Struct("<QQIIII")
"""(sequence number, ``monotonic_ns`` when recorded, lengths of the fields, of the request
body and of the response body, CRC-32 of the three) at a slot's start."""
UNWRITTEN = bytes(HEAD.size)


class SharedJournal:
    """``Journal`` across processes, without a lock shared on the way of a request.

    Each worker records into a ring of its own (``FILE.journal.N``, claimed with an ``flock``
    held for its life; a respawned worker takes over a free one): ``size`` slots of
    ``JOURNAL_BYTES / size`` bytes in a sparse file every worker maps, the exchange of
    sequence number ``n`` in slot ``n % size``. Recording is three copies into the ring and
    taking no lock another process holds. A reader (``entries``, ``clear``, under the
    writers' lock of ``FILE.lock``) first gives every exchange recorded since the last read
    its id, in the order they were recorded (by the monotonic clock all processes share),
    counting those already overwritten, so ids run as one journal's would; the ids live in
    the rings' tables and ``FILE.journal``. A slot is written invalid, then its bytes, then
    its header with their CRC, so a reader that meets one being rewritten leaves it out.
    An exchange too large for its slot keeps its bodies' sizes only."""

    def __init__(self, shared: SharedFile, size: int) -> None:
        if size < 1:
            raise ValueError(f"the journal size must be at least 1, got {size}")
        import fcntl  # here, not at the top: there is none on Windows, where serve cannot run

        self._flock, self._claim = fcntl.flock, fcntl.LOCK_EX | fcntl.LOCK_NB
        self.shared = shared
        self.size = size
        self.slot = max(MIN_SLOT_BYTES, JOURNAL_BYTES // size)
        self._slots_at = IDS_AT + -(-size * ASSIGNMENT.size // 64) * 64
        self._length = self._slots_at + size * self.slot
        self._writing = threading.Lock()
        self._opened_at = -1
        self._index: mmap.mmap | None = None
        self._rings: dict[int, mmap.mmap] = {}
        self._own: mmap.mmap | None = None
        self._own_descriptor = -1
        self._head = 0

    def _ring_path(self, number: int) -> Path:
        return Path(f"{self.shared.path}.journal.{number}")

    def _fresh_process(self) -> None:
        """In a process that has not used this journal yet (a forked child included): drop
        the inherited mappings and this process's copy of the parent's ring descriptor, which
        leaves the parent's claim as it was."""
        if self._opened_at == _forks[0]:
            return
        self._release()
        self._opened_at = _forks[0]

    def _mapped(self, path: Path, length: int, descriptor: int = -1) -> mmap.mmap:
        """``path`` mapped whole, made ``length`` bytes long (sparse) if it is shorter."""
        owned = descriptor < 0
        if owned:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if os.fstat(descriptor).st_size < length:
                os.ftruncate(descriptor, length)
            return mmap.mmap(descriptor, length)
        finally:
            if owned:
                os.close(descriptor)

    def _index_map(self) -> mmap.mmap:
        self._fresh_process()
        if self._index is None:
            self._index = self._mapped(Path(f"{self.shared.path}.journal"), INDEX.size)
        return self._index

    def _ring(self, number: int) -> mmap.mmap:
        """Ring ``number`` mapped for reading (under the lock)."""
        ring = self._rings.get(number)
        if ring is None:
            ring = self._rings[number] = self._mapped(self._ring_path(number), self._length)
        return ring

    def _own_ring(self) -> mmap.mmap:
        """This process's ring, claimed on first use: the first whose ``flock`` is free, or a
        new one."""
        self._fresh_process()
        if self._own is not None:
            return self._own
        with self.shared.locked():
            index = self._index_map()
            next_id, floor, rings = INDEX.unpack_from(index)
            for number in range(rings + 1):
                descriptor = os.open(self._ring_path(number), os.O_RDWR | os.O_CREAT, 0o666)
                try:
                    self._flock(descriptor, self._claim)
                except BlockingIOError:
                    os.close(descriptor)
                    continue
                self._own = self._mapped(self._ring_path(number), self._length, descriptor)
                self._own_descriptor = descriptor
                (self._head,) = HEAD.unpack_from(self._own)
                if number == rings:
                    INDEX.pack_into(index, 0, next_id, floor, rings + 1)
                return self._own
        raise AssertionError("unreachable: a ring no one has made is always free")

    def close(self) -> None:
        if self._opened_at == _forks[0]:
            self._release()  # this process's claim goes with its descriptor
        self._index, self._own, self._rings, self._own_descriptor = None, None, {}, -1
        self._opened_at = -1

    def _release(self) -> None:
        """Close the mappings and the ring descriptor this object holds (in a forked child,
        its copies only: the parent's claim stays)."""
        for mapped in (self._index, self._own, *self._rings.values()):
            if mapped is not None:
                mapped.close()
        if self._own_descriptor >= 0:
            os.close(self._own_descriptor)
        self._index, self._own, self._rings, self._own_descriptor = None, None, {}, -1

    def record(self, exchange: Exchange) -> None:
        """Encoded first; then three copies into this worker's ring and its head."""
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
        checksum = zlib.crc32(body)
        with self._writing:
            ring = self._own_ring()
            sequence = self._head + 1
            offset = self._slots_at + (sequence % self.size) * self.slot
            start = offset + SLOT_HEADER.size
            ring[offset : offset + HEAD.size] = UNWRITTEN
            ring[start : start + len(body)] = body
            ring[offset:start] = SLOT_HEADER.pack(sequence, time.monotonic_ns(), *lengths, checksum)
            HEAD.pack_into(ring, 0, sequence)
            self._head = sequence

    def _slot(self, ring: mmap.mmap, sequence: int) -> tuple[int, bytes, int, int] | None:
        """(when, bytes, length of the fields, of the request body) of exchange ``sequence``
        of ``ring``; None when it was overwritten, or is being."""
        offset = self._slots_at + (sequence % self.size) * self.slot
        stored, when, fields, request, response, checksum = SLOT_HEADER.unpack_from(ring, offset)
        start = offset + SLOT_HEADER.size
        end = start + fields + request + response
        if stored != sequence or end > offset + self.slot:
            return None
        body = ring[start:end]
        if zlib.crc32(body) != checksum or HEAD.unpack_from(ring, offset)[0] != sequence:
            return None
        return when, body, fields, request

    def _give_ids(self) -> tuple[int, int, int]:
        """Under the lock: ids for every exchange recorded since the last read, oldest first,
        an overwritten one counted; (next id, first id not cleared, rings)."""
        index = self._index_map()
        next_id, floor, rings = INDEX.unpack_from(index)
        next_id = next_id or 1
        recorded: list[tuple[int, int, int]] = []
        for number in range(rings):
            ring = self._ring(number)
            (head,) = HEAD.unpack_from(ring, 0)
            (given,) = HEAD.unpack_from(ring, GIVEN_AT)
            first = max(given, head - self.size) + 1
            next_id += first - given - 1
            for sequence in range(first, head + 1):
                found = self._slot(ring, sequence)
                if found is None:
                    next_id += 1
                else:
                    recorded.append((found[0], number, sequence))
            HEAD.pack_into(ring, GIVEN_AT, head)
        for _, number, sequence in sorted(recorded):
            ASSIGNMENT.pack_into(self._ring(number), self._assignment(sequence), sequence, next_id)
            next_id += 1
        INDEX.pack_into(index, 0, next_id, floor, rings)
        return next_id, floor, rings

    def _assignment(self, sequence: int) -> int:
        return IDS_AT + (sequence % self.size) * ASSIGNMENT.size

    def _window(self) -> list[tuple[Exchange, int, int]]:
        """Under the lock: the exchanges in the journal, oldest first, each with its ring and
        sequence number."""
        next_id, floor, rings = self._give_ids()
        lowest = max(floor, next_id - self.size, 1)
        found = []
        for number in range(rings):
            ring = self._ring(number)
            for position in range(self.size):
                sequence, exchange_id = ASSIGNMENT.unpack_from(
                    ring, IDS_AT + position * ASSIGNMENT.size
                )
                if sequence == 0 or exchange_id < lowest:
                    continue
                slot = self._slot(ring, sequence)
                if slot is None:
                    continue
                _, body, fields, request = slot
                exchange = _decode(
                    exchange_id,
                    body[:fields],
                    body[fields : fields + request],
                    body[fields + request :],
                )
                found.append((exchange, number, sequence))
        found.sort(key=lambda located: located[0].id)
        return found

    def entries(self, where: JournalFilter | None = None) -> list[dict[str, Any]]:
        chosen = where or JournalFilter()
        with self.shared.locked():
            exchanges = [exchange for exchange, _, _ in self._window()]
        return [exchange.to_json() for exchange in exchanges if chosen.accepts(exchange)]

    def clear(self, where: JournalFilter | None = None) -> int:
        chosen = where or JournalFilter()
        with self.shared.locked():
            gone = [
                (number, sequence)
                for exchange, number, sequence in self._window()
                if chosen.accepts(exchange)
            ]
            if where is None:
                next_id, _, rings = INDEX.unpack_from(self._index_map())
                INDEX.pack_into(self._index_map(), 0, next_id, next_id, rings)
            for number, sequence in gone:
                ASSIGNMENT.pack_into(self._ring(number), self._assignment(sequence), 0, 0)
        return len(gone)
