"""Servers the bench starts: each in its own process group, on a free port of 127.0.0.1, and
always stopped, the whole group, within seconds."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess

STOP_SECONDS = 10.0
"""How long a group gets to exit after SIGTERM before it is SIGKILLed."""


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on (for a server that cannot take port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def stop_group(process: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process's group (started with ``start_new_session``), then SIGKILL; never
    to a group whose leader was already reaped (its id may since be another's)."""
    for signal_number in (signal.SIGTERM, signal.SIGKILL):
        if process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal_number)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            continue
        return
