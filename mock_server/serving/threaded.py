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
from http import HTTPStatus
from types import TracebackType
from typing import IO, TYPE_CHECKING, cast
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.serving import BaseWSGIServer, DechunkedInput, WSGIRequestHandler, make_server

from mock_server.core.profiles import PROBLEM_MEDIA_TYPE
from mock_server.http.rendering import problem_body
from mock_server.http.request_ids import new_request_id
from schemas.wire import REQUEST_ID_HEADER

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

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


class ChunkedInput(DechunkedInput):
    """Werkzeug's chunked reader, accepting chunk extensions (``13;ext=1``), which HTTP allows
    and a recipient ignores (RFC 9112, 7.1.1)."""

    def read_chunk_len(self) -> int:
        line = self._rfile.readline(100).decode("latin1")
        size = line.split(";", 1)[0].strip(" \t\r\n")
        if not size or any(digit not in "0123456789abcdefABCDEF" for digit in size):
            raise OSError("Invalid chunk header")
        return int(size, 16)


class ProblemRequestHandler(WSGIRequestHandler):
    """What Python's HTTP layer refuses before the app sees it (too many headers, a request
    line too long, not HTTP) is answered as Problem JSON, not ``http.server``'s HTML page;
    chunked bodies may carry extensions."""

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if len(set(self.headers.get_all("Content-Length") or ())) > 1:
            # RFC 9112, 6.3: no length can be trusted, so neither can what follows.
            self.send_error(HTTPStatus.BAD_REQUEST, None, "Content-Length is given twice.")
            return False
        return True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Werkzeug's line without the query string: a key or token may travel there."""
        # A request refused before its line was read has no method or path yet.
        method = getattr(self, "command", None) or "-"
        path = urlsplit(getattr(self, "path", "") or "").path or "-"
        self.log("info", '"%s %s" %s %s', method, path, code, size)

    def make_environ(self) -> WSGIEnvironment:
        environ = super().make_environ()
        if isinstance(environ["wsgi.input"], DechunkedInput):
            environ["wsgi.input"] = ChunkedInput(cast("IO[bytes]", self.rfile))
        return environ

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        if code == HTTPStatus.HTTP_VERSION_NOT_SUPPORTED:
            code = HTTPStatus.BAD_REQUEST  # as granian answers it: one behaviour in every mode
        self.log_error("code %d, message %s", code, message)
        self.close_connection = True
        # A request line it could not read leaves HTTP/0.9, which would send no status line.
        self.request_version = self.protocol_version
        request_id = new_request_id()
        detail = (explain or message or "The request is not HTTP the emulator can read.")[:200]
        body = problem_body(code, detail, request_id)
        self.send_response(code, message)
        self.send_header("Connection", "close")
        self.send_header("Content-Type", PROBLEM_MEDIA_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.send_header(REQUEST_ID_HEADER, request_id)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def start_in_thread(app: Flask, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serve ``app`` on ``host:port`` (0 picks a free port); returns once it accepts connections."""
    server = make_server(host, port, app, threaded=True, request_handler=ProblemRequestHandler)
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
