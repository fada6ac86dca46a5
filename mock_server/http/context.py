"""What a view needs from the running app: its backend and the request's JSON body."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from flask import current_app, request

from mock_server.core.backend import AgentStatusBackend
from mock_server.core.errors import InvalidRequest, UnsupportedMediaType
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


def read_json_body() -> object:
    """The request body as JSON; 415 when not declared JSON, 400 when it does not parse."""
    environ = request.environ
    # The usual header, exactly, needs none of Werkzeug's parsing.
    if environ.get("CONTENT_TYPE") != "application/json" and not is_json_media_type(
        request.mimetype
    ):
        declared = request.mimetype or "no Content-Type"
        raise UnsupportedMediaType(f"The body must be sent as application/json, not {declared}.")
    framing = environ.get(BODY_ERROR_KEY)
    if framing is not None:
        raise InvalidRequest(str(framing))
    buffered = environ.get(RAW_BODY_KEY)
    raw = buffered if isinstance(buffered, bytes) else request.get_data(cache=True)
    if not raw.strip():
        raise InvalidRequest("The request body is empty; a JSON object is required.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidRequest(f"The request body is not valid JSON: {error}.") from None
