"""The emulator's WSGI app under granian's RSGI interface: how every ``serve`` mode runs it.

Granian (Rust, hyper) reads requests and writes answers off the Python thread, so a slow
client ties up nothing, connections are kept alive, and the same port can carry WebSockets.
The app runs inline on the worker's event loop, one request at a time: measured fastest on
2 cores (docs/serving.md), since threads of one process only contend for the GIL. What would
block that loop is handed back to it instead: a fault's latency is awaited
(``LatencyDeferred``) while other requests are served, and a ``drop`` fault shuts the
connection's socket down before any byte of an answer exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import sys
import time
from collections.abc import Callable, Coroutine, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any, TextIO

from mock_server.core.errors import ApiError
from mock_server.http.context import EXTENSION, EmulatorState
from mock_server.http.legacy_stream import LegacyTimes
from mock_server.http.streams import open_stream
from mock_server.testdouble.middleware import (
    DEFER_LATENCY_KEY,
    DROP_CONNECTION_KEY,
    MAX_BUFFERED_BODY,
    ConnectionDropped,
    LatencyDeferred,
)
from schemas.wire import REQUEST_ID_HEADER

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment
    from granian._granian import RSGIHeaders
    from granian._granian import RSGIHTTPProtocol as HTTPProtocol
    from granian._granian import RSGIWebsocketProtocol as WebsocketProtocol
    from granian._granian import RSGIWebsocketTransport as WebsocketTransport
    from granian.rsgi import Scope

FD_DIRECTORIES = ("/proc/self/fd", "/dev/fd")
PLAIN_HEADERS = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}
REQUEST_ID_KEY = REQUEST_ID_HEADER.lower()
HEADER_KEYS_LIMIT = 512
"""Header names whose environ key is remembered: the usual few, never every name sent."""
ADDRESSES_LIMIT = 4096
"""Addresses (host and port) whose split is remembered; past it, each is split anew."""
INTERNAL_ERROR = (
    b'{"type":"about:blank","title":"Internal Server Error","status":500,'
    b'"detail":"The emulator failed to answer; its log names the reason."}'
)


def split_address(address: str) -> tuple[str, int]:
    """``127.0.0.1:8080`` or ``[::1]:8080`` as (host, port)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port or 0)


def shutdown_connection(client: str, server: str) -> bool:
    """Shut down this process's TCP socket from ``client`` to ``server``; False if none is.

    Granian hands the app no socket, so it is found among the process's descriptors by its
    two addresses. Only a ``drop`` fault needs it, so the scan costs nothing otherwise.
    """
    peer, local = split_address(client), split_address(server)
    directory = next((path for path in FD_DIRECTORIES if os.path.isdir(path)), None)
    if directory is None:
        return False
    for name in os.listdir(directory):
        try:
            candidate = socket.socket(fileno=os.dup(int(name)))
        except (OSError, ValueError):
            continue
        with candidate:
            try:
                if (
                    candidate.type == socket.SOCK_STREAM
                    and candidate.getpeername()[:2] == peer
                    and candidate.getsockname()[1] == local[1]
                ):
                    candidate.shutdown(socket.SHUT_RDWR)
                    return True
            except OSError:
                continue
    return False


def header_key(name: str) -> str | None:
    """The environ key of a header (``x-admin-token`` is ``HTTP_X_ADMIN_TOKEN``); None for a
    name with ``_``, which would pass for its ``-`` twin (WSGI servers drop those)."""
    if "_" in name:
        return None
    return PLAIN_HEADERS.get(name) or "HTTP_" + name.upper().replace("-", "_")


def access_line(
    client: str, method: str, path: str, status: int, milliseconds: float, request_id: str
) -> str:
    """One access-log line: never the query string (a key may travel there), never a header,
    and the path with anything unprintable escaped, so that no request can forge a line."""
    shown = path if path.isprintable() else path.encode("unicode_escape").decode("ascii")
    return f'{client} "{method} {shown}" {status} {milliseconds:.2f}ms {request_id or "-"}\n'


