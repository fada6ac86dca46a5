"""``serve``: granian's worker processes, each running the emulator under ``RSGIBridge``.

Every mode is this one server: one worker over the in-memory store by default, or several
over one SQLite file (``--state``, or a temporary one), with the test double's faults and
journal beside it, so that any number of workers answers as one process would.

A worker builds its app from a ``WorkerConfig`` (picklable, so workers may be spawned as
well as forked), then says it is ready by a file named after its pid in a folder the main
process made. ``GET /__admin/health`` answers 200 only when every worker has, and the main
process prints the banner at that moment, so a client that read it is answered at once.
"""

from __future__ import annotations

import gc
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from mock_server.core.backend import AgentStatusBackend
from mock_server.core.profiles import get_profile
from mock_server.core.sqlite_store import SQLiteStore
from mock_server.core.store import MemoryStore, StateStore
from mock_server.http.context import EXTENSION, EmulatorState
from mock_server.serving.rsgi import RSGIBridge
from mock_server.serving.tls import TLSFiles
from mock_server.serving.watch import FixtureWatcher
from mock_server.testdouble.shared import remove_shared_test_double, shared_test_double_path

AppFactory = Callable[..., Any]
"""``mock_server.app.create_app``, handed in by the command line (the layer above)."""

READY_TIMEOUT_SECONDS = 60.0
"""How long the main process waits for every worker to build its app before giving up."""
HTTP1_HEADER_READ_TIMEOUT_MS = 30_000
"""A client that has not sent its headers within this is disconnected; until then it costs
a little memory in the Rust runtime and no Python at all."""


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker needs to build the same app as every other worker."""

    document: Mapping[str, Any]
    profile: str
    admin_token: str | None
    validate_responses: bool
    journal_size: int
    state_file: str | None
    """The shared SQLite file; None keeps the state in the (only) worker's memory."""
    workers: int
    ready_directory: str
    watch: str | None = None
    """A fixture file to reload when it changes (one worker only)."""
    access_log: bool = True
    stream_time_scale: float = 1.0
    """The legacy stream's durations, times this (``serve --stream-time-scale``)."""


def ready_workers(directory: str) -> int:
    """How many workers said they are ready and still run (a dead one's file is ignored)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    return sum(1 for name in names if name.isdigit() and _alive(int(name)))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load_worker_app(factory: AppFactory, config: WorkerConfig) -> RSGIBridge:
    """In a worker: the app over the shared (or in-memory) state, ready to serve."""
    store: StateStore = (
        MemoryStore() if config.state_file is None else SQLiteStore(config.state_file)
    )
    shared = None if config.state_file is None else shared_test_double_path(config.state_file)
    app = factory(
        config.document,
        profile=config.profile,
        admin_token=config.admin_token,
        validate_responses=config.validate_responses,
        journal_size=config.journal_size,
        store=store,
        shared_test_double=shared,
    )
    state: EmulatorState = app.extensions[EXTENSION]
    state.readiness = partial(_readiness, config.ready_directory, config.workers)
    state.stream_time_scale = config.stream_time_scale
    if config.watch is not None:
        FixtureWatcher(config.watch, state.backend).start()
    # What the app is built of lives as long as the worker: out of the collector's sight, a
    # full collection (rare: none in 12 s of load) takes microseconds instead of about 13 ms,
    # a stall every request queued behind it on the worker would pay.
    gc.collect()
    gc.freeze()
    mark_ready(config.ready_directory)
    return RSGIBridge(
        app,
        multiprocess=config.workers > 1,
        access_log=sys.stderr if config.access_log else None,
    )


def _readiness(directory: str, expected: int) -> tuple[int, int]:
    return ready_workers(directory), expected


def seed_state(config: WorkerConfig) -> None:
    """Before any worker starts: seed a new state file from the fixture, once, so that the
    workers find it seeded instead of racing to do it, and start the test double empty.
    ``StateFileError`` when the file cannot be used."""
    if config.state_file is None:
        return
    store = SQLiteStore(config.state_file)
    try:
        AgentStatusBackend(config.document, get_profile(config.profile), store)
    finally:
        store.close()
    remove_shared_test_double(shared_test_double_path(config.state_file))


@dataclass
class StatePlan:
    """Where a run keeps its state: a file (``--state``, or a temporary one when several
    workers must share it and none was given), or None for the worker's memory."""

    state_file: str | None
    description: str
    temporary_directory: str | None = None

    def discard(self) -> None:
        if self.temporary_directory is not None:
            shutil.rmtree(self.temporary_directory, ignore_errors=True)


