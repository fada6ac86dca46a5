"""A real ``agentstatus-mock serve`` (granian) as a child process on a free port of 127.0.0.1,
for tests that must see what the production server does, not the in-thread one."""

from __future__ import annotations

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


@contextmanager
def serve(tmp_path: Path, *options: str) -> Iterator[Served]:
    log = tmp_path / f"serve-{len(list(tmp_path.iterdir()))}.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [str(BIN / "agentstatus-mock"), "serve", "--port", "0", *options],
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
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
