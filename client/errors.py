"""Every way a call can fail, one type each, so callers catch what they can act on.

The hierarchy (the only description of it; the README links here)::

    AgentStatusError                  base: .status, .body, .request_id, .problem, .detail,
                                      .method, .url, .attempts (how many were made),
                                      .partial (bulk)
    ├── ConfigurationError            no base URL / platform / tenant / username / token
    ├── TransportError                no HTTP answer: refused, reset, timed out, TLS
    ├── AuthenticationError           401: wrong username or token (or a rotated token)
    ├── ForbiddenError                403, either kind
    │   ├── ApiNotEnabledError        the XML 403: the tenant's Agent Status API is off
    │   └── TenantForbiddenError      the other 403: these credentials, another tenant
    ├── AgentNotFoundError            404 on an agent: .agent_id
    ├── ChangeRejectedError           400: the request or the transition was refused: .reason
    │   └── TransitionNotAllowedError raised locally by check_transition, nothing sent
    ├── MethodNotAllowedError         405: e.g. the bulk method this platform does not take
    ├── RateLimitedError              429: .retry_after seconds (None when not given)
    ├── ServerError                   5xx
    └── UnexpectedResponseError       any other status, or a body that is not the contract's

Errors keep what the response said (status, body text, ``X-Request-Id``, Problem JSON) but
never the request: a ``requests`` exception carries the prepared request, Authorization
header included, so none is kept as an attribute and none is chained as a cause.
A bulk call that fails part-way raises an error whose ``.partial`` holds the results of the
chunks already done.

Each error is complete when built (nothing is set on it afterwards), and every one survives a
pickle round trip (pytest-xdist, multiprocessing) with all its attributes, since they are all
plain values: the response is kept as what it said, never as the ``requests.Response``. What
pickle never carries for any exception, the traceback and the cause, is lost.
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Iterator, Mapping
from http.client import HTTPException, RemoteDisconnected
from typing import TYPE_CHECKING, Any, Self, TypeVar
from urllib.parse import urlsplit

import requests
import urllib3

if TYPE_CHECKING:
    from client.models import BulkResult


class AgentStatusError(Exception):
    """Base of every client error: what went wrong, and what the server answered if it did."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: str | None = None,
        request_id: str | None = None,
        problem: Mapping[str, Any] | None = None,
        method: str | None = None,
        url: str | None = None,
        attempts: int = 1,
        partial: BulkResult | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body
        self.request_id = request_id
        self.problem = problem
        self.method = method
        self.url = url
        self.attempts = attempts
        self.partial = partial

    def _arguments(self) -> dict[str, Any]:
        """The keyword arguments, besides the message, that build this error again."""
        return {
            "status": self.status,
            "body": self.body,
            "request_id": self.request_id,
            "problem": self.problem,
            "method": self.method,
            "url": self.url,
            "attempts": self.attempts,
            "partial": self.partial,
        }

    def with_partial(self, partial: BulkResult) -> Self:
        """This error as raised by a bulk call, holding the results done before it."""
        return _rebuild(type(self), self.message, {**self._arguments(), "partial": partial})

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), self.message, self._arguments())

    @property
    def detail(self) -> str | None:
        """The Problem JSON ``detail``: the server's own words on what was wrong."""
        if self.problem is None:
            return None
        detail = self.problem.get("detail")
        return detail if isinstance(detail, str) else None

    def __str__(self) -> str:
        where = f"{self.method} {self.url}: " if self.method and self.url else ""
        text = f"{where}{self.message}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, message={self.message!r})"


class ConfigurationError(AgentStatusError):
    """The client cannot be built: a setting is missing or unknown."""


class TransportError(AgentStatusError):
    """No HTTP response: connection refused or reset, timeout, DNS or TLS failure.

    ``sent`` says whether the request may have reached the server (False only when the
    connection was never established), which decides whether a write may be repeated.
    """

    def __init__(self, message: str, *, sent: bool, **context: Any) -> None:
        super().__init__(message, **context)
        self.sent = sent

    def _arguments(self) -> dict[str, Any]:
        return {**super()._arguments(), "sent": self.sent}

    def __str__(self) -> str:
        """A connection never made names the address it was for, not the request, once."""
        return super().__str__() if self.sent else self.message


class AuthenticationError(AgentStatusError):
    """401: the username or action token is wrong; a newly generated token voids the old."""


class ForbiddenError(AgentStatusError):
    """403: the credentials are valid but may not do this."""


class ApiNotEnabledError(ForbiddenError):
    """The XML 403: ask 8x8 support to enable the "Agent Status API" for the tenant."""


class TenantForbiddenError(ForbiddenError):
    """The JSON 403: the credentials belong to another tenant than the one in the path."""


class AgentNotFoundError(AgentStatusError):
    """404: no agent with this id in the tenant."""

    def __init__(self, message: str, *, agent_id: str, **context: Any) -> None:
        super().__init__(message, **context)
        self.agent_id = agent_id

    def _arguments(self) -> dict[str, Any]:
        return {**super()._arguments(), "agent_id": self.agent_id}


class ChangeRejectedError(AgentStatusError):
    """400: the body or the change was refused; ``reason`` is the server's explanation."""

    @property
    def reason(self) -> str:
        return self.detail or self.message