def plan_state(state_file: str | None, workers: int) -> StatePlan:
    if state_file is not None:
        kept = "kept from the last run" if Path(state_file).exists() else "new"
        return StatePlan(state_file, f"SQLite file {state_file} ({kept}; survives restarts)")
    if workers > 1:
        directory = tempfile.mkdtemp(prefix="agentstatus-")
        path = str(Path(directory) / "state.sqlite")
        description = (
            f"temporary SQLite file {path}, shared by the {workers} workers and removed at exit "
            "(no --state given)"
        )
        return StatePlan(path, description, directory)
    return StatePlan(None, "memory (this process only; lost at exit)")


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (a free port for 0) that granian's workers can bind
    beside (``SO_REUSEPORT``), held until they listen, so that no one else takes the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    reservation = socket.socket(family, socket.SOCK_STREAM)
    if hasattr(socket, "SO_REUSEPORT"):
        reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    reservation.bind((host, port))
    return reservation


def serve(
    factory: AppFactory,
    config: WorkerConfig,
    host: str,
    port: int,
    announce: Callable[[int], None],
    tls: TLSFiles | None = None,
) -> None:
    """Serve until interrupted (Ctrl-C, SIGTERM), over HTTPS when ``tls`` is given;
    ``announce(port)`` once every worker is ready. ``StateFileError`` before anything listens
    when the state file cannot be used."""
    seed_state(config)
    run_workers(
        partial(load_worker_app, factory, config),
        host=host,
        port=port,
        workers=config.workers,
        ready_directory=config.ready_directory,
        announce=announce,
        tls=tls,
    )


def run_workers(
    loader: Callable[[], Any],
    *,
    host: str,
    port: int,
    workers: int,
    ready_directory: str,
    announce: Callable[[int], None],
    tls: TLSFiles | None = None,
) -> None:
    """Granian's ``workers`` processes, each serving the RSGI app ``loader()`` builds (which
    calls ``mark_ready``), over TLS with ``tls``'s certificate when given; ``announce(port)``
    once all of them are ready."""
    from granian.constants import HTTPModes, Interfaces, Loops, SSLProtocols
    from granian.http import HTTP1Settings
    from granian.log import LogLevels
    from granian.server import Server

    reservation = reserve_port(host, port)
    bound = int(reservation.getsockname()[1])
    server = Server(
        "mock_server:emulator",  # a label only: ``loader`` builds the app
        address=host,
        port=bound,
        interface=Interfaces.RSGI,
        workers=workers,
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(header_read_timeout=HTTP1_HEADER_READ_TIMEOUT_MS),
        websockets=True,
        loop=Loops.uvloop if uvloop_available() else Loops.asyncio,
        log_level=LogLevels.warning,
        respawn_failed_workers=True,
        ssl_cert=None if tls is None else tls.certificate,
        ssl_key=None if tls is None else tls.key,
        # granian's default minimum is TLS 1.3, which clients built on OpenSSL 1.0 or an
        # early Java 8 cannot speak.
        ssl_protocol_min=SSLProtocols.tls12,
    )
    waiter = threading.Thread(
        target=_announce_when_ready,
        args=(ready_directory, workers, reservation, announce),
        name="announce",
        daemon=True,
    )
    waiter.start()
    server.serve(target_loader=loader, wrap_loader=False)


def uvloop_available() -> bool:
    """Whether the workers can run on uvloop: it answers 10-15% more requests per second than
    asyncio's loop (docs/serving.md), and does not exist on Windows."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def mark_ready(directory: str) -> None:
    """In a worker whose app is built: count it in ``ready_workers``."""
    Path(directory, str(os.getpid())).touch()


def _announce_when_ready(
    directory: str, workers: int, reservation: socket.socket, announce: Callable[[int], None]
) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    port = int(reservation.getsockname()[1])
    while ready_workers(directory) < workers or listening_sockets(port) < workers:
        if time.monotonic() > deadline:
            print("agentstatus-mock: the workers did not start; see above.", file=sys.stderr)
            os._exit(1)
        time.sleep(0.02)
    reservation.close()
    announce(port)


TCP_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
TCP_LISTEN = "0A"
"""The LISTEN state in those tables."""


def listening_sockets(port: int) -> int:
    """How many sockets listen on ``port``. On Linux each granian worker binds its own
    (``SO_REUSEPORT``) only after its app is built and marked ready, a moment in which the
    port refuses connections (longer under TLS); elsewhere the main process listens before any
    worker starts, so without the tables there is nothing to wait for."""
    if not os.path.exists(TCP_TABLES[0]):
        return sys.maxsize
    count = 0
    for table in TCP_TABLES:
        try:
            with open(table) as rows:
                next(rows, None)  # the header
                for row in rows:
                    fields = row.split()
                    local, state = fields[1], fields[3]
                    count += state == TCP_LISTEN and int(local.rsplit(":", 1)[1], 16) == port
        except OSError:
            continue  # no IPv6
    return count


def new_ready_directory() -> str:
    return tempfile.mkdtemp(prefix="agentstatus-ready-")


def remove_ready_directory(directory: str) -> None:
    shutil.rmtree(directory, ignore_errors=True)
