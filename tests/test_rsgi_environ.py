"""The WSGI environ the RSGI bridge builds from granian's scope (``mock_server.serving.rsgi``).

A fake scope and protocol stand in for granian's: what the app is handed is what matters."""

from __future__ import annotations

import asyncio
from typing import Any

from mock_server.serving.rsgi import ADDRESSES_LIMIT, RSGIBridge


class Scope:
    proto = "http"
    method = "GET"
    query_string = "a=1"
    http_version = "1.1"
    scheme = "http"

    def __init__(self, path: str, client: str, server: str = "127.0.0.1:8080") -> None:
        self.path, self.client, self.server = path, client, server
        self.headers = {"host": "x", "content-type": "text/plain"}


class Protocol:
    def __init__(self) -> None:
        self.answers: list[tuple[int, list[tuple[str, str]], bytes]] = []

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.answers.append((status, headers, body))


def environ_of(bridge: RSGIBridge, scope: Scope) -> dict[str, Any]:
    seen: list[dict[str, Any]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(dict(environ))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    bridge.app = app  # type: ignore[assignment]
    asyncio.run(bridge(scope, Protocol()))  # type: ignore[arg-type]
    return seen[-1]


def wsgi_keys(environ: dict[str, Any]) -> dict[str, Any]:
    return {
        key: environ[key]
        for key in ("PATH_INFO", "SERVER_NAME", "SERVER_PORT", "REMOTE_ADDR", "REMOTE_PORT")
    }


def test_paths_and_addresses_reach_the_app_as_wsgi_strings() -> None:
    bridge = RSGIBridge(lambda environ, start: [], multiprocess=False, access_log=None)
    assert wsgi_keys(environ_of(bridge, Scope("/api/v1/x", "127.0.0.1:50000"))) == {
        "PATH_INFO": "/api/v1/x",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50000",
    }
    # A decoded non-ASCII path travels as the latin-1 code points of its UTF-8 bytes.
    again = environ_of(bridge, Scope("/api/v1/été", "[::1]:50001", "[::1]:9000"))
    assert wsgi_keys(again) == {
        "PATH_INFO": "/api/v1/\u00c3\u00a9t\u00c3\u00a9",
        "SERVER_NAME": "::1",
        "SERVER_PORT": "9000",
        "REMOTE_ADDR": "::1",
        "REMOTE_PORT": "50001",
    }
    assert again["CONTENT_TYPE"] == "text/plain" and again["QUERY_STRING"] == "a=1"


def test_every_client_gets_its_own_address_past_the_remembered_ones() -> None:
    bridge = RSGIBridge(lambda environ, start: [], multiprocess=False, access_log=None)
    for port in range(1, ADDRESSES_LIMIT + 3):
        environ = environ_of(bridge, Scope("/", f"10.0.0.{port % 250}:{port}"))
        assert (environ["REMOTE_ADDR"], environ["REMOTE_PORT"]) == (
            f"10.0.0.{port % 250}",
            str(port),
        )