class TransitionNotAllowedError(ChangeRejectedError):
    """The rule table refuses the change: raised before sending anything."""


class MethodNotAllowedError(AgentStatusError):
    """405: the platform does not take this method on this path."""


class RateLimitedError(AgentStatusError):
    """429: too many requests; ``retry_after`` is how long the server asked to wait."""

    def __init__(self, message: str, *, retry_after: float | None, **context: Any) -> None:
        super().__init__(message, **context)
        self.retry_after = retry_after

    def _arguments(self) -> dict[str, Any]:
        return {**super()._arguments(), "retry_after": self.retry_after}


class ServerError(AgentStatusError):
    """5xx: the service failed; whether a write was applied is unknown."""


class UnexpectedResponseError(AgentStatusError):
    """A status or a body outside the contract (413, 415, a 200 that is not JSON, ...)."""


_Error = TypeVar("_Error", bound=AgentStatusError)


def _rebuild(kind: type[_Error], message: str, arguments: dict[str, Any]) -> _Error:
    """An error built whole from its class and arguments (for pickle and ``with_partial``)."""
    return kind(message, **arguments)


def never_connected(failure: BaseException) -> bool:
    """True when a ``requests`` failure happened before a connection was established, so the
    request cannot have arrived (a DNS failure, a refusal, a connect timeout)."""
    return any(
        isinstance(
            cause,
            requests.ConnectTimeout
            | urllib3.exceptions.NewConnectionError
            | urllib3.exceptions.ConnectTimeoutError,
        )
        for cause in _causes(failure)
    )


def describe_failure(failure: BaseException, url: str) -> str:
    """What went wrong with a request to ``url``, in one line and the user's words:
    ``cannot connect to http://127.0.0.1:1 (connection refused)``. Never urllib3's own text
    (pool reprs, "Max retries exceeded", the chain of causes): it says the same thing four
    times."""
    causes = list(_causes(failure))
    if never_connected(failure):
        return f"cannot connect to {_origin(url)} ({_reason(causes)})"
    if any(isinstance(cause, TimeoutError | requests.Timeout) for cause in causes):
        seconds = _timeout(causes)
        return f"no answer within {seconds} s" if seconds else "no answer in time"
    if any(isinstance(cause, RemoteDisconnected) for cause in causes):
        return "the connection was closed before an answer came"
    if any(isinstance(cause, ConnectionResetError) for cause in causes):
        return "the connection was reset before an answer came"
    if any(isinstance(cause, ssl.SSLError) for cause in causes):
        return f"TLS failure with {_origin(url)} ({_reason(causes)})"
    if any(isinstance(cause, requests.exceptions.ChunkedEncodingError) for cause in causes):
        return "the answer was cut off"
    if any(isinstance(cause, HTTPException) for cause in causes):
        return f"the answer from {_origin(url)} was not HTTP"
    return f"{_reason(causes)} (talking to {_origin(url)})"


def _causes(failure: BaseException) -> Iterator[BaseException]:
    """The failure and every exception it wraps: ``args``, urllib3's ``reason``, causes."""
    pending: list[BaseException] = [failure]
    seen: set[int] = set()
    while pending and len(seen) < 32:
        error = pending.pop(0)
        if id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        inner = [*error.args, getattr(error, "reason", None), error.__cause__, error.__context__]
        pending += [cause for cause in inner if isinstance(cause, BaseException)]


def _reason(causes: list[BaseException]) -> str:
    """The most precise cause among them all, as a few words (urllib3 wraps an OS error in
    classes that also count as timeouts, so the order here is by precision, not by depth)."""

    def first(kind: type[BaseException] | tuple[type[BaseException], ...]) -> Any:
        return next((cause for cause in causes if isinstance(cause, kind)), None)

    if (cause := first(ssl.SSLCertVerificationError)) is not None:
        return f"certificate not accepted: {cause.verify_message}"
    if (cause := first(ssl.SSLError)) is not None:
        return str(cause.reason or cause.strerror or "handshake failed").replace("_", " ").lower()
    if (cause := first(socket.gaierror)) is not None:
        return f"host name lookup failed: {_lower(cause.strerror)}"
    if first(ConnectionRefusedError) is not None:
        return "connection refused"
    if first(ConnectionResetError) is not None:
        return "connection reset"
    if first((TimeoutError, urllib3.exceptions.ConnectTimeoutError)) is not None and not first(
        urllib3.exceptions.NewConnectionError
    ):
        seconds = _timeout(causes)
        return f"timed out after {seconds} s" if seconds else "timed out"
    plain = [c for c in causes if isinstance(c, OSError) and c.strerror and c.errno is not None]
    if plain:
        return _lower(plain[0].strerror)
    return type(causes[-1]).__name__


def _timeout(causes: list[BaseException]) -> str | None:
    """The timeout urllib3 names in its message ("(read timeout=0.2)"), as given."""
    for cause in causes:
        found = re.search(r"timeout=([0-9.]+)", str(cause))
        if found:
            return found.group(1)
    return None


def _origin(url: str) -> str:
    """``scheme://host:port`` of a URL, without any credentials it holds."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}" if parts.netloc else "the service"


def _lower(text: str | None) -> str:
    return (text[:1].lower() + text[1:]) if text else "unknown failure"
