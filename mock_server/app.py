"""The application factory: the API (``http``) with the test double (``testdouble``) around it,
over a backend (``core``). The composition root, imported by the harness, live and the CLI."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, request

from mock_server.core.backend import AgentStatusBackend
from mock_server.core.fixtures import load_fixture
from mock_server.core.profiles import Profile, get_profile
from mock_server.core.store import StateStore
from mock_server.dashboard.views import install_dashboard
from mock_server.http.admin import admin
from mock_server.http.api import AgentStatusApi, ApiRouter
from mock_server.http.context import EXTENSION, EmulatorState
from mock_server.http.documents import docs
from mock_server.http.problems import install_error_rendering, render_error
from mock_server.http.request_ids import RequestIdMiddleware, request_id_of
from mock_server.http.simulation import install_simulation
from mock_server.http.validation import EXTENSION as CONTRACT_EXTENSION
from mock_server.http.validation import ResponseContract, contract_failure, response_violations
from mock_server.testdouble.journal import DEFAULT_JOURNAL_SIZE
from mock_server.testdouble.middleware import install as install_test_double
from schemas.wire import REQUEST_ID_HEADER

API_EXTENSION = "agentstatus.api"


def api_of(app: Flask) -> AgentStatusApi:
    """The app's API (every path under ``/api/``), which Flask does not route."""
    api: AgentStatusApi = app.extensions[API_EXTENSION]
    return api


class EmulatorFlask(Flask):
    """Flask without the per-call check for ``async`` views and hooks: the emulator has none,
    and the check (``inspect.iscoroutinefunction``) ran twice on every request."""

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        return func


def create_app(
    fixture: Mapping[str, Any] | str | Path | None = None,
    *,
    profile: str | Profile = "default",
    admin_token: str | None = None,
    backend: AgentStatusBackend | None = None,
    validate_responses: bool = False,
    journal_size: int = DEFAULT_JOURNAL_SIZE,
    store: StateStore | None = None,
    shared_test_double: Path | None = None,
) -> Flask:
    """An emulator. ``fixture`` is a document or a file path; None loads the demo tenants.

    ``validate_responses`` judges every response against the OpenAPI documents and turns one
    that breaks them into a 500 (see ``mock_server.http.validation``). ``store`` is where the state
    lives (default: this process's memory); one that already holds a state keeps it.
    ``shared_test_double`` is a file where faults and the journal live for every process
    that names it (default: this process's memory).
    """
    chosen = profile if isinstance(profile, Profile) else get_profile(profile)
    if backend is None:
        document = fixture if isinstance(fixture, Mapping) else load_fixture(fixture)
        backend = AgentStatusBackend(document, chosen, store)
    app = EmulatorFlask(__name__)
    # A path with an empty segment (``/api//v1``) has no operation, like any other unknown
    # path: a 404 Problem, not Werkzeug's 308 redirect with an HTML body.
    app.url_map.merge_slashes = False
    app.extensions[EXTENSION] = EmulatorState(backend=backend, admin_token=admin_token)
    app.register_blueprint(admin)
    app.register_blueprint(docs)
    install_simulation(app)
    install_dashboard(app)
    contract = ResponseContract.for_profile(backend.profile) if validate_responses else None
    if contract is not None:
        app.extensions[CONTRACT_EXTENSION] = contract
        app.after_request(_enforce_contract)
    install_error_rendering(app)
    api = AgentStatusApi(backend, contract=contract, logger=app.logger)
    app.extensions[API_EXTENSION] = api
    app.wsgi_app = RequestIdMiddleware(ApiRouter(api, app.wsgi_app))  # type: ignore[method-assign]
    install_test_double(
        app, journal_size, backend.profile.error_media_type, shared=shared_test_double
    )
    return app


def _enforce_contract(response: Response) -> Response:
    """A response that breaks the documents becomes a logged 500 naming every violation.

    The id the middleware would add on the way out is added now, so that it is judged too.
    """
    response.headers.setdefault(REQUEST_ID_HEADER, request_id_of(request.environ))
    failure = contract_failure(response_violations(response))
    if failure is None:
        return response
    current_app.logger.error("%s %s: %s", request.method, request.path, failure.detail)
    return render_error(failure)
