"""The request journal: what every API request asked and what it was answered, newest last.

A bounded ring buffer (oldest entries fall out), so a long-running emulator stays small.
Credentials never enter it: ``Authorization``-like headers keep only their scheme
(``Basic ***``), masked as the exchange is recorded. Recording keeps raw bytes only; bodies are
parsed and the JSON shape of ``GET /__admin/requests`` is built when somebody reads the
journal, so the journal costs the hot path almost nothing.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qs

import orjson

from mock_server.core.errors import InvalidRequest
from schemas.wire import path_ids

DEFAULT_JOURNAL_SIZE = 1000
MAX_RECORDED_BODY = 64 * 1024
MAX_RECORDED_HEADERS = 16 * 1024
"""What one exchange keeps of a request's (or response's) headers, names and values together;
what lies beyond is counted in a note header, not kept."""
MAX_RECORDED_QUERY = 8 * 1024
JOURNAL_BYTES = 64 * 1024 * 1024
"""What a journal may hold in all, bodies and headers counted: the oldest exchanges go first."""
OMITTED_HEADERS = "X-Emulator-Omitted"
SECRET_NAME_PARTS = ("authorization", "token", "api-key", "apikey", "secret", "password", "cookie")
"""A header (or query parameter) whose name holds one of these carries a secret, whatever
else it is called (``X-Forwarded-Authorization``, ``X-Admin-Token``, ``x-api-key``)."""
CREDENTIAL_SCHEMES = frozenset(
    {"basic", "bearer", "digest", "negotiate", "ntlm", "hoba", "mutual", "token", "apikey"}
)
CHALLENGES = frozenset({"www-authenticate", "proxy-authenticate"})
"""A server's demand for credentials names a scheme but holds no secret: never masked."""
MASK = "***"


def is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(part in lowered for part in SECRET_NAME_PARTS)


def holds_credentials(value: str) -> bool:
    """Whether a value reads as credentials, whatever its header: an authentication scheme
    among its words (``Basic dXNlcjp0b2tlbg==``, or ``dXNlcjp0b2tlbg== Basic``)."""
    words = value.split(None, 3)
    return len(words) >= 2 and any(word.lower() in CREDENTIAL_SCHEMES for word in words)


def mask_header(name: str, value: str) -> str:
    """The value to show for a header: a secret by its name or by what it holds shows only its
    scheme when the scheme comes first (``Basic ***``), else nothing (``***``)."""
    if name.lower() in CHALLENGES or not (is_secret_name(name) or holds_credentials(value)):
        return value
    scheme, space, _ = value.strip().partition(" ")
    return f"{scheme} {MASK}" if space and scheme.lower() in CREDENTIAL_SCHEMES else MASK


def masked_query(query: str) -> dict[str, list[str]]:
    """A query string's parameters, a secret-named one's values masked (``x-api-key``)."""
    parameters = parse_qs(query, keep_blank_values=True)
    return {
        name: [MASK] * len(values) if is_secret_name(name) else values
        for name, values in parameters.items()
    }


def _spaced(value: str) -> bool:
    """Whether a value has whitespace of any kind (credentials need it, after their scheme):
    a printable value without an ASCII space has none, and both checks are C-fast."""
    return " " in value or not value.isprintable()


_SECRET_NAMES: dict[str, bool] = {}
"""Header name -> whether it names a secret, for the few names responses carry."""
_SECRET_NAMES_LIMIT = 512


def masked_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """``mask_header`` of each: a value of one word under a name that is not secret holds no
    credentials (they need a scheme beside them), so only the others are looked at."""
    shown = []
    for name, value in headers:
        secret = _SECRET_NAMES.get(name)
        if secret is None:
            secret = is_secret_name(name)
            if len(_SECRET_NAMES) < _SECRET_NAMES_LIMIT:
                _SECRET_NAMES[name] = secret
        shown.append((name, mask_header(name, value) if secret or _spaced(value) else value))
    return shown


_ENVIRON_HEADERS: dict[str, tuple[str, bool] | None] = {}
"""Environ key -> (header name, secret?), or None for a key that is no header."""
_ENVIRON_HEADERS_LIMIT = 512


