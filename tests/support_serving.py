"""A real ``agentstatus-mock serve`` (granian) as a child process on a free port of 127.0.0.1,
for tests that must see what the production server does, not the in-thread one."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from conftest import DEMO_TOKEN, DEMO_USERNAME, basic, read_line

BIN = Path(sys.executable).parent
AUTH = basic(DEMO_USERNAME, DEMO_TOKEN)


@dataclass
class Served:
    base: str
    port: int
    process: subprocess.Popen[str]
    log: Path

    def fresh(self, method: str, path: str, **kwargs: object) -> requests.Response:
        """One request on a connection of its own, so any worker may answer it."""
        headers = {"Connection": "close", **AUTH, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
        return requests.request(
            method,
            self.base + path,
            headers=headers,
            timeout=30,
            **kwargs,  # type: ignore[arg-type]
        )


THREADED_CHILD = """
import sys
from mock_server.app import create_app
from mock_server.serving.threaded import start_in_thread
with start_in_thread(create_app()) as server:
    print(f"Agent Status API emulator on http://{server.host}:{server.port}/api/v1", flush=True)
    sys.stdin.read()
"""
"""The in-thread server (what fixtures and the pytest plugin use), alone in a child process so
that its memory can be read apart from the test's."""


@contextmanager
def serve(tmp_path: Path, *options: str) -> Iterator[Served]:
    """``agentstatus-mock serve`` with ``options`` (granian)."""
    with _child(tmp_path, [str(BIN / "agentstatus-mock"), "serve", "--port", "0", *options]) as s:
        yield s


@contextmanager
def serve_threaded(tmp_path: Path) -> Iterator[Served]:
    """The in-thread server of ``mock_server.serving.threaded``, in a child process."""
    with _child(tmp_path, [sys.executable, "-c", THREADED_CHILD]) as served:
        yield served


@contextmanager
def _child(tmp_path: Path, argv: list[str]) -> Iterator[Served]:
    log = tmp_path / f"serve-{len(list(tmp_path.iterdir()))}.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    try:
        assert process.stdout is not None
        banner = read_line(process.stdout).strip()
        assert banner.startswith("Agent Status API emulator on http://127.0.0.1:"), banner
        root = banner.rsplit(" ", 1)[1].removesuffix("/api/v1")
        yield Served(root, int(root.rsplit(":", 1)[1]), process, log)
    finally:
        stop_group(process)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


def stop_group(process: subprocess.Popen[str]) -> None:
    """SIGTERM to the server's process group, then SIGKILL if it is still there: a server
    signalled while still starting could ignore the first and outlive the test run."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is None:
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=15)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # workers whose parent went first


def resident_bytes(served: Served) -> int:
    """Resident memory of the server and every worker it started (its process group)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != served.process.pid:
                continue
            status = (stat.parent / "status").read_text()
        except (OSError, IndexError, ValueError):
            continue  # the process ended meanwhile
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total
