"""``AgentStatusClient``: the four operations over one ``requests.Session``.

Every call has a timeout, goes through one send loop that applies the retry policy
(``client.retry``) and turns every non-2xx answer into a typed error (``client.errors``).
Redirects are not followed: the API never redirects, and following one would resend the
credentials, or turn a PUT into a GET.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, Literal, Self
from urllib.parse import quote, urlsplit

import requests
import urllib3
from requests.auth import AuthBase

from client.errors import (
    AgentNotFoundError,
    AgentStatusError,
    ApiNotEnabledError,
    AuthenticationError,
    ChangeRejectedError,
    ConfigurationError,
    ForbiddenError,
    MethodNotAllowedError,
    RateLimitedError,
    ServerError,
    TenantForbiddenError,
    TransportError,
    UnexpectedResponseError,
)
from client.models import AGENT_ID, Agent, BulkResult, ChangeOutcome, StatusChange, StatusCode
from client.retry import Replay, RetryPolicy, may_retry_status, parse_retry_after
from schemas import load_schema
from schemas.rules import REPEATABLE

log = logging.getLogger(__name__)

Timeout = float | tuple[float, float]
BulkMethod = Literal["POST", "PUT"]

DEFAULT_TIMEOUT: Timeout = (3.05, 30.0)
"""Connect and read timeouts, in seconds."""
BULK_LIMIT = 100
"""The reference's ``maxItems`` for a bulk request."""
MAX_PAGES = 10_000
REQUEST_ID_HEADER = "X-Request-Id"
USER_AGENT = "agentstatus-twin-client/0.1"
HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}
"""Sent with every request, over (never into) the headers of a caller's session."""
BODY_PREVIEW_CHARS = 300
XML_FORBIDDEN_MARK = "<API><Error>403"

ENV_BASE_URL = "AGENTSTATUS_BASE_URL"
ENV_PLATFORM = "AGENTSTATUS_PLATFORM"
ENV_TENANT = "AGENTSTATUS_TENANT"
ENV_USERNAME = "AGENTSTATUS_USERNAME"
ENV_TOKEN = "AGENTSTATUS_TOKEN"


def platforms() -> dict[str, str]:
    """The vendor's platforms, name -> API base URL (``schemas/platforms.json``)."""
    table: dict[str, str] = load_schema("platforms.json")["platforms"]
    return dict(table)


def platform_url(name: str) -> str:
    """The base URL of a platform named as the vendor does (``na12``, ``EU7``, ``bc2``)."""
    table = platforms()
    try:
        return table[name.strip().upper()]
    except KeyError:
        known = ", ".join(sorted(table))
        raise ConfigurationError(f"unknown platform {name!r}; known platforms: {known}") from None


def basic_authorization(username: str, token: str) -> str:
    """The ``Authorization`` value for HTTP Basic with a username and action token."""
    encoded = base64.b64encode(f"{username}:{token}".encode()).decode("ascii")
    return f"Basic {encoded}"