def _environ_header(key: str) -> tuple[str, bool] | None:
    """The header a WSGI environ key holds, named as Werkzeug's ``EnvironHeaders`` names it, and
    whether it is secret; None for a key that is no header."""
    if key.startswith("HTTP_"):
        if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
            return None
        name = key[5:].replace("_", "-").title()
    elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        name = key.replace("_", "-").title()
    else:
        return None
    return name, is_secret_name(name)


def masked_request_headers(environ: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A request's headers from its WSGI environ, in order, secrets masked: one pass, no
    ``EnvironHeaders``, environ keys looked up in a dict (this runs on every API request)."""
    headers = []
    known = _ENVIRON_HEADERS
    for key, value in environ.items():
        try:
            header = known[key]
        except KeyError:
            header = _environ_header(key)
            if len(known) < _ENVIRON_HEADERS_LIMIT:
                known[key] = header
        if header is not None and (value or key.startswith("HTTP_")):
            name, secret = header
            shown = mask_header(name, value) if secret or _spaced(value) else value
            headers.append((name, shown))
    return headers


def bounded_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers an exchange keeps: in order, until ``MAX_RECORDED_HEADERS`` bytes; the
    rest only counted (``X-Emulator-Omitted: 3 headers, 180000 bytes``)."""
    budget = MAX_RECORDED_HEADERS
    for index, (name, value) in enumerate(headers):
        budget -= len(name) + len(value)
        if budget < 0:
            rest = headers[index:]
            size = sum(len(name) + len(value) for name, value in rest)
            return [*headers[:index], (OMITTED_HEADERS, f"{len(rest)} headers, {size} bytes")]
    return headers


def exchange_bytes(exchange: Exchange) -> int:
    """About what an exchange holds in memory, to bound a journal in bytes (each header
    counts its two strings' overhead too)."""
    size = 256 + len(exchange.path) + len(exchange.query)
    for body in (exchange.request_body, exchange.response_body):
        if not isinstance(body, int):
            size += len(body)
    for headers in (exchange.request_headers, exchange.response_headers or ()):
        for name, value in headers:
            size += len(name) + len(value) + 64
    return size


def kept_body(raw: bytes) -> bytes | int:
    """What an exchange keeps of a body: the bytes, or only their count when too large."""
    return len(raw) if len(raw) > MAX_RECORDED_BODY else raw


def recorded_body(raw: bytes | int, content_type: str | None) -> Any:
    """A body as the journal keeps it: parsed JSON when it parses and can be written back
    (nesting past 254 levels and integers beyond 64 bits are not), else text; None
    when empty. Whatever a client sent, the journal renders."""
    if isinstance(raw, int):
        return f"<{raw} bytes, not recorded>"
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    if content_type is not None and "json" in content_type:
        try:
            parsed = json.loads(text)  # exact integers of any size, unlike orjson
            orjson.dumps(parsed)
        except (ValueError, RecursionError, TypeError):  # TypeError: orjson.JSONEncodeError
            return text
        return parsed
    return text


def header_value(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """The first value of the header ``name``, in any case; None when it is absent."""
    wanted = name.lower()
    return next((value for key, value in headers if key.lower() == wanted), None)


def _content_type(headers: Iterable[tuple[str, str]]) -> str | None:
    return header_value(headers, "content-type")


def bulk_agent_ids(body: Any) -> list[str]:
    if not isinstance(body, dict) or not isinstance(body.get("agents"), list):
        return []
    return [
        entry["agent-id"]
        for entry in body["agents"]
        if isinstance(entry, dict) and isinstance(entry.get("agent-id"), str)
    ]


@dataclass(slots=True)
class Exchange:
    """One API request and its answer as recorded: raw, masked, not yet parsed."""

    method: str
    path: str
    query: str
    fault: str | None
    request_headers: list[tuple[str, str]]
    request_body: bytes | int
    started: float = field(default_factory=time.time)
    outcome: str = "answered"
    status: int | None = None
    duration_ms: float = 0.0
    response_headers: list[tuple[str, str]] | None = None
    response_body: bytes | int = b""
    id: int = 0
    size: int = 0
    """``exchange_bytes`` as it was recorded (set by ``Journal.record``)."""

    @property
    def tenant(self) -> str | None:
        return path_ids(self.path)[0]

    @property
    def agent(self) -> str | None:
        return path_ids(self.path)[1]

    def agents(self) -> list[str]:
        """The agent in the path, or every agent-id of a bulk body."""
        if self.agent is not None:
            return [self.agent]
        return bulk_agent_ids(recorded_body(self.request_body, _content_type(self.request_headers)))

    def to_json(self) -> dict[str, Any]:
        response = None
        if self.response_headers is not None:
            response = {
                "headers": dict(self.response_headers),
                "body": recorded_body(self.response_body, _content_type(self.response_headers)),
            }
        return {
            "id": self.id,
            "time": datetime.fromtimestamp(self.started, UTC).isoformat(timespec="milliseconds"),
            "method": self.method,
            "path": self.path,
            "query": masked_query(self.query),
            "tenant": self.tenant,
            "agent": self.agent,
            "agents": self.agents(),
            "fault": self.fault,
            "request": {
                "headers": dict(self.request_headers),
                "body": recorded_body(self.request_body, _content_type(self.request_headers)),
            },
            "status": self.status,
            "outcome": self.outcome,
            "duration-ms": round(self.duration_ms, 3),
            "response": response,
        }


@dataclass(frozen=True, slots=True)
class JournalFilter:
    """Which entries a read or a clear is about; every given field must match."""

    method: str | None = None
    path: str | None = None
    """A prefix of the path."""
    tenant: str | None = None
    agent: str | None = None
    """Matches the agent in the path and every agent-id of a bulk body."""
    status: int | None = None

    @classmethod
    def from_query(cls, args: Mapping[str, str]) -> JournalFilter:
        status = args.get("status")
        if status is not None and not (status.strip().isascii() and status.strip().isdigit()):
            raise InvalidRequest(f"status must be an HTTP status code, got '{status[:40]}'.")
        method = args.get("method")
        return cls(
            method=None if method is None else method.upper(),
            path=args.get("path"),
            tenant=args.get("tenant"),
            agent=args.get("agent"),
            status=None if status is None else int(status),
        )

    def accepts(self, exchange: Exchange) -> bool:
        return (
            (self.method is None or exchange.method == self.method)
            and (self.path is None or exchange.path.startswith(self.path))
            and (self.tenant is None or exchange.tenant == self.tenant)
            and (self.status is None or exchange.status == self.status)
            and (self.agent is None or self.agent in exchange.agents())
        )


class Recorder(Protocol):
    """A request journal: ``Journal`` in one process, ``SharedJournal`` (in
    ``mock_server.testdouble.shared``) across worker processes."""

    size: int

    def record(self, exchange: Exchange) -> None: ...

    def entries(self, where: JournalFilter | None = None) -> list[dict[str, Any]]: ...

    def clear(self, where: JournalFilter | None = None) -> int:
        """Drop the matching entries (all by default); returns how many went."""


class Journal:
    """The last ``size`` API exchanges, within ``max_bytes``; ids grow by one per request and
    are never reused."""

    def __init__(self, size: int = DEFAULT_JOURNAL_SIZE, max_bytes: int = JOURNAL_BYTES) -> None:
        if size < 1:
            raise ValueError(f"the journal size must be at least 1, got {size}")
        self.size = size
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: deque[Exchange] = deque()
        self._bytes = 0
        self._next = 1

    def record(self, exchange: Exchange) -> None:
        exchange.size = exchange_bytes(exchange)
        with self._lock:
            exchange.id = self._next
            self._entries.append(exchange)
            self._bytes += exchange.size
            self._next += 1
            while len(self._entries) > self.size or (
                self._bytes > self.max_bytes and len(self._entries) > 1
            ):
                self._bytes -= self._entries.popleft().size

    def entries(self, where: JournalFilter | None = None) -> list[dict[str, Any]]:
        chosen = where or JournalFilter()
        with self._lock:
            exchanges = list(self._entries)
        return [exchange.to_json() for exchange in exchanges if chosen.accepts(exchange)]

    def clear(self, where: JournalFilter | None = None) -> int:
        """Drop the matching entries (all by default); returns how many went."""
        chosen = where or JournalFilter()
        with self._lock:
            kept = [entry for entry in self._entries if not chosen.accepts(entry)]
            removed = len(self._entries) - len(kept)
            self._entries = deque(kept)
            self._bytes = sum(entry.size for entry in kept)
            return removed
