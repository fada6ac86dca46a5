"""Shared fixtures: an app factory per test, one live server per session (and per xdist worker)
reset before each test, and the demo tenant's credentials."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from contract_tests.config import DEMO_TENANT, DEMO_TOKEN, DEMO_USERNAME
from mock_server import create_app
from mock_server.core.sqlite_store import SQLiteStore
from mock_server.core.store import StateStore
from mock_server.http.context import EXTENSION, EmulatorState
from mock_server.serving.threaded import RunningServer, start_in_thread

GUIDE_AUTH_HEADER = "Basic bXljbGllbnRJZDpuZXZlcnRlbGxhbnlvbmU="
OTHER_TENANT = "globex02"
DISABLED_TENANT = "initech03"


def read_line(stream: IO[str], timeout: float = 30.0) -> str:
    """One line from a child's pipe, or a failure after ``timeout`` instead of a hung run."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not lines:
        pytest.fail(f"no line from the child process within {timeout}s")
    return lines[0]


def basic(username: str, token: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{username}:{token}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def api_path(tenant: str = DEMO_TENANT, suffix: str = "") -> str:
    return f"/api/v1/tenants/{tenant}/agentstatus/agents{suffix}"


STORE_ENV = "AGENTSTATUS_TEST_STORE"
STORES = ("memory", "sqlite")


def store_kind() -> str:
    """Which state store the suite runs on: ``make test`` runs the rule-heavy files on both."""
    kind = os.environ.get(STORE_ENV, "memory")
    if kind not in STORES:
        raise pytest.UsageError(f"{STORE_ENV} must be one of {', '.join(STORES)}, not {kind!r}")
    return kind


def new_store(directories: pytest.TempPathFactory) -> StateStore | None:
    """A fresh store of the chosen kind (None: the app's default, memory)."""
    if store_kind() == "memory":
        return None
    return SQLiteStore(directories.mktemp("state") / "state.sqlite")


def pytest_report_header() -> str:
    return f"agentstatus state store: {store_kind()} (set {STORE_ENV} to change)"


@pytest.fixture
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """Responses are checked against the contract: one that breaks it fails the test with a 500."""
    store = new_store(tmp_path_factory)
    yield create_app(validate_responses=True, store=store)
    if store is not None:
        store.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": GUIDE_AUTH_HEADER}


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One threaded emulator on 127.0.0.1 and a free port, for the whole session."""
    store = new_store(tmp_path_factory)
    with start_in_thread(create_app(validate_responses=True, store=store)) as server:
        yield server
    if store is not None:
        store.close()


@pytest.fixture
def live(live_server: RunningServer) -> RunningServer:
    """The session's live server, back at its fixture before the test."""
    state: EmulatorState = live_server.server.app.extensions[EXTENSION]
    state.backend.reset()
    return live_server


@pytest.fixture
def http(live: RunningServer) -> Iterator[requests.Session]:
    """A requests session with the demo credentials, for calls over real HTTP."""
    with requests.Session() as session:
        session.auth = (DEMO_USERNAME, DEMO_TOKEN)
        yield session


@dataclass
class Reply:
    """One response, the same whichever transport carried it."""

    status: int
    headers: Mapping[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class Api:
    """The emulator through one transport: Flask's test client or real HTTP."""

    def __init__(self, send: Callable[..., Reply]) -> None:
        self._send = send

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: object = None,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        credentials: Mapping[str, str] | None = None,
    ) -> Reply:
        sent = {"Authorization": GUIDE_AUTH_HEADER} if credentials is None else dict(credentials)
        if json_body is not None:
            data = json.dumps(json_body)
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        return self._send(method, path, data=data, headers=sent)

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, json_body: object = None, **kwargs: Any) -> Reply:
        return self.request("PUT", path, json_body=json_body, **kwargs)

    def post(self, path: str, json_body: object = None, **kwargs: Any) -> Reply:
        return self.request("POST", path, json_body=json_body, **kwargs)

    def tenant_state(self, tenant: str = DEMO_TENANT) -> Any:
        """The tenant as the control plane shows it (fixture format)."""
        return self.admin("GET", f"/__admin/tenants/{tenant}").json()

    def agent(self, agent_id: str, tenant: str = DEMO_TENANT) -> dict[str, Any]:
        agents: list[dict[str, Any]] = self.tenant_state(tenant)["agents"]
        return next(agent for agent in agents if agent["agent-id"] == agent_id)

    def admin(self, method: str, path: str, json_body: object = None) -> Reply:
        return self.request(method, path, json_body=json_body, credentials={})

    def place_agent(self, agent_id: str, status: int, group_id: int = 100, **fields: Any) -> None:
        """Create or replace an agent through the control plane, in any status."""
        body = {"agent-status": status, "group-id": group_id, "name": "Test Agent", **fields}
        reply = self.admin("PUT", f"/__admin/tenants/{DEMO_TENANT}/agents/{agent_id}", body)
        assert reply.status in (200, 201), reply.text


def flask_api(client: FlaskClient) -> Api:
    def send(method: str, path: str, data: Any, headers: Mapping[str, str]) -> Reply:
        response = client.open(path, method=method, data=data, headers=dict(headers))
        return Reply(response.status_code, dict(response.headers), response.get_data(as_text=True))

    return Api(send)


def http_api(server: RunningServer, session: requests.Session) -> Api:
    def send(method: str, path: str, data: Any, headers: Mapping[str, str]) -> Reply:
        response = session.request(
            method, server.base_url + path, data=data, headers=dict(headers), timeout=10
        )
        return Reply(response.status_code, dict(response.headers), response.text)

    return Api(send)


@pytest.fixture(params=["flask", "http"])
def api(request: pytest.FixtureRequest) -> Iterator[Api]:
    """The emulator through the Flask test client, then again over real HTTP."""
    if request.param == "flask":
        yield flask_api(request.getfixturevalue("client"))
        return
    with requests.Session() as session:
        yield http_api(request.getfixturevalue("live"), session)
