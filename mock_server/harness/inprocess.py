"""In-process mode: code that calls the 8x8 API with ``requests`` (or httpx) reaches an
emulator, no socket.

While ``emulate()`` is active, every ``requests.Session`` (and so ``requests.get`` & co.)
sends requests for ``*.8x8.com`` and ``odcc2.bell.ca``, any scheme, to the emulator's WSGI
app: ``https://vcc-na12.8x8.com/api/v1/...`` is the emulator's ``/api/v1/...``, and
``/__admin/...`` on those hosts is its control plane. Other hosts are left alone. Like moto,
it works as a context manager or a decorator, and each activation starts from the fixture.

Faults behave as over the network: ``drop`` raises ``requests.ConnectionError`` and a latency
longer than the caller's read timeout raises ``requests.ReadTimeout`` after that timeout.
Where httpx is installed, ``emulate()`` serves ``httpx.Client`` and ``httpx.AsyncClient`` the
same way (``httpx_transport``), through the same environ, app call, faults and journal.

``ServedInProcess`` does the same for one running server's own URL (the pytest plugin's, per
test): ``requests`` for it are answered by the server's app in-process, other clients still
reach its socket.

While one is active, three methods of ``requests.Session`` are patched: ``get_adapter`` (the
routing), and ``request`` with ``merge_environment_settings``, so that an emulated call does
not scan the environment for proxies it would never use (``_EnvironmentSettings``).
"""

from __future__ import annotations

import io
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from contextlib import ContextDecorator
from fnmatch import fnmatchcase
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload
from urllib.parse import SplitResult, unquote, urlsplit

import requests
from flask import Flask
from requests import sessions
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers, get_environ_proxies
from werkzeug.datastructures import Headers
from werkzeug.test import EnvironBuilder

from mock_server.app import create_app
from mock_server.core.fixtures import load_fixture
from mock_server.harness.handle import Emulator
from mock_server.testdouble.middleware import READ_TIMEOUT_KEY, ConnectionDropped, SimulatedTimeout

if TYPE_CHECKING:
    from mock_server.harness.httpx_transport import HttpxRouting

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


_PLAIN_NETLOC = re.compile(r"(?:[a-z0-9-]{1,63}\.)*[a-z0-9-]{1,63}(?::[1-9][0-9]{0,4})?")
"""A host werkzeug's ``EnvironBuilder`` keeps as it is: lower case, ASCII, no user, no
IPv6, a port without leading zeros."""
_PLAIN_PATH = re.compile(r"/(?!/)[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")
"""A path its ``iri_to_uri`` leaves as it is (and that ``urlsplit`` reads as a path)."""
_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def _header_values_are_plain(headers: Iterable[tuple[str, object]]) -> bool:
    return all(
        isinstance(value, str) and "\r" not in value and "\n" not in value for _, value in headers
    )


def _built_environ(
    url: SplitResult, method: str, headers: list[tuple[str, Any]], data: bytes
) -> dict[str, Any] | None:
    """The environ werkzeug's ``EnvironBuilder`` makes for this request, built directly (a
    fifth of its cost), key for key and in its order; None where it might differ, and the
    builder is used."""
    netloc, path = url.netloc, url.path or "/"
    content_type = next((v for k, v in headers if k.lower() == "content-type"), None)
    if (
        url.scheme not in ("http", "https")
        or not _PLAIN_NETLOC.fullmatch(netloc)
        or not _PLAIN_PATH.fullmatch(path)
        or not _header_values_are_plain(headers)
        or (
            not data
            and content_type is not None
            and content_type.partition(";")[0].strip() in _FORM_TYPES
        )
    ):
        return None
    host, _, port = netloc.partition(":")
    raw_uri = path.encode().decode("latin1")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote(path).encode().decode("latin1"),
        "QUERY_STRING": url.query.encode().decode("latin1"),
        "REQUEST_URI": raw_uri,
        "RAW_URI": raw_uri,
        "SERVER_NAME": host,
        "SERVER_PORT": port or ("443" if url.scheme == "https" else "80"),
        "HTTP_HOST": netloc,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": url.scheme,
        "wsgi.input": io.BytesIO(data),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if content_type is not None:
        environ["CONTENT_TYPE"] = content_type
    if data:
        environ["CONTENT_LENGTH"] = str(len(data))
    combined: dict[str, list[str]] = {}
    for key, value in headers:
        if key.lower() not in ("content-type", "content-length"):
            combined.setdefault(f"HTTP_{key.upper().replace('-', '_')}", []).append(value)
    for key, values in combined.items():
        environ[key] = ", ".join(values)
    return environ


def _builder_environ(
    url: SplitResult, method: str, headers: list[tuple[str, Any]], data: bytes
) -> dict[str, Any]:
    builder = EnvironBuilder(
        path=url.path or "/",
        base_url=f"{url.scheme}://{url.netloc}",
        query_string=url.query,
        method=method,
        headers=headers,
        data=data,
    )
    try:
        return builder.get_environ()
    finally:
        builder.close()


