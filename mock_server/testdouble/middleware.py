"""Fault injection and the request journal: one WSGI middleware and their control-plane routes.

Both sit outside Flask so that they see exactly what a client sees: the journal records
injected faults as they were answered, latency included, and a dropped connection can
close the socket before any response exists. Only requests under ``/api/`` pass through
them; the control plane and every other path are never faulted nor journaled.
"""

from __future__ import annotations

import contextlib
import errno
import io
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from mock_server.core.errors import excerpt
from mock_server.core.profiles import PROBLEM_MEDIA_TYPE
from mock_server.http.admin import require_admin_token
from mock_server.http.context import (
    BODY_ERROR_KEY,
    EXTENSION,
    MAX_BODY_BYTES,
    RAW_BODY_KEY,
    read_json_body,
)
from mock_server.http.control import ADMIN_ROOT
from mock_server.http.rendering import forbidden_xml_response, json_response, problem_response
from mock_server.http.request_ids import new_request_id
from mock_server.testdouble.faults import Fault, FaultRegistry, Faults
from mock_server.testdouble.journal import (
    DEFAULT_JOURNAL_SIZE,
    MAX_RECORDED_QUERY,
    Exchange,
    Journal,
    JournalFilter,
    Recorder,
    bounded_headers,
    kept_body,
    masked_headers,
    masked_request_headers,
)
from mock_server.testdouble.shared import SharedFaults, SharedFile, SharedJournal
from schemas.wire import API_ROOT, REQUEST_ID_HEADER

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

FAULTS_EXTENSION = "agentstatus.faults"
JOURNAL_EXTENSION = "agentstatus.journal"
READ_TIMEOUT_KEY = "agentstatus.read_timeout"
"""Set by the in-process adapter: a latency longer than this becomes a client-side timeout."""
MAX_BUFFERED_BODY = MAX_BODY_BYTES + 1
"""One byte over the API's limit, so that the app still sees (and refuses) a body over it."""
SERVER_SOCKET_KEYS = ("werkzeug.socket",)
DROP_CONNECTION_KEY = "agentstatus.drop_connection"
"""Set by a server that hands the app no socket: a callable that closes this request's
connection, so that a ``drop`` fault leaves the client without a single byte of answer."""
DEFER_LATENCY_KEY = "agentstatus.defer_latency"
"""Set by an asynchronous server or transport: a fault's latency is handed to it as
``LatencyDeferred``, to be awaited while other requests are served, instead of sleeping in
the only thread."""


class ConnectionDropped(ConnectionResetError):
    """A ``drop`` fault: servers treat it as a client gone, so nothing is answered."""


class SimulatedTimeout(TimeoutError):
    """In-process only: the fault's latency outlasted the caller's read timeout."""


class LatencyDeferred(Exception):
    """A fault's latency for the server to wait out (``DEFER_LATENCY_KEY``); ``resume()``
    then answers the request as if the middleware had slept."""

    def __init__(self, seconds: float, resume: Callable[[], Iterable[bytes]]) -> None:
        super().__init__(f"wait {seconds}s, then resume")
        self.seconds = seconds
        self.resume = resume


def _buffer_body(environ: WSGIEnvironment) -> bytes:
    """Read the body once and put it back, so both the journal and the app can read it; a
    body within the API's limit is also handed to the app as bytes (``RAW_BODY_KEY``). A body
    that cannot be read (a ``Content-Length`` that is no number, broken chunks) becomes an
    empty one and its reason ``BODY_ERROR_KEY``, which the app answers as a 400."""
    try:
        return _read_body(environ)
    except (ValueError, OSError, HTTPException) as error:
        reason = str(error)[:120] or type(error).__name__
        environ[BODY_ERROR_KEY] = f"The request body could not be read: {reason}."
        environ["wsgi.input"] = io.BytesIO(b"")
        environ["CONTENT_LENGTH"] = "0"
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ.pop("wsgi.input_terminated", None)
        return b""