class RSGIBridge:
    """An RSGI application serving a WSGI app; ``access_log`` gets one line per request."""

    def __init__(
        self,
        app: WSGIApplication,
        *,
        multiprocess: bool,
        access_log: TextIO | None = sys.stderr,
    ) -> None:
        self.app = app
        self.access_log = access_log
        self._base: dict[str, Any] = {
            "SCRIPT_NAME": "",
            "wsgi.version": (1, 0),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": multiprocess,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            DEFER_LATENCY_KEY: True,
        }
        self._header_keys: dict[str, str | None] = {}
        self._addresses: dict[str, tuple[str, str]] = {}
        state = getattr(app, "extensions", {}).get(EXTENSION)
        self.state = state if isinstance(state, EmulatorState) else None
        self.backend = None if self.state is None else self.state.backend
        """The backend whose event streams WebSockets read; None for an app without one."""

    def __rsgi__(
        self, scope: Scope, protocol: HTTPProtocol | WebsocketProtocol
    ) -> Coroutine[Any, Any, None]:
        """The coroutine granian runs for this request: the handler's own, with no coroutine
        around it (one frame less to create and resume per request)."""
        if scope.proto == "ws":
            return self._stream(scope, protocol)  # type: ignore[arg-type]
        return self._http(scope, protocol)  # type: ignore[arg-type]

    async def _stream(self, scope: Scope, protocol: WebsocketProtocol) -> None:
        """A WebSocket: an event stream's reader, or the status of the handshake's refusal
        (granian answers it as a plain HTTP response instead of upgrading)."""
        started = time.perf_counter()
        if self.backend is None:
            protocol.close(404)
            self._log(scope, 404, started, "")
            return
        headers = {name: value for name, value in scope.headers.items()}
        times = LegacyTimes(self.state.stream_time_scale if self.state is not None else 1.0)
        admin_token = None if self.state is None else self.state.admin_token
        try:
            session = open_stream(
                self.backend, scope.path, scope.query_string, headers, times, admin_token
            )
        except ApiError as refusal:
            protocol.close(int(refusal.status))
            self._log(scope, int(refusal.status), started, "")
            return
        self._log(scope, 101, started, "")
        transport = await protocol.accept()
        with contextlib.suppress(RuntimeError):  # the client went away mid-send
            await session.run(GranianChannel(transport))

    def __call__(self, scope: Scope, protocol: HTTPProtocol | WebsocketProtocol) -> Any:
        return self.__rsgi__(scope, protocol)

    async def _http(self, scope: Scope, protocol: HTTPProtocol) -> None:
        started = time.perf_counter()
        environ = await self._environ(scope, protocol)
        answer: list[tuple[int, list[tuple[str, str]]]] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            answer.append((int(status[:3]), headers))
            return _no_write

        try:
            try:
                chunks = self.app(environ, start_response)
            except LatencyDeferred as deferred:
                await asyncio.sleep(deferred.seconds)
                chunks = deferred.resume()
            body = _join(chunks)
        except ConnectionDropped:
            self._log(scope, 0, started, "")
            return  # the socket is shut; granian's own answer goes nowhere
        except Exception as error:  # the app renders its own errors; this is a last resort
            print(f"agentstatus-mock: {scope.method} {scope.path}: {error!r}", file=sys.stderr)
            answer.append((500, [("Content-Type", "application/problem+json")]))
            body = INTERNAL_ERROR
        status, headers = answer[-1]
        protocol.response_bytes(status, headers, body)
        if self.access_log is not None:
            request_id = next((v for k, v in headers if k.lower() == REQUEST_ID_KEY), "")
            self._log(scope, status, started, request_id)

    def _address(self, address: str) -> tuple[str, str]:
        """``split_address`` as environ strings, remembered for the few addresses a run
        sees (its own, and each kept-alive client connection's), never for every one."""
        try:
            return self._addresses[address]
        except KeyError:
            host, port = split_address(address)
            split = (host, str(port))
            if len(self._addresses) < ADDRESSES_LIMIT:
                self._addresses[address] = split
            return split

    async def _environ(self, scope: Scope, protocol: HTTPProtocol) -> WSGIEnvironment:
        # Each attribute of granian's scope is a new Python object per access (0.1-0.3 us
        # apiece, the headers 0.2 us and their items 0.5 us more): each is read once.
        server, client, path, headers = scope.server, scope.client, scope.path, scope.headers
        host, port = self._address(server)
        client_host, client_port = self._address(client)
        environ: dict[str, Any] = {
            **self._base,
            "REQUEST_METHOD": scope.method,
            # WSGI carries the decoded path as latin-1 code points of its UTF-8 bytes (the
            # same string when it is ASCII, as API paths are).
            "PATH_INFO": path
            if path.isascii()
            else path.encode("utf-8", "surrogateescape").decode("latin-1"),
            "QUERY_STRING": scope.query_string,
            "SERVER_NAME": host,
            "SERVER_PORT": port,
            "SERVER_PROTOCOL": f"HTTP/{scope.http_version}",
            "REMOTE_ADDR": client_host,
            "REMOTE_PORT": client_port,
            "wsgi.url_scheme": scope.scheme,
            "wsgi.input": io.BytesIO(await _bounded_body(headers, protocol)),
            DROP_CONNECTION_KEY: partial(shutdown_connection, client, server),
        }
        keys = self._header_keys
        for name, value in headers.items():
            try:
                key = keys[name]
            except KeyError:
                key = header_key(name)
                if len(keys) < HEADER_KEYS_LIMIT:
                    keys[name] = key
            if key is None:
                continue
            previous = environ.get(key)
            environ[key] = value if previous is None else f"{previous},{value}"
        return environ

    def _log(self, scope: Scope, status: int, started: float, request_id: str) -> None:
        if self.access_log is None:
            return
        line = access_line(
            split_address(scope.client)[0],
            scope.method,
            scope.path,
            status,
            (time.perf_counter() - started) * 1000,
            request_id,
        )
        with contextlib.suppress(OSError, ValueError):
            self.access_log.write(line)
            self.access_log.flush()


