"""Shared fixtures: an app factory per test, one live server per session (and per xdist worker)
reset before each test, and the demo tenant's credentials."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from mock_server import create_app
from mock_server.context import EXTENSION, EmulatorState
from mock_server.server import RunningServer, start_in_thread

DEMO_TENANT = "acmecorp01"
DEMO_USERNAME = "myclientId"
DEMO_TOKEN = "nevertellanyone"
GUIDE_AUTH_HEADER = "Basic bXljbGllbnRJZDpuZXZlcnRlbGxhbnlvbmU="
OTHER_TENANT = "globex02"
DISABLED_TENANT = "initech03"


def basic(username: str, token: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{username}:{token}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def api_path(tenant: str = DEMO_TENANT, suffix: str = "") -> str:
    return f"/api/v1/tenants/{tenant}/agentstatus/agents{suffix}"


@pytest.fixture
def app() -> Flask:
    return create_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": GUIDE_AUTH_HEADER}


@pytest.fixture(scope="session")
def live_server() -> Iterator[RunningServer]:
    """One threaded emulator on 127.0.0.1 and a free port, for the whole session."""
    with start_in_thread(create_app()) as server:
        yield server


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