def _read_body(environ: WSGIEnvironment) -> bytes:
    length_text = environ.get("CONTENT_LENGTH") or ""
    stream = environ["wsgi.input"]
    if length_text:
        if not (length_text.isascii() and length_text.isdigit()):
            raise ValueError(
                f"Content-Length must be a number of bytes, got {excerpt(length_text)}"
            )
        length = int(length_text)
        if length > MAX_BUFFERED_BODY:
            return b""
        raw: bytes = stream.read(length)
    elif environ.get("wsgi.input_terminated"):
        raw = stream.read(MAX_BUFFERED_BODY)
        # From here on a body of known length, to which the app applies its size limit.
        environ["CONTENT_LENGTH"] = str(len(raw))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ.pop("wsgi.input_terminated", None)
    else:
        return b""
    environ["wsgi.input"] = io.BytesIO(raw)
    if len(raw) < MAX_BUFFERED_BODY:
        environ[RAW_BODY_KEY] = raw
    return raw


def _waited(environ: WSGIEnvironment, seconds: float) -> float:
    """How long the caller waits for an answer ``seconds`` late: its read timeout where one
    is given (in-process only) and shorter, so that a deferred wait is cut short too."""
    timeout = environ.get(READ_TIMEOUT_KEY)
    return float(timeout) if isinstance(timeout, int | float) and timeout < seconds else seconds


def _drop_connection(environ: WSGIEnvironment, fault: Fault) -> None:
    drop = environ.get(DROP_CONNECTION_KEY)
    if callable(drop):
        drop()
    for key in SERVER_SOCKET_KEYS:
        connection = environ.get(key)
        if isinstance(connection, socket.socket):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            break
    raise ConnectionDropped(errno.ECONNRESET, f"fault {fault.id} dropped the connection")


def _injected_response(fault: Fault, action: dict[str, Any], error_media_type: str) -> Response:
    """The response a ``respond`` or ``forbidden-xml`` fault answers instead of the API; its
    default body is the API's Problem JSON, in the profile's ``error_media_type``."""
    request_id = new_request_id()
    if action["type"] == "forbidden-xml":
        response = forbidden_xml_response()
    else:
        status: int = action["status"]
        body = action.get("body")
        if "body" not in action:
            detail = f"Injected by the emulator's fault {fault.id}."
            response = problem_response(status, detail, request_id, error_media_type)
        elif isinstance(body, str):
            response = Response(body, status=status, mimetype="text/plain")
        else:
            response = Response(orjson.dumps(body), status=status, mimetype="application/json")
        if "content-type" in action:
            response.headers["Content-Type"] = action["content-type"]
        if status == 429 and "Retry-After" not in action.get("headers", {}):
            response.headers["Retry-After"] = "1"
        response.headers.update(action.get("headers", {}))
    response.headers[REQUEST_ID_HEADER] = request_id
    return response


class TestDoubleMiddleware:
    """Applies the first matching fault, then journals the exchange as the client saw it."""

    def __init__(
        self,
        app: WSGIApplication,
        faults: Faults,
        journal: Recorder,
        error_media_type: str = PROBLEM_MEDIA_TYPE,
    ) -> None:
        self.app = app
        self.faults = faults
        self.journal = journal
        self.error_media_type = error_media_type

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO") or "/"
        if not path.startswith(API_ROOT):
            # Bodies of the control plane are read the same way: bounded, bad framing a 400.
            _buffer_body(environ)
            return self.app(environ, start_response)
        started = time.perf_counter()
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        fault = self.faults.select(method, path)
        exchange = Exchange(
            method=method,
            path=path,
            query=environ.get("QUERY_STRING", "")[:MAX_RECORDED_QUERY],
            fault=None if fault is None else fault.id,
            request_headers=bounded_headers(masked_request_headers(environ)),
            request_body=kept_body(_buffer_body(environ)),
        )
        if fault is not None and fault.latency_ms and environ.get(DEFER_LATENCY_KEY):
            raise LatencyDeferred(
                _waited(environ, fault.latency_ms / 1000),
                lambda: self._respond(environ, start_response, fault, exchange, started, False),
            )
        return self._respond(environ, start_response, fault, exchange, started, True)

    def _respond(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        fault: Fault | None,
        exchange: Exchange,
        started: float,
        wait: bool,
    ) -> Iterable[bytes]:
        try:
            status, headers, payload = self._answer(environ, fault, wait)
        except (ConnectionDropped, SimulatedTimeout) as error:
            exchange.outcome = "dropped" if isinstance(error, ConnectionDropped) else "timed-out"
            self._record(exchange, started)
            raise
        exchange.status = int(status.split(" ", 1)[0])
        exchange.response_headers = bounded_headers(masked_headers(headers))
        exchange.response_body = kept_body(payload)
        self._record(exchange, started)
        start_response(status, headers)
        return [payload]

    def _answer(
        self, environ: WSGIEnvironment, fault: Fault | None, wait: bool
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        if fault is not None and fault.latency_ms:
            seconds = fault.latency_ms / 1000
            waited = _waited(environ, seconds)
            if wait:
                time.sleep(waited)
            if waited < seconds:
                raise SimulatedTimeout(f"no response within the caller's {waited}s read timeout")
        action = None if fault is None else fault.action
        if fault is not None and action is not None:
            if action["type"] == "drop":
                _drop_connection(environ, fault)
            if action["type"] in ("respond", "forbidden-xml"):
                response = _injected_response(fault, action, self.error_media_type)
                return response.status, response.headers.to_wsgi_list(), response.get_data()
        status, headers, payload = self._call_app(environ)
        if action is not None and action["type"] == "malformed":
            payload = payload[: len(payload) // 2]
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(payload))))
        return status, headers, payload

    def _call_app(self, environ: WSGIEnvironment) -> tuple[str, list[tuple[str, str]], bytes]:
        chunks: list[bytes] = []
        answered: list[tuple[str, list[tuple[str, str]]]] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answered.append((status, list(headers)))
            return chunks.append

        iterable = self.app(environ, capture)
        try:
            chunks.extend(iterable)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
        status, headers = answered[-1]
        return status, headers, b"".join(chunks)

    def _record(self, exchange: Exchange, started: float) -> None:
        exchange.duration_ms = (time.perf_counter() - started) * 1000
        self.journal.record(exchange)


