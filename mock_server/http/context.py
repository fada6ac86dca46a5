"""What a view needs from the running app: its backend and the request's JSON body."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from flask import current_app, request
from werkzeug.http import parse_options_header

from mock_server.core.backend import AgentStatusBackend
from mock_server.core.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from schemas.contract import is_json_media_type

EXTENSION = "agentstatus"
RAW_BODY_KEY = "agentstatus.body"
BODY_ERROR_KEY = "agentstatus.body_error"
"""Set by whatever read the body before the app and could not (bad framing): the reason, which
``read_json_body`` answers as a 400."""
"""The request body, already read by the test-double middleware (``testdouble.middleware``)."""


@dataclass
class EmulatorState:
    """Everything an app instance holds beyond Flask's own configuration."""

    backend: AgentStatusBackend
    admin_token: str | None
    reset_hooks: list[Callable[[], None]] = field(default_factory=list)
    """What ``POST /__admin/reset`` clears besides the state: the layers above add theirs
    (the test double its faults and journal), so this layer need not know them."""
    stream_time_scale: float = 1.0
    """The legacy stream's hour and two hours, times this (``serve --stream-time-scale``)."""
    readiness: Callable[[], tuple[int, int]] | None = None
    """(workers ready, workers expected), set by a server of several processes; None when
    this process is the whole emulator."""


def state_of() -> EmulatorState:
    state: EmulatorState = current_app.extensions[EXTENSION]
    return state


def backend_of() -> AgentStatusBackend:
    return state_of().backend


MAX_BODY_BYTES = 1024 * 1024
"""The largest body the emulator reads (a bulk of 100 entries is far below it)."""


BODY_TOO_LARGE = f"The request body is over {MAX_BODY_BYTES} bytes."


def read_json_body() -> object:
    """The body of the request Flask is serving, as JSON (``json_body``)."""
    return json_body(request.environ)


def json_body(environ: Mapping[str, Any]) -> object:
    """The request body as JSON; 415 when not declared JSON, 400 when it does not parse, 413
    when over ``MAX_BODY_BYTES``."""
    content_type = environ.get("CONTENT_TYPE") or ""
    # The usual header, exactly, needs no parsing.
    if content_type != "application/json":
        media_type = parse_options_header(content_type)[0].lower()
        if not is_json_media_type(media_type):
            declared = media_type or "no Content-Type"
            raise UnsupportedMediaType(
                f"The body must be sent as application/json, not {declared}."
            )
    framing = environ.get(BODY_ERROR_KEY)
    if framing is not None:
        raise InvalidRequest(str(framing))
    raw = environ.get(RAW_BODY_KEY)
    if not isinstance(raw, bytes):
        raw = _unbuffered_body(environ)
    if not raw.strip():
        raise InvalidRequest("The request body is empty; a JSON object is required.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidRequest(f"The request body is not valid JSON: {error}.") from None


def _unbuffered_body(environ: Mapping[str, Any]) -> bytes:
    """A body no middleware read for the app: one within the limit, or a 413."""
    length_text = environ.get("CONTENT_LENGTH") or "0"
    length = int(length_text) if length_text.isascii() and length_text.isdigit() else 0
    if length > MAX_BODY_BYTES:
        raise PayloadTooLarge(BODY_TOO_LARGE)
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    return body