def wsgi_environ(
    url: str, method: str, headers: list[tuple[str, Any]], data: bytes, read_timeout: float | None
) -> dict[str, Any]:
    """The environ of one in-process request, whichever client sent it; a fault's latency
    over ``read_timeout`` becomes the client's timeout (``READ_TIMEOUT_KEY``)."""
    parts = urlsplit(url)
    environ = _built_environ(parts, method, headers, data)
    if environ is None:
        environ = _builder_environ(parts, method, headers, data)
    if read_timeout is not None:
        environ[READ_TIMEOUT_KEY] = read_timeout
    return environ


class BufferedAnswer:
    """The ``start_response`` of one app call and the answer it collects, as werkzeug's
    ``run_wsgi_app(buffered=True)``; a call a fault's latency deferred (``LatencyDeferred``)
    answers through the same one when resumed."""

    def __init__(self) -> None:
        self._answered: list[tuple[str, list[tuple[str, str]]]] = []
        self._written: list[bytes] = []

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        if exc_info:
            try:
                raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        self._answered.append((status, headers))
        return self._written.append  # what is written so is dropped, as werkzeug's run does

    def collect(self, iterable: Iterable[bytes]) -> tuple[bytes, str, list[tuple[str, str]]]:
        """Run the app's answer to the end: body, status and headers."""
        try:
            content = b"".join(iterable)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
        status, headers = self._answered[-1]
        return content, status, headers


def call_buffered(
    app: Callable[..., Iterable[bytes]], environ: dict[str, Any]
) -> tuple[bytes, str, list[tuple[str, str]]]:
    """Run the app to the end: body, status and headers."""
    answer = BufferedAnswer()
    return answer.collect(app(environ, answer.start_response))


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
        read_timeout = timeout[1] if isinstance(timeout, tuple) else timeout
        environ = wsgi_environ(
            request.url or "",
            request.method or "GET",
            list(request.headers.items()),
            _body_bytes(request.body),
            read_timeout,
        )
        try:
            content, status, answered = call_buffered(self.app, environ)
        except ConnectionDropped as error:
            raise requests.ConnectionError(error, request=request) from None
        except SimulatedTimeout as error:
            raise requests.ReadTimeout(error, request=request) from None
        response = requests.Response()
        code, _, reason = status.partition(" ")
        response.status_code = int(code)
        response.reason = reason
        response.headers = CaseInsensitiveDict(dict(Headers(answered).items()))
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = io.BytesIO(content)
        response.url = request.url or ""
        response.request = request
        response._content = content
        _environment_settings.settle(proxies, response)
        return response

    def close(self) -> None:
        """Nothing to release: there is no connection pool."""


_merge_setting: Callable[[Any, Any], Any] = sessions.merge_setting


class _EnvironmentSettings:
    """``Session.request`` for an emulated URL without reading proxies from the environment.

    ``merge_environment_settings`` scans every environment variable twice for ``*_proxy``
    (a quarter of an emulated GET); the settings it returns go to the transport, which here
    ignores them. So inside ``Session.request`` (and only there: a direct caller gets the
    original), for an emulated URL with no proxies given, the settings are merged without
    the environment's proxies. Should anyone else read them (a response hook, a redirect),
    the transport first puts in the proxies the original would have found
    (``settle``), so what they see is unchanged; the CA bundle is read as before."""

    def __init__(self) -> None:
        self._local = threading.local()
        self.original_request: Callable[..., Any] = requests.Session.request
        self.original_merge: Callable[..., Any] = requests.Session.merge_environment_settings

    def request(self, session: requests.Session, *args: Any, **kwargs: Any) -> Any:
        self._local.inside = True
        try:
            return self.original_request(session, *args, **kwargs)
        finally:
            self._local.inside = False

    def merge(
        self,
        session: requests.Session,
        url: str,
        proxies: Any,
        stream: Any,
        verify: Any,
        cert: Any,
    ) -> dict[str, Any]:
        inside = getattr(self._local, "inside", False)
        self._local.inside = False
        if not (
            inside
            and session.trust_env
            and type(proxies) is dict
            and not proxies  # a fresh dict of Session.request's own: no caller sees it
            and _router.emulates(url)
        ):
            settings: dict[str, Any] = self.original_merge(
                session, url, proxies, stream, verify, cert
            )
            return settings
        if verify is True or verify is None:
            verify = (
                os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or verify
            )
        merged = _merge_setting(proxies, session.proxies)
        self._local.pending = (merged, session, url)
        return {
            "proxies": merged,
            "stream": _merge_setting(stream, session.stream),
            "verify": _merge_setting(verify, session.verify),
            "cert": _merge_setting(cert, session.cert),
        }

    def settle(self, proxies: object, response: requests.Response | None) -> None:
        """The proxies the original merge would have given, put in when anything may read
        them: a response hook, a redirect, or (``response`` None) a transport that is not
        the emulator's, should the emulator have stopped in between."""
        pending = getattr(self._local, "pending", None)
        if pending is None or (proxies is not None and pending[0] is not proxies):
            return
        self._local.pending = None
        merged, session, url = pending
        if response is not None and not (
            response.request.hooks.get("response") or "location" in response.headers
        ):
            return
        environment = dict(get_environ_proxies(url, no_proxy=None))
        merged.clear()
        merged.update(_merge_setting(environment, session.proxies))


