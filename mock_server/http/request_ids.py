"""Every response carries an ``X-Request-Id``, and a Problem's ``instance`` names the same id.

The id is made by a WSGI middleware rather than a Flask hook: it is on every response the
emulator sends (API, control plane, routing errors), at a fraction of a hook's cost per request.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from schemas.wire import REQUEST_ID_HEADER

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

ENVIRON_KEY = "agentstatus.request_id"
_VERSION_4 = (0x4000 << 64) | (0x8000 << 48)
_VERSION_4_MASK = ~((0xF000 << 64) | (0xC000 << 48))


def new_request_id() -> str:
    """A random version-4 UUID as 32 hex digits.

    From ``random`` rather than the OS: an id must be unique, not secret, and this costs a
    tenth of ``uuid.uuid4()``. ``random`` reseeds itself in a forked worker, so workers differ.
    """
    return f"{random.getrandbits(128) & _VERSION_4_MASK | _VERSION_4:032x}"


def request_id_of(environ: Mapping[str, Any]) -> str:
    """The id of the request being answered (a new one outside the middleware)."""
    found = environ.get(ENVIRON_KEY)
    return found if isinstance(found, str) else new_request_id()


class RequestIdMiddleware:
    """Gives each request an id and adds it to the response unless the app already did."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request_id = environ[ENVIRON_KEY] = new_request_id()

        def start_with_id(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if not any(name == REQUEST_ID_HEADER for name, _ in headers):
                headers.append((REQUEST_ID_HEADER, request_id))
            return start_response(status, headers, exc_info)

        return self.app(environ, start_with_id)
