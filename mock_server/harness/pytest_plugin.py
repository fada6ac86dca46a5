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

Per test, on an emulator this plugin started, nothing goes over HTTP unless the test asks:
the tenant is put into the state already built (a fixture file is read, checked and built
once while it is unchanged), and taken out with its journal afterwards, directly. While the
test runs, requests made with ``requests`` to ``base_url`` are answered by the same app
in-process (``ServedInProcess``, as ``emulate()`` does: same answers, faults included), and
any other client reaches the server's socket. The handle's control-plane calls go in-process
too. On an emulator given by ``--agentstatus-url`` all of it goes over its control plane.

``@pytest.mark.agentstatus(fixture="tenants.yaml", tenant="acme", profile="guide")`` picks
the fixture file (relative to the test file; default the demo tenant set), which of its
tenants to copy (default the first) and the profile (default ``default``). A wrong argument,
or an ``--agentstatus-url`` where no emulator answers, fails the tests concerned with one
line naming it.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Callable, Generator, Iterator
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import pytest
import requests

from client.errors import describe_failure
from mock_server.app import create_app
from mock_server.core.backend import AgentStatusBackend
from mock_server.core.entities import FixtureTenant
from mock_server.core.fixtures import FixtureError, build_tenants, load_fixture
from mock_server.core.profiles import get_profile
from mock_server.harness.handle import ControlPlaneError, Emulator
from mock_server.harness.inprocess import ServedInProcess
from mock_server.http.control import ADMIN_ROOT, ADMIN_TOKEN_ENV
from mock_server.serving.threaded import RunningServer, start_in_thread
from mock_server.testdouble.journal import JournalFilter, Recorder
from mock_server.testdouble.middleware import journal_of

MARKER = "agentstatus"
ARGUMENTS = ("fixture", "tenant", "profile")
DEMO_SET = "the demo tenant set"
HEALTH_TIMEOUT_SECONDS = 5.0
URL_OPTION = "--agentstatus-url"

Result = TypeVar("Result")
POOL = pytest.StashKey["EmulatorPool"]()


def _refuse(message: str) -> NoReturn:
    """Fail the test with ``message`` alone: the user's mistake, so no traceback."""
    pytest.fail(message, pytrace=False)


@dataclass(frozen=True)
class StartedEmulator:
    """An emulator this plugin started: its state, its journal, its server, and the way to
    answer requests for the server's URL in-process."""

    backend: AgentStatusBackend
    journal: Recorder
    server: RunningServer
    served: ServedInProcess

    @classmethod
    def start(cls, profile: str, admin_token: str | None) -> StartedEmulator:
        backend = AgentStatusBackend(_fixture_set(MarkerOptions()).document, get_profile(profile))
        app = create_app(backend=backend, profile=profile, admin_token=admin_token)
        server = start_in_thread(app)
        return cls(backend, journal_of(app), server, ServedInProcess(app, server.base_url))

    def remove_tenant(self, tenant_id: str) -> None:
        """The tenant, its journal and its events gone (the tenant itself may be already,
        deleted by its test): nothing of a finished test stays behind."""
        self.journal.clear(JournalFilter(tenant=tenant_id))
        self.backend.discard_tenant(tenant_id)


class StartedTenant(Emulator):
    """A test's tenant on an emulator this plugin started, put into its state and taken out
    directly: through the control plane, each test would rebuild and recheck the tenant."""

    def __init__(
        self, started: StartedEmulator, document: dict[str, Any], admin_token: str | None
    ) -> None:
        super().__init__(
            started.server.base_url,
            document["tenant-id"],
            document["username"],
            document["token"],
            admin_token=admin_token,
            document=document,
            transport=started.served.adapter,
        )
        self._started = started

    def close(self) -> None:
        self.faults.clear()
        self._started.remove_tenant(self.tenant)
        self.control.close()


