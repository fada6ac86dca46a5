"""Running an app on a real socket: the threaded development server, in this thread or another."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

READY_TIMEOUT_SECONDS = 10.0
STOP_POLL_SECONDS = 0.05
"""How often a server in a thread looks for ``stop()``: the default half second was the
pytest plugin's whole session teardown, and much more often takes the GIL from the tests
running beside it."""


def add_listen_options(parser: argparse.ArgumentParser, port: int) -> None:
    """``--host`` (loopback by default) and ``--port``, for the commands that serve."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=port_number, default=port, help=f"port (0 picks a free one; default {port})"
    )


MAX_PORT = 65535


def port_number(text: str) -> int:
    """A TCP port, or 0 for a free one; argparse names the option when this refuses."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= MAX_PORT:
        raise argparse.ArgumentTypeError(
            f"must be a port from 0 to {MAX_PORT} (0 picks a free one), got {text!r}"
        )
    return port


def port_in_use(host: str, port: int) -> bool:
    """Whether ``host:port`` is taken (0 never is): asked before serving, so that the answer
    is one line whatever server would have failed to bind."""
    if port == 0:
        return False
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.errno == errno.EADDRINUSE
    return False


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuses_remote(command: str, host: str, *, unlocked: bool, reason: str) -> bool:
    """Whether ``command`` must not listen on ``host``: beyond loopback only when ``unlocked``
    (by the option ``reason`` names). When it must not, the one-line reason is on stderr."""
    if unlocked or is_loopback(host):
        return False
    print(f"{command}: refusing to listen on {host}{reason}", file=sys.stderr)
    return True


@dataclass
class RunningServer:
    """A server started in a background thread; stop it, or use it as a context manager."""

    server: BaseWSGIServer
    thread: threading.Thread = field(repr=False)

    @property
    def host(self) -> str:
        return str(self.server.host)

    @property
    def port(self) -> int:
        return int(self.server.port)

    @property
    def base_url(self) -> str:
        """The root of the server, e.g. ``http://127.0.0.1:54321`` (the API is under /api/v1)."""
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=READY_TIMEOUT_SECONDS)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_in_thread(app: Flask, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serve ``app`` on ``host:port`` (0 picks a free port); returns once it accepts connections."""
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": STOP_POLL_SECONDS},
        name=f"emulator:{server.port}",
        daemon=True,
    )
    thread.start()
    running = RunningServer(server=server, thread=thread)
    wait_until_ready(running.host, running.port)
    return running


def wait_until_ready(host: str, port: int, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the emulator on {host}:{port} did not start in {timeout}s"
                ) from None
            time.sleep(0.02)
