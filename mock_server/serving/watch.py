"""``serve --watch``: reload the fixture file when it changes, keeping the old state on a bad edit.

Polling the modification time (and size) needs no extra dependency and works on every
filesystem, including bind mounts where change notifications do not arrive.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path

from mock_server.core.backend import AgentStatusBackend
from mock_server.core.fixtures import FixtureError, load_fixture

POLL_SECONDS = 1.0


def _report_to_stderr(message: str) -> None:
    print(f"agentstatus-mock: {message}", file=sys.stderr, flush=True)


class FixtureWatcher:
    """Checks one fixture file every ``interval`` seconds in a daemon thread."""

    def __init__(
        self,
        path: str | Path,
        backend: AgentStatusBackend,
        interval: float = POLL_SECONDS,
        report: Callable[[str], None] = _report_to_stderr,
    ) -> None:
        self.path = Path(path)
        self.backend = backend
        self.interval = interval
        self.report = report
        self._seen = self._signature()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fixture-watch", daemon=True)

    def _signature(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def check(self) -> bool:
        """One poll: True when the file changed and was loaded; a bad edit is reported only."""
        signature = self._signature()
        if signature is None or signature == self._seen:
            return False
        self._seen = signature
        try:
            document = load_fixture(self.path)
            self.backend.load(document)
        except FixtureError as error:
            self.report(f"fixture not reloaded, the previous state is kept: {error.detail}")
            return False
        self.report(f"reloaded {self.path}")
        return True

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            self.check()

    def start(self) -> FixtureWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 1)
