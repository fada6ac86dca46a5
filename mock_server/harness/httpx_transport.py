"""``emulate()`` for httpx: ``httpx.Client`` and ``httpx.AsyncClient`` reach the emulator too.

While an ``emulate()`` is active, httpx's own transports (``HTTPTransport.handle_request``
and ``AsyncHTTPTransport.handle_async_request``, where respx patches them too) answer the
emulated URLs from the emulator's app, with no socket, through the same WSGI call, faults
and journal as ``requests``; every other URL goes to what those methods were before (httpx's
network, or a mock's). A client given a transport of its own (``MockTransport``) keeps it.

Faults behave as over the network: a latency is slept (``await asyncio.sleep`` in an async
client, so concurrent requests wait together), one over the client's read timeout raises
``httpx.ReadTimeout`` after that timeout, and a ``drop`` raises ``DroppedConnection``, both an
``httpx.RemoteProtocolError`` ("Server disconnected without sending a response.", what httpx
raises when a server drops the connection) and an ``httpx.ConnectError``. Imported only where
httpx is installed: ``emulate()`` works without it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from mock_server.harness.inprocess import (
    BufferedAnswer,
    InProcessEmulator,
    call_buffered,
    emulator_for,
    wsgi_environ,
)
from mock_server.testdouble.middleware import (
    DEFER_LATENCY_KEY,
    ConnectionDropped,
    LatencyDeferred,
    SimulatedTimeout,
)

DISCONNECTED = "Server disconnected without sending a response."
"""httpx's own words for a connection the server closed before answering."""


class DroppedConnection(httpx.ConnectError, httpx.RemoteProtocolError):
    """A ``drop`` fault: ``RemoteProtocolError`` is what httpx raises when a real server drops
    the connection, ``ConnectError`` what code written against the emulator's promise catches
    (nothing was applied: the drop comes before the app), so either ``except`` holds."""


def _environ(request: httpx.Request, data: bytes) -> dict[str, Any]:
    timeout: dict[str, float | None] = request.extensions.get("timeout", {})
    return wsgi_environ(
        str(request.url), request.method, request.headers.multi_items(), data, timeout.get("read")
    )


@contextmanager
def _as_httpx_errors(request: httpx.Request) -> Iterator[None]:
    """A dropped connection and a read timeout, as httpx raises them."""
    try:
        yield
    except ConnectionDropped:
        raise DroppedConnection(DISCONNECTED, request=request) from None
    except SimulatedTimeout as error:
        raise httpx.ReadTimeout(str(error), request=request) from None


def _response(
    request: httpx.Request, answer: tuple[bytes, str, list[tuple[str, str]]]
) -> httpx.Response:
    content, status, headers = answer
    code, _, reason = status.partition(" ")
    return httpx.Response(
        int(code),
        headers=headers,
        stream=httpx.ByteStream(content),
        request=request,
        extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason.encode("latin-1")},
    )


class HttpxRouting:
    """Patches httpx's two transports while at least one ``emulate()`` is active."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._sync: Callable[[httpx.HTTPTransport, httpx.Request], httpx.Response] = (
            httpx.HTTPTransport.handle_request
        )
        self._async: Callable[[httpx.AsyncHTTPTransport, httpx.Request], Any] = (
            httpx.AsyncHTTPTransport.handle_async_request
        )

    def start(self) -> None:
        with self._lock:
            self._users += 1
            if self._users == 1:
                # What was in place (httpx's own, or a mock's) still gets every other URL.
                self._sync = vars(httpx.HTTPTransport)["handle_request"]
                self._async = vars(httpx.AsyncHTTPTransport)["handle_async_request"]
                self._patch(_handle_request, _handle_async_request)

    def stop(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                self._patch(self._sync, self._async)

    @staticmethod
    def _patch(sync: Callable[..., Any], asynchronous: Callable[..., Any]) -> None:
        # Set directly, as the requests router does: what each held is put back by ``stop``.
        setattr(httpx.HTTPTransport, "handle_request", sync)  # noqa: B010
        setattr(httpx.AsyncHTTPTransport, "handle_async_request", asynchronous)  # noqa: B010

    def send(self, transport: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        emulator = emulator_for(str(request.url))
        if emulator is None:
            return self._sync(transport, request)
        environ = _environ(request, request.read())
        with _as_httpx_errors(request):
            return _response(request, call_buffered(emulator.app, environ))

    async def send_async(
        self, transport: httpx.AsyncHTTPTransport, request: httpx.Request
    ) -> httpx.Response:
        emulator = emulator_for(str(request.url))
        if emulator is None:
            response: httpx.Response = await self._async(transport, request)
            return response
        environ = _environ(request, await request.aread())
        environ[DEFER_LATENCY_KEY] = True
        with _as_httpx_errors(request):
            return _response(request, await _answered_async(emulator, environ))


async def _answered_async(
    emulator: InProcessEmulator, environ: dict[str, Any]
) -> tuple[bytes, str, list[tuple[str, str]]]:
    """The app's answer, a fault's latency awaited (``LatencyDeferred``) so that the event
    loop serves other requests meanwhile."""
    answer = BufferedAnswer()
    try:
        iterable = emulator.app(environ, answer.start_response)
    except LatencyDeferred as deferred:
        await asyncio.sleep(deferred.seconds)
        iterable = deferred.resume()
    return answer.collect(iterable)


routing = HttpxRouting()


def _handle_request(transport: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
    return routing.send(transport, request)


async def _handle_async_request(
    transport: httpx.AsyncHTTPTransport, request: httpx.Request
) -> httpx.Response:
    return await routing.send_async(transport, request)
