"""``AgentStatusClient``: the four operations over one ``requests.Session``.

Every call has a timeout, goes through one send loop that applies the retry policy
(``client.retry``) and turns every non-2xx answer into a typed error (``client.errors``, read
by ``client.responses``). Redirects are not followed: the API never redirects, and following
one would resend the credentials, or turn a PUT into a GET.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Self

import requests

from client.auth import TokenAuth
from client.bulk import (
    BulkMethod,
    chunk_outcomes,
    method_hints,
    method_refused,
    other_method,
)
from client.config import base_url_of, environment_settings
from client.errors import AgentStatusError, ConfigurationError, RateLimitedError
from client.models import Agent, BulkResult, ChangeOutcome, StatusChange, StatusCode
from client.responses import (
    agent_page,
    error_from_response,
    json_object,
    read_agent,
    set_outcome,
    transport_error,
    unexpected,
)
from client.retry import Replay, RetryPolicy, may_retry_status, parse_retry_after
from schemas.rules import REPEATABLE
from schemas.wire import BULK_LIMIT, REQUEST_ID_HEADER, agent_path, agents_path, bulk_path

__all__ = ["DEFAULT_TIMEOUT", "AgentStatusClient", "Timeout"]

log = logging.getLogger(__name__)

Timeout = float | tuple[float, float]

DEFAULT_TIMEOUT: Timeout = (3.05, 30.0)
"""Connect and read timeouts, in seconds."""
MAX_PAGES = 10_000
USER_AGENT = "agentstatus-twin-client/0.1"
HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}
"""Sent with every request, over (never into) the headers of a caller's session."""
DOT_SEGMENTS = (".", "..")
UNSENDABLE = "cannot be sent in a URL path: it would name another resource"
"""``requests`` removes ``.`` and ``..`` path segments, even escaped (it unescapes ``%2E``
first): a set of agent ``..`` would be a PUT on ``/tenants/{tenant}/agentstatus/``."""