_environment_settings = _EnvironmentSettings()


def _session_request(session: requests.Session, *args: Any, **kwargs: Any) -> Any:
    return _environment_settings.request(session, *args, **kwargs)


def _merge_environment_settings(
    session: requests.Session, url: str, proxies: Any, stream: Any, verify: Any, cert: Any
) -> dict[str, Any]:
    return _environment_settings.merge(session, url, proxies, stream, verify, cert)


class Route(Protocol):
    """Where some URLs go while active: an in-process transport, and which URLs are its."""

    @property
    def adapter(self) -> BaseAdapter: ...

    def handles(self, url: SplitResult) -> bool: ...


class _Router:
    """Which active route, if any, a URL goes to; patches requests while one is active."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: list[Route] = []
        self._saved: dict[str, Any] = {}
        self._original = requests.Session.get_adapter

    def push(self, emulator: Route) -> None:
        with self._lock:
            if not self._active:
                _environment_settings.original_request = requests.Session.request
                _environment_settings.original_merge = requests.Session.merge_environment_settings
                patched = {
                    "get_adapter": _get_adapter,
                    "request": _session_request,
                    "merge_environment_settings": _merge_environment_settings,
                }
                # Set directly, not with mock.patch (a tenth of the cost, paid per test by
                # the pytest plugin): what each name held is put back by ``pop``.
                self._saved = {name: vars(requests.Session)[name] for name in patched}
                # Other URLs go where they went before: to a mock's transport if one (such as
                # requests-mock) patched ``get_adapter`` first.
                self._original = self._saved["get_adapter"]
                for name, replacement in patched.items():
                    setattr(requests.Session, name, replacement)
            self._active.append(emulator)

    def pop(self, emulator: Route) -> None:
        with self._lock:
            self._active.remove(emulator)
            if not self._active:
                for name, original in self._saved.items():
                    setattr(requests.Session, name, original)
                self._saved = {}

    def _chosen(self, url: str, kind: type = object) -> Route | None:
        """The innermost active route of ``kind`` taking ``url``, or None."""
        parts = urlsplit(url)
        with self._lock:
            return next(
                (e for e in reversed(self._active) if isinstance(e, kind) and e.handles(parts)),
                None,
            )

    def emulates(self, url: str) -> bool:
        return self._chosen(url) is not None

    def emulator_for(self, url: str) -> InProcessEmulator | None:
        """The innermost ``emulate()`` taking ``url``: clients other than ``requests`` (httpx)
        are routed by ``emulate()`` only, not by ``ServedInProcess``."""
        chosen = self._chosen(url, InProcessEmulator)
        return chosen if isinstance(chosen, InProcessEmulator) else None

    def adapter_for(self, session: requests.Session, url: str) -> BaseAdapter:
        chosen = self._chosen(url)
        if chosen is not None:
            return chosen.adapter
        _environment_settings.settle(None, None)
        return self._original(session, url)


_router = _Router()


def _get_adapter(session: requests.Session, url: str) -> BaseAdapter:
    return _router.adapter_for(session, url)


def emulator_for(url: str) -> InProcessEmulator | None:
    return _router.emulator_for(url)


@cache
def _httpx_routing() -> HttpxRouting | None:
    """httpx's routing where httpx is installed (it stays optional), imported on first use."""
    if find_spec("httpx") is None:
        return None
    from mock_server.harness.httpx_transport import routing

    return routing


class InProcessEmulator(Emulator):
    """An emulator reached without a socket; ``app`` is its Flask app."""

    def __init__(self, app: Flask, hosts: tuple[str, ...], **handle: Any) -> None:
        super().__init__(**handle)
        self.app = app
        self.hosts = hosts
        self.adapter = WSGIAdapter(app)

    def handles(self, url: SplitResult) -> bool:
        host = (url.hostname or "").lower()
        return any(fnmatchcase(host, pattern) for pattern in self.hosts)


class ServedInProcess:
    """While active, ``requests`` for one server's own origin (``base_url``'s scheme, host and
    port, spelt as it spells them) are answered by ``app`` in-process, as ``emulate()``
    answers the vendor's hosts; other clients still reach the server's socket."""

    def __init__(self, app: Flask, base_url: str) -> None:
        origin = urlsplit(base_url)
        self.origin = (origin.scheme, origin.hostname, origin.port)
        self.adapter = WSGIAdapter(app)

    def handles(self, url: SplitResult) -> bool:
        try:
            return (url.scheme, url.hostname, url.port) == self.origin
        except ValueError:  # a port that is no number: not this server's
            return False

    def __enter__(self) -> ServedInProcess:
        _router.push(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _router.pop(self)


class emulate(ContextDecorator):
    """Route ``requests`` and httpx for the vendor's hosts into a fresh emulator while active.

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
        httpx_routing = _httpx_routing()
        if httpx_routing is not None:
            httpx_routing.start()
        self._running.append(emulator)
        return emulator

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        emulator = self._running.pop()
        httpx_routing = _httpx_routing()
        if httpx_routing is not None:
            httpx_routing.stop()
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