class TokenAuth(AuthBase):
    """HTTP Basic with the tenant's username and action token; its repr hides the token."""

    def __init__(self, username: str, token: str) -> None:
        self.username = username
        self._header = basic_authorization(username, token)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._header
        return request

    def __repr__(self) -> str:
        return f"TokenAuth(username={self.username!r}, token='***')"


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
        if (base_url is None) == (platform is None):
            raise ConfigurationError("give exactly one of base_url and platform")
        url = platform_url(platform) if platform is not None else str(base_url)
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(f"base URL must be http(s)://host/..., got {url!r}")
        for name, value in (("tenant", tenant), ("username", username), ("token", token)):
            if not value:
                raise ConfigurationError(f"{name} must not be empty")
        if bulk_method not in ("POST", "PUT"):
            raise ConfigurationError(f"bulk_method must be POST or PUT, got {bulk_method!r}")
        if bulk_chunk_size < 1:
            raise ConfigurationError("bulk_chunk_size must be at least 1")
        self.base_url = url.strip().rstrip("/")
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
        env = os.environ if environ is None else environ

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise ConfigurationError(f"environment variable {name} is not set")
            return value

        base_url, platform = env.get(ENV_BASE_URL, "").strip(), env.get(ENV_PLATFORM, "").strip()
        if not base_url and not platform:
            raise ConfigurationError(
                f"environment variable {ENV_BASE_URL} (or {ENV_PLATFORM}) is not set"
            )
        return cls(
            base_url or None,
            platform=None if base_url else platform,
            tenant=required(ENV_TENANT),
            username=required(ENV_USERNAME),
            token=required(ENV_TOKEN),
            **options,
        )

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
            body = _json_object(response)
            data = body.get("data")
            if not isinstance(data, list):
                raise _unexpected(response, "the agent list has no 'data' array")
            agents.extend(_agent(response, item) for item in data)
            next_page = _next_page(body.get("page"))
            if next_page is None:
                return agents
            params = {**params, **next_page}
        raise _unexpected(response, f"the agent list has more than {MAX_PAGES} pages")

    def get_agent(self, agent_id: str) -> Agent:
        response = self._send(
            "GET", self._agents_url(agent_id), replay=Replay.SAFE, agent_id=agent_id
        )
        return _agent(response, _json_object(response))

    def set_agent_status(
        self, agent_id: str, status: int, status_code: StatusCode | None = None
    ) -> ChangeOutcome:
        """Set one agent's status (and reason code). A refusal raises ``ChangeRejectedError``."""
        change = StatusChange(agent_id, int(status), status_code)
        replay = Replay.SAFE if status in REPEATABLE else Replay.IF_UNPROCESSED
        response = self._send(
            "PUT", self._agents_url(agent_id), replay=replay, body=change.body(), agent_id=agent_id
        )
        if not response.content.strip():
            return ChangeOutcome(agent_id, response.status_code, change=change)
        return ChangeOutcome.from_wire(_json_object(response), change)

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

    def _agents_url(self, agent_id: str | None = None) -> str:
        if agent_id is not None and not agent_id:
            raise ValueError("agent_id must not be empty")
        url = f"{self.base_url}/tenants/{quote(self.tenant, safe='')}/agentstatus/agents"
        return url if agent_id is None else f"{url}/{quote(agent_id, safe='')}"

    def _bulk_chunk(self, chunk: Sequence[StatusChange]) -> list[ChangeOutcome]:
        body = {"agents": [change.to_wire() for change in chunk]}
        try:
            response = self._send_bulk(self.bulk_method, body)
        except AgentStatusError as error:
            if not (self.bulk_method_fallback and _method_refused(self.bulk_method, error.status)):
                raise
            other = _other_method(self.bulk_method)
            log.warning("bulk %s refused (%s); trying %s", self.bulk_method, error.status, other)
            try:
                response = self._send_bulk(other, body)
            except AgentStatusError as second:
                if _method_refused(other, second.status):
                    raise error from None
                raise
            self.bulk_method = other
        if response.status_code not in (200, 207):
            raise _unexpected(response, f"a bulk set answered {response.status_code}, not 207")
        data = _json_object(response).get("data")
        if not isinstance(data, list):
            raise _unexpected(response, "the bulk result has no 'data' array")
        return _merge(chunk, [item for item in data if isinstance(item, Mapping)])

    def _send_bulk(self, method: BulkMethod, body: dict[str, Any]) -> requests.Response:
        hint = (
            f"if this platform takes {_other_method(method)} for bulk, set "
            f"bulk_method={_other_method(method)!r} or bulk_method_fallback=True"
        )
        hints = {405: hint} if method == "POST" else {400: hint, 404: hint, 405: hint}
        return self._send(
            method,
            self._agents_url() + "/bulk",
            replay=Replay.IF_UNPROCESSED,
            body=body,
            hints=hints,
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
            lost = _transport_error(failure, method, url, attempt)
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


def _other_method(method: BulkMethod) -> BulkMethod:
    return "PUT" if method == "POST" else "POST"


def _method_refused(method: BulkMethod, status: int | None) -> bool:
    """Whether a bulk refusal may mean "wrong method" rather than "wrong body".

    405 always does. A PUT on a POST-only platform reaches the single set of an agent named
    "bulk", refused with 400 (body) or 404 (agent). None of these changed anything.
    """
    return status == 405 or (method == "PUT" and status in (400, 404))


def _transport_error(
    failure: requests.RequestException, method: str, url: str, attempts: int
) -> TransportError:
    """A TransportError that keeps the failure's text but not the failure (nor its request)."""
    never_sent = _never_sent(failure)
    message = f"no response from the service ({type(failure).__name__}: {failure})"
    return TransportError(message, sent=not never_sent, method=method, url=url, attempts=attempts)


def _never_sent(failure: requests.RequestException) -> bool:
    """True when the connection was never established, so the request cannot have arrived."""
    if isinstance(failure, requests.ConnectTimeout):
        return True
    reason = failure.args[0] if failure.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    return isinstance(
        reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
    )


def error_from_response(
    response: requests.Response,
    *,
    agent_id: str | None = None,
    hints: Mapping[int, str] | None = None,
    attempts: int = 1,
) -> AgentStatusError:
    """The typed error for a non-2xx response, with the server's own explanation."""
    status = response.status_code
    text = response.text
    problem = _problem(response)
    request_id = response.headers.get(REQUEST_ID_HEADER)
    instance = problem.get("instance") if problem else None
    if request_id is None and isinstance(instance, str) and instance.startswith("urn:uuid:"):
        request_id = instance.removeprefix("urn:uuid:")
    detail = problem.get("detail") if problem else None
    if not isinstance(detail, str) or not detail:
        detail = " ".join(text.split())[:BODY_PREVIEW_CHARS]
    hint = (hints or {}).get(status)
    message = f"{status} {_phrase(status, response)}" + (f": {detail}" if detail else "")
    if hint:
        message += f" ({hint})"
    fields: dict[str, Any] = {
        "status": status,
        "body": text,
        "request_id": request_id,
        "problem": problem,
        "method": response.request.method if response.request is not None else None,
        "url": response.url,
        "attempts": attempts,
    }
    if status == 400:
        return ChangeRejectedError(message, **fields)
    if status == 401:
        return AuthenticationError(message, **fields)
    if status == 403:
        if XML_FORBIDDEN_MARK in text or "xml" in response.headers.get("Content-Type", ""):
            return ApiNotEnabledError(
                f"{message} (the Agent Status API is not enabled for this tenant: ask 8x8 "
                "support to enable it)",
                **fields,
            )
        if problem is not None:
            return TenantForbiddenError(message, **fields)
        return ForbiddenError(message, **fields)
    if status == 404 and agent_id is not None:
        return AgentNotFoundError(message, agent_id=agent_id, **fields)
    if status == 405:
        return MethodNotAllowedError(message, **fields)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return RateLimitedError(message, retry_after=retry_after, **fields)
    if status >= 500:
        return ServerError(message, **fields)
    return UnexpectedResponseError(message, **fields)


def _phrase(status: int, response: requests.Response) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return response.reason or "Unknown"


def _problem(response: requests.Response) -> dict[str, Any] | None:
    """The body as a JSON object when the response declares JSON, else None."""
    if "json" not in response.headers.get("Content-Type", ""):
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _unexpected(response: requests.Response, what: str) -> UnexpectedResponseError:
    return UnexpectedResponseError(
        f"{what}: {' '.join(response.text.split())[:BODY_PREVIEW_CHARS]}",
        status=response.status_code,
        body=response.text,
        request_id=response.headers.get(REQUEST_ID_HEADER),
        method=response.request.method if response.request is not None else None,
        url=response.url,
    )


def _json_object(response: requests.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        raise _unexpected(response, "the response is not JSON") from None
    if not isinstance(body, dict):
        raise _unexpected(response, "the response is not a JSON object")
    return body


def _agent(response: requests.Response, data: object) -> Agent:
    try:
        return Agent.from_wire(data)
    except ValueError as problem:
        raise _unexpected(response, str(problem)) from None


def _next_page(page: object) -> dict[str, str] | None:
    """The query of the next page when the service pages (the reference's ``page`` object)."""
    if not isinstance(page, Mapping):
        return None
    index, total, size = page.get("pageIndex"), page.get("totalPages"), page.get("pageSize")
    if not (isinstance(index, int) and isinstance(total, int) and isinstance(size, int)):
        return None
    if index + 1 >= total:
        return None
    return {"pageIndex": str(index + 1), "pageSize": str(size)}


def _merge(chunk: Sequence[StatusChange], results: list[Mapping[str, Any]]) -> list[ChangeOutcome]:
    """Results back onto the requested changes: by position, else by agent id in order."""
    if len(results) == len(chunk) and all(
        result.get(AGENT_ID) == change.agent_id
        for change, result in zip(chunk, results, strict=True)
    ):
        return [
            ChangeOutcome.from_wire(result, change)
            for change, result in zip(chunk, results, strict=True)
        ]
    by_agent: defaultdict[object, deque[Mapping[str, Any]]] = defaultdict(deque)
    for result in results:
        by_agent[result.get(AGENT_ID)].append(result)
    merged = []
    for change in chunk:
        queue = by_agent.get(change.agent_id)
        if queue:
            merged.append(ChangeOutcome.from_wire(queue.popleft(), change))
        else:
            merged.append(
                ChangeOutcome(
                    change.agent_id,
                    None,
                    reason="The service returned no result for this entry.",
                    change=change,
                )
            )
    return merged
