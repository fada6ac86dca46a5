"""Helpers for the client tests: a scripted HTTP server, retry recorders and the control plane.

The scripted server answers from a list of canned replies, so each test decides exactly
which failures the client meets (503 then 200, a dropped connection, odd bodies), and it
records what the client sent.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from conftest import DEMO_TENANT, DEMO_TOKEN, DEMO_USERNAME

from client import AgentStatusClient, RetryPolicy


@dataclass(frozen=True)
class Canned:
    """One scripted reply; ``drop`` reads the request and closes without answering."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False

    def payload(self) -> tuple[bytes, str]:
        if self.body is None:
            return b"", "application/json"
        if isinstance(self.body, str):
            return self.body.encode(), self.headers.get("Content-Type", "text/plain")
        return json.dumps(self.body).encode(), "application/json"


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class ScriptedServer:
    """An HTTP server on 127.0.0.1 that plays ``script`` in order, then answers 599."""

    def __init__(self, script: list[Canned]) -> None:
        self.script = list(script)
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def api_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api/v1"

    def _next(self, seen: Seen) -> Canned:
        with self._lock:
            self.seen.append(seen)
            return self.script.pop(0) if self.script else Canned(599, "script exhausted")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                canned = server._next(Seen(self.command, self.path, dict(self.headers), body))
                if canned.drop:
                    self.close_connection = True
                    return
                payload, content_type = canned.payload()
                self.send_response(canned.status)
                headers = {"Content-Type": content_type, **canned.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PUT = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests read ``seen`` instead."""

        return Handler

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def scripted(*script: Canned) -> Iterator[ScriptedServer]:
    with ScriptedServer(list(script)) as server:
        yield server


def refused_url() -> str:
    """An API URL on a local port nobody listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/v1"


@dataclass
class Recorder:
    """Stands in for time: ``sleep`` records and advances ``clock``, nothing really waits."""

    sleeps: list[float] = field(default_factory=list)
    now: float = 0.0

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def policy(self, **options: Any) -> RetryPolicy:
        """A policy on this fake time; ``random`` is 1.0 so every backoff is its ceiling."""
        settings: dict[str, Any] = {"random": lambda: 1.0, **options}
        return RetryPolicy(sleep=self.sleep, clock=self.clock, **settings)


def make_client(
    api_url: str,
    *,
    tenant: str = DEMO_TENANT,
    username: str = DEMO_USERNAME,
    token: str = DEMO_TOKEN,
    **options: Any,
) -> AgentStatusClient:
    options.setdefault("retry", Recorder().policy())
    options.setdefault("timeout", 5.0)
    return AgentStatusClient(api_url, tenant=tenant, username=username, token=token, **options)


def place_agents(root_url: str, agent_ids: list[str], status: int) -> None:
    """Add agents to the demo tenant's group 100 in one control-plane call (tenant replace)."""
    tenant = admin(root_url, "GET", f"/tenants/{DEMO_TENANT}")
    tenant["token"] = DEMO_TOKEN
    tenant["agents"] += [
        {"agent-id": agent_id, "agent-status": status, "group-id": 100, "name": f"Agent {agent_id}"}
        for agent_id in agent_ids
    ]
    admin(root_url, "PUT", f"/tenants/{DEMO_TENANT}", tenant)


def admin(root_url: str, method: str, path: str, body: object = None) -> Any:
    reply = requests.request(method, f"{root_url}/__admin{path}", json=body, timeout=5)
    assert reply.status_code < 300, reply.text
    return reply.json() if reply.content else None