testdouble = Blueprint("testdouble", __name__, url_prefix=ADMIN_ROOT)
testdouble.before_request(require_admin_token)


def faults_of(app: Flask) -> Faults:
    registry: Faults = app.extensions[FAULTS_EXTENSION]
    return registry


def journal_of(app: Flask) -> Recorder:
    journal: Recorder = app.extensions[JOURNAL_EXTENSION]
    return journal


@testdouble.post("/faults")
def create_fault() -> Response:
    fault = faults_of(current_app).add(read_json_body()).to_json()
    response = json_response(fault, status=201)
    response.headers["Location"] = f"{ADMIN_ROOT}/faults/{fault['id']}"
    return response


@testdouble.get("/faults")
def list_faults() -> Response:
    return json_response({"faults": faults_of(current_app).all()})


@testdouble.delete("/faults")
def clear_faults() -> Response:
    faults_of(current_app).clear()
    return Response(status=204)


@testdouble.get("/faults/<fault_id>")
def get_fault(fault_id: str) -> Response:
    return json_response(faults_of(current_app).get(fault_id))


@testdouble.delete("/faults/<fault_id>")
def delete_fault(fault_id: str) -> Response:
    faults_of(current_app).delete(fault_id)
    return Response(status=204)


@testdouble.get("/requests")
def list_requests() -> Response:
    journal = journal_of(current_app)
    entries = journal.entries(JournalFilter.from_query(request.args))
    return json_response({"requests": entries, "capacity": journal.size})


@testdouble.delete("/requests")
def clear_requests() -> Response:
    removed = journal_of(current_app).clear(JournalFilter.from_query(request.args))
    return json_response({"deleted": removed})


def install(
    app: Flask,
    journal_size: int = DEFAULT_JOURNAL_SIZE,
    error_media_type: str = PROBLEM_MEDIA_TYPE,
    shared: Path | None = None,
) -> None:
    """Give ``app`` fault injection and a journal of ``journal_size`` entries; an injected
    error's default Problem JSON is sent as ``error_media_type`` (the profile's). With
    ``shared``, both live in that file, for every process that names it (``--workers N``)."""
    faults: Faults
    journal: Recorder
    if shared is None:
        faults, journal = FaultRegistry(), Journal(journal_size)
    else:
        shared_file = SharedFile(shared)
        faults, journal = SharedFaults(shared_file), SharedJournal(shared_file, journal_size)
    app.extensions[FAULTS_EXTENSION] = faults
    app.extensions[JOURNAL_EXTENSION] = journal
    app.extensions[EXTENSION].reset_hooks.extend([faults.clear, journal.clear])
    app.register_blueprint(testdouble)
    app.wsgi_app = TestDoubleMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, faults, journal, error_media_type
    )