class AgentStatusClient:
    """A client for one tenant on one platform.

    Build it from a base URL (``https://vcc-na12.8x8.com/api/v1``), a platform name, or the
    environment (``from_env``). Use it as a context manager, or call ``close``.

    ``bulk_method`` is POST (the API reference) or PUT (the developer guide). With
    ``bulk_method_fallback`` a bulk request refused with 405, or a PUT refused as a whole
    with 400/404 (a POST-only platform routes it to the single set of an agent "bulk"), is
    sent once more with the other method, which the client then keeps. A refused request
    changed nothing, so the resend is safe; if the other method is refused too, the first
    refusal is raised. Without the option the refusal is raised with a hint naming it.

    A ``session`` passed in is used as it is (adapters, proxies, its own headers) and never
    changed: the client's credentials and headers go with each request, and ``close`` leaves
    the session open.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        tenant: str,
        username: str,
        token: str,
        platform: str | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        bulk_method: BulkMethod = "POST",
        bulk_method_fallback: bool = False,
        bulk_chunk_size: int = BULK_LIMIT,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url_of(base_url, platform)
        for name, value in (("tenant", tenant), ("username", username), ("token", token)):
            if not value:
                raise ConfigurationError(f"{name} must not be empty")
        if tenant in DOT_SEGMENTS:
            raise ConfigurationError(f"tenant {tenant!r} {UNSENDABLE}")
        if bulk_method not in ("POST", "PUT"):
            raise ConfigurationError(f"bulk_method must be POST or PUT, got {bulk_method!r}")
        if bulk_chunk_size < 1:
            raise ConfigurationError("bulk_chunk_size must be at least 1")
        self.tenant = tenant
        self.username = username
        self.timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self.bulk_method: BulkMethod = bulk_method
        self.bulk_method_fallback = bulk_method_fallback
        self.bulk_chunk_size = bulk_chunk_size
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        self._auth = TokenAuth(username, token)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> Self:
        """A client from ``AGENTSTATUS_*`` variables; ``options`` go to the constructor.

        ``AGENTSTATUS_BASE_URL`` wins over ``AGENTSTATUS_PLATFORM`` when both are set.
        """
        settings = environment_settings(os.environ if environ is None else environ)
        return cls(**settings, **options)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, tenant={self.tenant!r}, "
            f"username={self.username!r})"
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    # -- the four operations -------------------------------------------------------------

    def list_agents(self, group_id: str | int | None = None) -> list[Agent]:
        """Every agent of the tenant, or of one group; follows pages if the service pages."""
        params: dict[str, str] = {} if group_id is None else {"groupId": str(group_id)}
        agents: list[Agent] = []
        for _ in range(MAX_PAGES):
            response = self._send("GET", self._agents_url(), replay=Replay.SAFE, params=params)
            page, next_page = agent_page(response)
            agents.extend(page)
            if next_page is None:
                return agents
            params = {**params, **next_page}
        raise unexpected(response, f"the agent list has more than {MAX_PAGES} pages")

    def get_agent(self, agent_id: str) -> Agent:
        response = self._send(
            "GET", self._agent_url(agent_id), replay=Replay.SAFE, agent_id=agent_id
        )
        return read_agent(response, json_object(response))

    def set_agent_status(
        self, agent_id: str, status: int, status_code: StatusCode | None = None
    ) -> ChangeOutcome:
        """Set one agent's status (and reason code). A refusal raises ``ChangeRejectedError``."""
        change = StatusChange(agent_id, int(status), status_code)
        replay = Replay.SAFE if status in REPEATABLE else Replay.IF_UNPROCESSED
        response = self._send(
            "PUT", self._agent_url(agent_id), replay=replay, body=change.body(), agent_id=agent_id
        )
        return set_outcome(response, change)

    def set_agents_statuses(
        self,
        changes: Iterable[StatusChange],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> BulkResult:
        """Apply any number of changes, ``bulk_chunk_size`` per request, results in order.

        Per-entry refusals are results (``BulkResult.failed``), not exceptions. A request
        that fails as a whole raises; the error's ``partial`` holds the chunks done before.
        ``progress(done, total)`` is called after each chunk.
        """
        pending = list(changes)
        outcomes: list[ChangeOutcome] = []
        for start in range(0, len(pending), self.bulk_chunk_size):
            chunk = pending[start : start + self.bulk_chunk_size]
            try:
                outcomes.extend(self._bulk_chunk(chunk))
            except AgentStatusError as error:
                raise error.with_partial(BulkResult(tuple(outcomes))) from None
            if progress is not None:
                progress(len(outcomes), len(pending))
        return BulkResult(tuple(outcomes))

    # -- internals -----------------------------------------------------------------------

    def _agents_url(self) -> str:
        return self.base_url + agents_path(self.tenant)

    def _agent_url(self, agent_id: str) -> str:
        if not agent_id:
            raise ValueError("agent_id must not be empty")
        if agent_id in DOT_SEGMENTS:
            raise ValueError(f"agent id {agent_id!r} {UNSENDABLE}")
        return self.base_url + agent_path(self.tenant, agent_id)

    def _bulk_chunk(self, chunk: Sequence[StatusChange]) -> list[ChangeOutcome]:
        body = {"agents": [change.to_wire() for change in chunk]}
        try:
            response = self._send_bulk(self.bulk_method, body)
        except AgentStatusError as error:
            if not (self.bulk_method_fallback and method_refused(self.bulk_method, error.status)):
                raise
            other = other_method(self.bulk_method)
            log.warning("bulk %s refused (%s); trying %s", self.bulk_method, error.status, other)
            try:
                response = self._send_bulk(other, body)
            except AgentStatusError as second:
                if method_refused(other, second.status):
                    raise error from None
                raise
            self.bulk_method = other
        return chunk_outcomes(chunk, response)

    def _send_bulk(self, method: BulkMethod, body: dict[str, Any]) -> requests.Response:
        return self._send(
            method,
            self.base_url + bulk_path(self.tenant),
            replay=Replay.IF_UNPROCESSED,
            body=body,
            hints=method_hints(method),
        )

    def _send(
        self,
        method: str,
        url: str,
        *,
        replay: Replay,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        agent_id: str | None = None,
        hints: Mapping[int, str] | None = None,
    ) -> requests.Response:
        """One call with retries: the 2xx response, or the last failure as a typed error."""
        policy = self.retry
        started = policy.clock()
        attempt = 0
        while True:
            attempt += 1
            outcome, retryable, retry_after = self._attempt(
                attempt, method, url, replay, params, body, agent_id, hints
            )
            if isinstance(outcome, requests.Response):
                return outcome
            error = outcome
            if not retryable or attempt >= policy.max_attempts:
                raise error
            delay = policy.delay(attempt, retry_after)
            if policy.clock() - started + delay > policy.max_elapsed:
                raise error
            log.warning(
                "%s %s failed (%s); retry %d of %d in %.2fs",
                method,
                url,
                error.status or type(error).__name__,
                attempt,
                policy.max_attempts - 1,
                delay,
            )
            policy.sleep(delay)

    def _attempt(
        self,
        attempt: int,
        method: str,
        url: str,
        replay: Replay,
        params: Mapping[str, str] | None,
        body: Any,
        agent_id: str | None,
        hints: Mapping[int, str] | None,
    ) -> tuple[requests.Response | AgentStatusError, bool, float | None]:
        """Attempt number ``attempt``: the 2xx response, or the error, whether to retry it and
        Retry-After."""
        try:
            response = self._session.request(
                method,
                url,
                params=params,
                json=body,
                auth=self._auth,
                headers=HEADERS,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as failure:
            lost = transport_error(failure, method, url, attempt)
            transient = isinstance(failure, requests.Timeout | requests.ConnectionError) and not (
                isinstance(failure, requests.exceptions.SSLError)
            )
            return lost, transient and (replay is Replay.SAFE or not lost.sent), None
        log.debug(
            "%s %s -> %s (request id %s)",
            method,
            url,
            response.status_code,
            response.headers.get(REQUEST_ID_HEADER),
        )
        if 200 <= response.status_code < 300:
            return response, False, None
        error = error_from_response(response, agent_id=agent_id, hints=hints, attempts=attempt)
        retry_after = error.retry_after if isinstance(error, RateLimitedError) else None
        if retry_after is None and response.status_code == 503:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return error, may_retry_status(response.status_code, replay), retry_after
