"""In-process mode: code that calls the 8x8 API with ``requests`` reaches an emulator, no socket.

While ``emulate()`` is active, every ``requests.Session`` (and so ``requests.get`` & co.)
sends requests for ``*.8x8.com`` and ``odcc2.bell.ca``, any scheme, to the emulator's WSGI
app: ``https://vcc-na12.8x8.com/api/v1/...`` is the emulator's ``/api/v1/...``, and
``/__admin/...`` on those hosts is its control plane. Other hosts are left alone. Like moto,
it works as a context manager or a decorator, and each activation starts from the fixture.

Faults behave as over the network: ``drop`` raises ``requests.ConnectionError`` and a latency
longer than the caller's read timeout raises ``requests.ReadTimeout`` after that timeout.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterable, Mapping
from contextlib import ContextDecorator
from fnmatch import fnmatchcase
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, overload
from unittest import mock
from urllib.parse import urlsplit

import requests
from flask import Flask
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from werkzeug.test import EnvironBuilder, run_wsgi_app

from mock_server.app import create_app
from mock_server.core.fixtures import load_fixture
from mock_server.harness.handle import Emulator
from mock_server.testdouble.middleware import READ_TIMEOUT_KEY, ConnectionDropped, SimulatedTimeout

EMULATED_HOSTS = ("*.8x8.com", "8x8.com", "odcc2.bell.ca")
DEFAULT_BASE_URL = "https://vcc-na12.8x8.com"

Function = TypeVar("Function", bound=Callable[..., Any])


def _body_bytes(body: object) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    if hasattr(body, "read"):
        data = body.read()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if isinstance(body, Iterable):
        return b"".join(
            part.encode("utf-8") if isinstance(part, str) else bytes(part) for part in body
        )
    raise TypeError(f"cannot send a request body of type {type(body).__name__} in-process")


class WSGIAdapter(BaseAdapter):
    """A requests transport that calls a WSGI app instead of opening a connection."""

    def __init__(self, app: Flask) -> None:
        super().__init__()
        self.app = app

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        url = urlsplit(request.url or "")
        builder = EnvironBuilder(
            path=url.path or "/",
            base_url=f"{url.scheme}://{url.netloc}",
            query_string=url.query,
            method=request.method or "GET",
            headers=list(request.headers.items()),
            data=_body_bytes(request.body),
        )
        try:
            environ = builder.get_environ()
        finally:
            builder.close()
        read_timeout = timeout[1] if isinstance(timeout, tuple) else timeout
        if read_timeout is not None:
            environ[READ_TIMEOUT_KEY] = read_timeout
        try:
            chunks, status, headers = run_wsgi_app(self.app, environ, buffered=True)
        except ConnectionDropped as error:
            raise requests.ConnectionError(error, request=request) from None
        except SimulatedTimeout as error:
            raise requests.ReadTimeout(error, request=request) from None
        try:
            content = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        response = requests.Response()
        code, _, reason = status.partition(" ")
        response.status_code = int(code)
        response.reason = reason
        response.headers = CaseInsensitiveDict(dict(headers.items()))
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = io.BytesIO(content)
        response.url = request.url or ""
        response.request = request
        response._content = content
        return response

    def close(self) -> None:
        """Nothing to release: there is no connection pool."""


class _Router:
    """Which active emulator, if any, a URL goes to; patches requests while one is active."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: list[InProcessEmulator] = []
        self._patch: Any = None
        self._original = requests.Session.get_adapter

    def push(self, emulator: InProcessEmulator) -> None:
        with self._lock:
            if not self._active:
                self._patch = mock.patch.object(requests.Session, "get_adapter", _get_adapter)
                self._patch.start()
            self._active.append(emulator)

    def pop(self, emulator: InProcessEmulator) -> None:
        with self._lock:
            self._active.remove(emulator)
            if not self._active and self._patch is not None:
                self._patch.stop()
                self._patch = None

    def adapter_for(self, session: requests.Session, url: str) -> BaseAdapter:
        host = (urlsplit(url).hostname or "").lower()
        with self._lock:
            chosen = next((e for e in reversed(self._active) if e.handles(host)), None)
        if chosen is not None:
            return chosen.adapter
        return self._original(session, url)


_router = _Router()


def _get_adapter(session: requests.Session, url: str) -> BaseAdapter:
    return _router.adapter_for(session, url)


class InProcessEmulator(Emulator):
    """An emulator reached without a socket; ``app`` is its Flask app."""

    def __init__(self, app: Flask, hosts: tuple[str, ...], **handle: Any) -> None:
        super().__init__(**handle)
        self.app = app
        self.hosts = hosts
        self.adapter = WSGIAdapter(app)

    def handles(self, host: str) -> bool:
        return any(fnmatchcase(host, pattern) for pattern in self.hosts)


class emulate(ContextDecorator):
    """Route ``requests`` for the vendor's hosts into a fresh emulator while active.

    ``fixture`` is a document or a file (default the demo tenants); the handle speaks for
    ``tenant`` (default the fixture's first) at ``base_url``.
    """

    def __init__(
        self,
        fixture: Mapping[str, Any] | str | Path | None = None,
        *,
        profile: str = "default",
        tenant: str | None = None,
        hosts: tuple[str, ...] = EMULATED_HOSTS,
        base_url: str = DEFAULT_BASE_URL,
    ) -> None:
        self.fixture = fixture
        self.profile = profile
        self.tenant = tenant
        self.hosts = tuple(host.lower() for host in hosts)
        self.base_url = base_url
        self._running: list[InProcessEmulator] = []

    def __enter__(self) -> InProcessEmulator:
        document = dict(
            self.fixture if isinstance(self.fixture, Mapping) else load_fixture(self.fixture)
        )
        tenants: list[dict[str, Any]] = document["tenants"]
        chosen = next(
            (t for t in tenants if self.tenant is None or t["tenant-id"] == self.tenant), None
        )
        if chosen is None:
            raise ValueError(f"the fixture has no tenant '{self.tenant}'")
        emulator = InProcessEmulator(
            create_app(document, profile=self.profile),
            self.hosts,
            base_url=self.base_url,
            tenant=chosen["tenant-id"],
            username=chosen["username"],
            token=chosen["token"],
        )
        _router.push(emulator)
        self._running.append(emulator)
        return emulator

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        emulator = self._running.pop()
        _router.pop(emulator)
        emulator.control.close()


@overload
def emulated(function: Function) -> Function: ...


@overload
def emulated(function: None = None, **options: Any) -> Callable[[Function], Function]: ...


def emulated(
    function: Function | None = None, **options: Any
) -> Function | Callable[[Function], Function]:
    """``@emulated`` or ``@emulated(profile="guide", fixture=...)``: run the function emulated."""
    if function is not None:
        return emulate()(function)

    def decorate(inner: Function) -> Function:
        return emulate(**options)(inner)

    return decorate
