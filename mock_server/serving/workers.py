"""Production serving: the state store a run uses, and gunicorn for more than one worker.

One worker keeps the threaded development server and, unless ``--state`` is given, the
in-memory store. Several workers are several processes, so they share one SQLite file, never
a copy each: the one given with ``--state``, or a temporary one, removed at exit.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from mock_server.core.sqlite_store import SQLiteStore
from mock_server.core.store import MemoryStore, StateStore
from mock_server.testdouble.faults import MAX_LATENCY_MS

if TYPE_CHECKING:
    from gunicorn._types import _WSGIAppType

WORKER_CLASS = "sync"
"""Gunicorn's sync workers, one request at a time per process, chosen by measurement on 2
cores (README, "Benchmark"): gthread threads of one process contend for the GIL, and a thread
holding the write lock waits for it again after every SQLite call, so the lock is held while
other threads run; sync workers served the emulator faster, with half to a third of the p99."""
WORKER_TIMEOUT_SECONDS = MAX_LATENCY_MS // 1000 + 30
"""A sync worker busy for longer is killed: a request delayed by the longest fault must not be."""


@dataclass
class ChosenStore:
    store: StateStore
    description: str
    temporary_directory: Path | None = None
    owner: int = field(default_factory=os.getpid)

    def discard(self) -> None:
        """Close the store, and remove a temporary one: only in the process that made it (a
        gunicorn worker unwinds through the same code when it exits)."""
        self.store.close()
        if self.temporary_directory is not None and os.getpid() == self.owner:
            shutil.rmtree(self.temporary_directory, ignore_errors=True)


def choose_store(state_file: str | None, workers: int) -> ChosenStore:
    """The store for a run: SQLite when a file is given or several workers must share it."""
    if state_file is not None:
        path = Path(state_file)
        existed = path.exists()
        store = SQLiteStore(path)
        kept = "kept from the last run" if existed else "new"
        return ChosenStore(store, f"SQLite file {path} ({kept}; survives restarts)")
    if workers > 1:
        directory = Path(tempfile.mkdtemp(prefix="agentstatus-"))
        path = directory / "state.sqlite"
        description = (
            f"temporary SQLite file {path}, shared by the {workers} workers and removed at exit "
            "(no --state given)"
        )
        return ChosenStore(SQLiteStore(path), description, directory)
    return ChosenStore(MemoryStore(), "memory (this process only; lost at exit)")


class GunicornServer(BaseApplication):
    """Gunicorn serving an app built once, before the workers are forked."""

    def __init__(
        self,
        app: Flask,
        *,
        host: str,
        port: int,
        workers: int,
        on_ready: Callable[[int], None],
    ) -> None:
        self._app = app
        self._options: dict[str, Any] = {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": WORKER_CLASS,
            "timeout": WORKER_TIMEOUT_SECONDS,
            "loglevel": "warning",
            "accesslog": None,
            "when_ready": lambda arbiter: on_ready(_bound_port(arbiter)),
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> _WSGIAppType:
        # Flask's __call__ is typed with dict where the stubs say MutableMapping.
        return cast("_WSGIAppType", self._app)


def _bound_port(arbiter: Arbiter) -> int:
    """The port actually bound (``--port 0`` picks one)."""
    port: int = arbiter.LISTENERS[0].sock.getsockname()[1]
    return port