class EmulatorPool:
    """The emulators of one pytest process (so of one xdist worker): one per profile, or
    one given by URL. It lives as long as the process's pytest configuration, not as a
    session fixture: a fixture's dependencies cost every test a lookup."""

    def __init__(self, url: str | None, admin_token: str | None) -> None:
        self.url = url
        self.admin_token = admin_token
        self._started: dict[str, StartedEmulator] = {}
        self._url_problem: str | None = None
        self._url_checked = False

    def remote_url(self) -> str | None:
        """The emulator given by URL, checked on first use (and refused, in one line, for
        every test, when no emulator answers there); None when this pool starts its own."""
        if self.url is not None and not self._url_checked:
            self._url_problem = _emulator_problem(self.url)
            self._url_checked = True
        if self._url_problem is not None:
            _refuse(self._url_problem)
        return self.url

    def started(self, profile: str) -> StartedEmulator:
        """The emulator of ``profile`` this pool started, started on first use."""
        emulator = self._started.get(profile)
        if emulator is None:
            emulator = self._started[profile] = StartedEmulator.start(profile, self.admin_token)
        return emulator

    def stop(self) -> None:
        for emulator in self._started.values():
            emulator.server.stop()
        self._started.clear()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(MARKER, "8x8 Agent Status emulator")
    group.addoption(
        URL_OPTION,
        default=None,
        help="use the emulator already running at this URL instead of starting one",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(fixture=None, tenant=None, profile=None): the fixture file, tenant and "
        "profile for the agentstatus_emulator fixture",
    )
    url = config.getoption(URL_OPTION)
    if url is not None and not _is_http_url(url):
        raise pytest.UsageError(
            f"{URL_OPTION} {url!r}: must be an http(s) URL, such as http://127.0.0.1:8080"
        )
    config.stash[POOL] = EmulatorPool(url, os.environ.get(ADMIN_TOKEN_ENV))


_running: list[pytest.Item] = []
"""The tests being run, innermost last (pytester runs sessions inside a test). The fixture
finds its test here rather than through ``request``, which costs pytest a fixture
definition of its own, built three times per test: a twentieth of the fixture's cost."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    _running.append(item)
    try:
        return (yield)
    finally:
        _running.pop()


def pytest_unconfigure(config: pytest.Config) -> None:
    pool = config.stash.get(POOL, None)
    if pool is not None:
        pool.stop()


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - read to see that it is a number within range
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _emulator_problem(url: str) -> str | None:
    """What is wrong at ``url``, in one line (nothing answers, or something else than an
    emulator), or None.

    A refusal is raised outside the ``except`` that caught its cause, here and everywhere in
    this plugin, or pytest would show the chain of the HTTP library's exceptions above it."""
    health: object = None
    try:
        with requests.get(
            f"{url.rstrip('/')}{ADMIN_ROOT}/health", timeout=HEALTH_TIMEOUT_SECONDS
        ) as response:
            found = f"GET {ADMIN_ROOT}/health -> {response.status_code}"
            with suppress(ValueError):
                health = response.json()
    except (requests.ConnectionError, requests.Timeout) as error:
        found = f"nothing answers there: {describe_failure(error, url)}"
    except requests.RequestException as error:
        found = f"GET {ADMIN_ROOT}/health failed ({type(error).__name__})"
    if isinstance(health, dict) and "status" in health:
        return None
    if found.startswith("GET"):
        found = f"what answers there is not an agentstatus emulator ({found})"
    return f"{URL_OPTION} {url}: {found}"


@dataclass(frozen=True)
class MarkerOptions:
    """The marker's arguments, checked; ``source`` names the fixture set in messages."""

    fixture: Path | None = None
    source: str = DEMO_SET
    shown_fixture: str = ""
    """``fixture=...`` as the marker wrote it, for messages."""
    tenant: str | None = None
    profile: str | None = None


def _marker_options(item: pytest.Item) -> MarkerOptions:
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return MarkerOptions()
    named = f"it takes {', '.join(ARGUMENTS)}"
    if marker.args:
        shown = ", ".join(map(repr, marker.args))
        wanted = ", ".join(f"{name}=" for name in ARGUMENTS)
        _refuse(f"@pytest.mark.{MARKER}({shown}): arguments must be named: {wanted}")
    for name in marker.kwargs:
        if name not in ARGUMENTS:
            _refuse(f"@pytest.mark.{MARKER}({name}=...): unknown argument; {named}")
    fixture, tenant, profile = (marker.kwargs.get(name) for name in ARGUMENTS)
    path, source, shown_fixture = None, DEMO_SET, ""
    if fixture is not None:
        shown_fixture = f"fixture={fixture!r}"
        text = os.fspath(fixture) if isinstance(fixture, str | os.PathLike) else None
        if not isinstance(text, str):
            _refuse(
                f"@pytest.mark.{MARKER}({shown_fixture}): must be a file path "
                f"(str or os.PathLike), got {type(fixture).__name__}"
            )
        path, source = item.path.parent / text, text
    if tenant is not None and not isinstance(tenant, str):
        _refuse(
            f"@pytest.mark.{MARKER}(tenant={tenant!r}): must be a tenant id (str), "
            f"got {type(tenant).__name__}"
        )
    if profile is not None:
        if not isinstance(profile, str):
            _refuse(
                f"@pytest.mark.{MARKER}(profile={profile!r}): must be a profile name (str), "
                f"got {type(profile).__name__}"
            )
        unknown: ValueError | None = None
        try:
            get_profile(profile)
        except ValueError as error:
            unknown = error  # refused below, outside the except: see _emulator_problem
        if unknown is not None:
            _refuse(f"@pytest.mark.{MARKER}(profile={profile!r}): {unknown}")
    return MarkerOptions(path, source, shown_fixture, tenant, profile)


