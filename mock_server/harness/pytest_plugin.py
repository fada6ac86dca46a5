"""The ``agentstatus`` pytest plugin: an emulator fixture for a project's own tests.

Installed through the ``pytest11`` entry point, so ``pip install`` is enough::

    def test_breaks(agentstatus_emulator):
        session = agentstatus_emulator.session()
        session.get(agentstatus_emulator.agents_url)

Isolation: one emulator per profile per pytest process (so per xdist worker), started lazily
on 127.0.0.1 and a free port, and one **fresh tenant per test**, created from a fixture file's
tenant under a unique id, username and token, and deleted afterwards. Faults the test adds
match only its tenant, and its journal is read and cleared by tenant, so nothing a test does
can reach another test's state, even on one shared emulator (``--agentstatus-url``).

Per test, the handle's control-plane calls (creating and deleting the tenant, clearing its
journal, faults, state) reach an emulator this plugin started through the in-process
transport, with no socket: the same app, so the same answers. The test's own requests go to
the server's socket as any client's. A fixture file is read once while it is unchanged.

``@pytest.mark.agentstatus(fixture="tenants.yaml", tenant="acme", profile="guide")`` picks
the fixture file (relative to the test file; default the demo tenant set), which of its
tenants to copy (default the first) and the profile (default ``default``).
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from requests.adapters import BaseAdapter

from mock_server.app import create_app
from mock_server.core.fixtures import load_fixture
from mock_server.harness.handle import Emulator
from mock_server.harness.inprocess import WSGIAdapter
from mock_server.http.control import ADMIN_TOKEN_ENV
from mock_server.serving.threaded import RunningServer, start_in_thread

MARKER = "agentstatus"


class EmulatorPool:
    """The emulators of one pytest process: one per profile, or one given by URL."""

    def __init__(self, url: str | None, admin_token: str | None) -> None:
        self.url = url
        self.admin_token = admin_token
        self._servers: dict[str, RunningServer] = {}
        self._transports: dict[str, BaseAdapter] = {}

    def base_url(self, profile: str | None) -> str:
        if self.url is not None:
            if profile is not None:
                raise pytest.UsageError(
                    f"@pytest.mark.{MARKER}(profile=...) needs an emulator this plugin starts; "
                    "--agentstatus-url points at one whose profile it cannot change."
                )
            return self.url
        chosen = profile or "default"
        if chosen not in self._servers:
            app = create_app(profile=chosen, admin_token=self.admin_token)
            self._servers[chosen] = start_in_thread(app)
            self._transports[chosen] = WSGIAdapter(app)
        return self._servers[chosen].base_url

    def transport(self, profile: str | None) -> BaseAdapter | None:
        """The in-process way into an emulator this pool started; None for one given by URL."""
        return None if self.url is not None else self._transports.get(profile or "default")

    def stop(self) -> None:
        for server in self._servers.values():
            server.stop()
        self._servers.clear()
        self._transports.clear()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(MARKER, "8x8 Agent Status emulator")
    group.addoption(
        "--agentstatus-url",
        default=None,
        help="use the emulator already running at this URL instead of starting one",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(fixture=None, tenant=None, profile=None): the fixture file, tenant and "
        "profile for the agentstatus_emulator fixture",
    )


@pytest.fixture(scope="session")
def agentstatus_pool(request: pytest.FixtureRequest) -> Iterator[EmulatorPool]:
    """The emulators of this process (one per xdist worker), stopped at the end."""
    pool = EmulatorPool(
        request.config.getoption("--agentstatus-url"), os.environ.get(ADMIN_TOKEN_ENV)
    )
    yield pool
    pool.stop()


_FixtureKey = tuple[str, int, int, int] | None
_fixtures: dict[str | None, tuple[_FixtureKey, list[dict[str, Any]]]] = {}


def _fixture_key(path: Path | None) -> _FixtureKey:
    """What says a fixture file is unchanged; None for the built-in demo set, or when the
    file cannot be read (then it is loaded, to fail as it would)."""
    if path is None:
        return None
    try:
        status = path.stat()
    except OSError:
        return None
    return (str(path), status.st_mtime_ns, status.st_size, status.st_ino)


def _copied(value: Any) -> Any:
    """A fresh copy of a loaded document (dicts and lists; the values in them are immutable)."""
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    return value


def _fixture_tenants(path: Path | None) -> list[dict[str, Any]]:
    """The tenants of ``load_fixture(path)``, parsed and checked once while the file is
    unchanged; each call returns new objects, as a new load would."""
    key = _fixture_key(path)
    if path is not None and key is None:
        unread: list[dict[str, Any]] = load_fixture(path)["tenants"]  # fails as it would
        return unread
    name = None if path is None else str(path)
    cached = _fixtures.get(name)
    if cached is None or cached[0] != key:
        cached = _fixtures[name] = (key, load_fixture(path)["tenants"])
    tenants: list[dict[str, Any]] = _copied(cached[1])
    return tenants


def _tenant_document(request: pytest.FixtureRequest, options: dict[str, Any]) -> dict[str, Any]:
    path = options.get("fixture")
    if path is not None and not Path(path).is_absolute():
        path = request.path.parent / path
    tenants = _fixture_tenants(None if path is None else Path(path))
    wanted = options.get("tenant")
    for tenant in tenants:
        if wanted is None or tenant["tenant-id"] == wanted:
            return tenant
    raise pytest.UsageError(f"@pytest.mark.{MARKER}: no tenant '{wanted}' in {path}.")


@pytest.fixture
def agentstatus_emulator(
    request: pytest.FixtureRequest, agentstatus_pool: EmulatorPool
) -> Iterator[Emulator]:
    """A fresh tenant of a running emulator: URLs, credentials and its control plane."""
    marker = request.node.get_closest_marker(MARKER)
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    unknown = set(options) - {"fixture", "tenant", "profile"}
    if unknown:
        raise pytest.UsageError(f"@pytest.mark.{MARKER}: unknown option {sorted(unknown)[0]}.")
    source = _tenant_document(request, options)
    unique = f"t{uuid.uuid4().hex[:16]}"
    document = {**source, "tenant-id": unique, "username": unique}
    document["token"] = secrets.token_urlsafe(18)
    base_url = agentstatus_pool.base_url(options.get("profile"))
    handle = Emulator.create_tenant(
        base_url,
        document,
        agentstatus_pool.admin_token,
        transport=agentstatus_pool.transport(options.get("profile")),
    )
    yield handle
    handle.close()