async def _bounded_body(headers: RSGIHeaders, protocol: HTTPProtocol) -> bytes:
    """The body, or its first ``MAX_BUFFERED_BODY`` bytes: one byte over the API's limit is
    enough for the app to refuse it (413), and memory stays bounded whatever is sent.

    Each read is a wait on granian's thread, the dearest step of a request: a request that
    declares no body (most are GETs) is not read at all, and a body of a declared length
    within the limit is read in one wait."""
    length = headers.get("content-length")
    if length is None and "transfer-encoding" not in headers:
        return b""
    if length is not None and length.isascii() and length.isdigit():
        if int(length) == 0:
            return b""
        if int(length) <= MAX_BUFFERED_BODY:
            try:
                body: bytes = await protocol()
            except RuntimeError:  # the client left before its whole body came: nothing to read
                return b""
            return body[:MAX_BUFFERED_BODY]
    chunks: list[bytes] = []
    size = 0
    async for chunk in protocol:
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_BUFFERED_BODY:
            break
    return b"".join(chunks)[:MAX_BUFFERED_BODY]


def _join(chunks: Iterable[bytes]) -> bytes:
    try:
        return b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


class GranianChannel:
    """granian's WebSocket transport as an event stream's ``Channel``."""

    def __init__(self, transport: WebsocketTransport) -> None:
        self.transport = transport

    async def send(self, text: str) -> None:
        await self.transport.send_str(text)

    async def receive(self) -> str | bytes | None:
        try:
            message = await self.transport.receive()
        except RuntimeError:  # closed under us
            return None
        if message.kind == 0:  # the client's close
            return None
        return message.data


def _no_write(data: bytes) -> None:
    raise RuntimeError("the emulator's app never uses start_response's write()")