@dataclass(frozen=True)
class TenantTemplate:
    """A fixture's tenant, as its document says and as built (so checked) from it."""

    document: dict[str, Any]
    built: FixtureTenant


@dataclass(frozen=True)
class FixtureSet:
    """A fixture document read and checked, and its tenants by id."""

    document: dict[str, Any]
    tenants: dict[str, TenantTemplate]


_FileKey = tuple[int, int, int]
_fixture_sets: dict[Path | None, tuple[_FileKey | None, FixtureSet]] = {}
"""Each fixture set, with what said its file was unchanged (None: the demo set)."""


def _file_key(path: Path | None) -> _FileKey | None:
    if path is None:
        return None
    try:
        status = path.stat()
    except OSError:
        return None
    return (status.st_mtime_ns, status.st_size, status.st_ino)


def _fixture_set(options: MarkerOptions) -> FixtureSet:
    """The marker's fixture set, read and built once while the file is unchanged (the
    document is shared: nothing changes it); a file that cannot be read or is not a fixture
    is refused naming it."""
    path = options.fixture
    key = _file_key(path)
    cached = _fixture_sets.get(path)
    if cached is not None and cached[0] == key and (path is None or key is not None):
        return cached[1]
    refusal: FixtureError | None = None
    try:
        document = load_fixture(path)
        built = build_tenants(document)
    except FixtureError as error:
        refusal = error
    if refusal is not None:
        reason = " ".join(refusal.detail.split())
        _refuse(f"@pytest.mark.{MARKER}({options.shown_fixture}): {reason}")
    loaded = FixtureSet(
        document,
        {
            raw["tenant-id"]: TenantTemplate(raw, built[raw["tenant-id"]])
            for raw in document["tenants"]
        },
    )
    _fixture_sets[path] = (key, loaded)
    return loaded


def _template(options: MarkerOptions) -> TenantTemplate:
    templates = _fixture_set(options).tenants
    if options.tenant is None:
        first = next(iter(templates.values()), None)
        if first is None:
            _refuse(f"@pytest.mark.{MARKER}({options.shown_fixture}): it has no tenant to copy")
        return first
    template = templates.get(options.tenant)
    if template is None:
        _refuse(
            f"@pytest.mark.{MARKER}(tenant={options.tenant!r}): {options.source} has no such "
            f"tenant; its tenants are {', '.join(templates) or 'none'}"
        )
    return template


def _on_control_plane(base_url: str, step: Callable[[], Result]) -> Result:
    """``step`` on an emulator given by URL; what its control plane refuses, in one line."""
    try:
        return step()
    except ControlPlaneError as error:
        refusal = error
    hint = (
        f" (set {ADMIN_TOKEN_ENV} to the emulator's admin token)" if refusal.status == 403 else ""
    )
    _refuse(f"agentstatus_emulator: {base_url}: {refusal}{hint}")


@pytest.fixture
def agentstatus_emulator() -> Iterator[Emulator]:
    """A fresh tenant of a running emulator: URLs, credentials and its control plane."""
    item = _running[-1]
    agentstatus_pool = item.config.stash[POOL]
    options = _marker_options(item)
    url = agentstatus_pool.remote_url()
    if url is not None and options.profile is not None:
        _refuse(
            f"@pytest.mark.{MARKER}(profile={options.profile!r}): needs an emulator this plugin "
            f"starts; {URL_OPTION} points at one whose profile it cannot change"
        )
    template = _template(options)
    unique = f"t{uuid.uuid4().hex[:16]}"
    token = secrets.token_urlsafe(18)
    document = {**template.document, "tenant-id": unique, "username": unique, "token": token}
    admin_token = agentstatus_pool.admin_token
    if url is not None:
        handle = _on_control_plane(url, lambda: Emulator.create_tenant(url, document, admin_token))
        yield handle
        _on_control_plane(url, handle.close)
        return
    started = agentstatus_pool.started(options.profile or "default")
    tenant = replace(template.built.tenant, tenant_id=unique, username=unique, token=token)
    started.backend.begin_tenant(FixtureTenant(tenant, template.built.agents))
    handle = StartedTenant(started, document, admin_token)
    with started.served:
        yield handle
    handle.close()
