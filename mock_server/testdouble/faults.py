"""Injected faults: definitions posted to ``/__admin/faults`` and the choice of which one applies.

A fault has a ``match`` (method, path, tenant, agent; all optional), an optional
``latency-ms``, an optional ``action`` and a schedule (``times``, ``probability``, ``seed``).
Paths match as shell-style globs (``fnmatch``: ``*`` also crosses ``/``) or, with
``path-regex``, as a regular expression (RE2 syntax, linear time) that must match the whole path.
The first active fault that matches a request applies, and only that one, so a list of
faults reads top to bottom like a script. Probabilities draw from one ``random.Random`` per
fault, seeded from its definition (default 0), so the same requests fail on every run.
No Flask here: the middleware in ``mock_server.testdouble.middleware`` asks ``select`` per request.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Protocol

import re2

from mock_server.core.errors import ApiError, InvalidRequest, excerpt
from schemas.wire import MAX_SAFE_INTEGER, integral, path_ids

ACTION_TYPES = ("respond", "forbidden-xml", "drop", "malformed")
MAX_LATENCY_MS = 60_000
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""An HTTP header name: an RFC 9110 token."""
FAULT_FIELDS = {"match", "latency-ms", "action", "times", "probability", "seed"}
MATCH_FIELDS = {"method", "path", "path-regex", "tenant", "agent"}
ACTION_FIELDS = {
    "respond": {"type", "status", "body", "headers", "content-type"},
    "forbidden-xml": {"type"},
    "drop": {"type"},
    "malformed": {"type"},
}


class FaultNotFound(ApiError):
    """404 on the control plane: no fault by that id."""

    status = 404

    def __init__(self, fault_id: str) -> None:
        super().__init__(f"The fault does not exist: '{fault_id}'.")


@dataclass(frozen=True, slots=True)
class Target:
    """What a fault can match on: the request's method and path, and the ids in the path."""

    method: str
    path: str
    tenant: str | None
    agent: str | None


@dataclass(frozen=True, slots=True)
class Match:
    method: str | None = None
    path: str | None = None
    path_regex: Any = None
    """An RE2 pattern (``_linear_regex``), matched against the whole path."""
    tenant: str | None = None
    agent: str | None = None

    def accepts(self, target: Target) -> bool:
        return (
            (self.method is None or self.method == target.method)
            and (self.path is None or fnmatchcase(target.path, self.path))
            and (self.path_regex is None or self.path_regex.fullmatch(target.path) is not None)
            and (self.tenant is None or self.tenant == target.tenant)
            and (self.agent is None or self.agent == target.agent)
        )


@dataclass(slots=True)
class Fault:
    """One definition and its live counters; ``remaining`` None means it never runs out."""

    id: str
    definition: dict[str, Any]
    match: Match
    latency_ms: int
    action: dict[str, Any] | None
    remaining: int | None
    probability: float
    rng: random.Random = field(repr=False)
    hits: int = 0

    @property
    def active(self) -> bool:
        return self.remaining is None or self.remaining > 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **self.definition,
            "hits": self.hits,
            "remaining": self.remaining,
            "active": self.active,
        }


def _unknown_fields(document: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(document) - allowed)
    if unknown:
        raise InvalidRequest(
            f"{where}{unknown[0]} is not a fault field; known fields: {', '.join(sorted(allowed))}."
        )


def _optional_text(document: dict[str, Any], name: str, where: str) -> str | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{where}{name} must be a non-empty string, got {excerpt(value)}.")
    return value


def _integer(value: object, name: str, low: int, high: int = MAX_SAFE_INTEGER) -> int:
    """An integral JSON number (2 or 2.0, as the API reads numbers) within ``low``-``high``;
    ``high`` is at most ``MAX_SAFE_INTEGER``, the largest every JSON parser holds exactly."""
    number = integral(value)
    if number is None or number < low:
        raise InvalidRequest(f"{name} must be an integer of at least {low}, got {excerpt(value)}.")
    if number > high:
        raise InvalidRequest(f"{name} must be at most {high}, got {excerpt(value)}.")
    return number


def _linear_regex(text: str) -> Any:
    """``text`` compiled by RE2, whose matching time grows linearly with the path: a pattern
    such as ``(/?[a-z0-9]+)*`` cannot make a request take seconds (Python's ``re``
    backtracks). RE2 has no backreferences or lookaround; a pattern using them is a 400."""
    try:
        return re2.compile(text, _RE2_OPTIONS)
    except re2.error as error:
        reason = (
            error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else error
        )
        raise InvalidRequest(
            f"match.path-regex is not a regular expression the emulator runs (RE2 syntax: no "
            f"backreferences or lookaround): {excerpt(reason, 120)}."
        ) from None


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is the client's 400, not a server log line


def _parse_match(raw: object) -> Match:
    if raw is None:
        return Match()
    if not isinstance(raw, dict):
        raise InvalidRequest(f"match must be an object, got {excerpt(raw)}.")
    _unknown_fields(raw, MATCH_FIELDS, "match.")
    if "path" in raw and "path-regex" in raw:
        raise InvalidRequest("match.path and match.path-regex exclude each other; give one.")
    method = _optional_text(raw, "method", "match.")
    regex_text = _optional_text(raw, "path-regex", "match.")
    regex = None if regex_text is None else _linear_regex(regex_text)
    return Match(
        method=None if method is None else method.upper(),
        path=_optional_text(raw, "path", "match."),
        path_regex=regex,
        tenant=_optional_text(raw, "tenant", "match."),
        agent=_optional_text(raw, "agent", "match."),
    )


def _parse_action(raw: object) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidRequest(f"action must be an object, got {excerpt(raw)}.")
    kind = raw.get("type")
    if kind not in ACTION_TYPES:
        raise InvalidRequest(
            f"action.type must be one of {', '.join(ACTION_TYPES)}, got {excerpt(kind)}."
        )
    _unknown_fields(raw, ACTION_FIELDS[kind], "action.")
    action = dict(raw)
    if kind == "respond":
        action["status"] = _integer(raw.get("status"), "action.status", 100, 599)
        headers = raw.get("headers", {})
        if not isinstance(headers, dict) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in headers.items()
        ):
            raise InvalidRequest("action.headers must be an object of string names to strings.")
        for name, value in headers.items():
            if not HEADER_NAME.fullmatch(name):
                raise InvalidRequest(f"action.headers: {excerpt(name)} is not a valid header name.")
            _header_value(value, f"action.headers.{name}")
        _optional_text(raw, "content-type", "action.")
        if "content-type" in raw:
            _header_value(raw["content-type"], "action.content-type")
    return action


def _header_value(value: str, where: str) -> None:
    """Refuse what no HTTP header may carry (CR, LF and other controls) before it is stored."""
    if any((ord(char) < 32 and char != "\t") or ord(char) == 127 for char in value):
        raise InvalidRequest(f"{where} must not contain control characters such as CR or LF.")


def parse_fault(fault_id: str, raw: object) -> Fault:
    """A fault from its JSON definition, or a 400 naming the first field that is wrong."""
    if not isinstance(raw, dict):
        raise InvalidRequest(f"The fault must be a JSON object, got {excerpt(raw)}.")
    _unknown_fields(raw, FAULT_FIELDS, "")
    match = _parse_match(raw.get("match"))
    latency = _integer(raw.get("latency-ms", 0), "latency-ms", 0, MAX_LATENCY_MS)
    action = _parse_action(raw.get("action"))
    if action is None and latency == 0:
        raise InvalidRequest("action is required unless latency-ms is given.")
    definition = dict(raw)
    if action is not None:
        definition["action"] = action
    if "latency-ms" in raw:
        definition["latency-ms"] = latency
    times = raw.get("times")
    remaining = None if times is None else _integer(times, "times", 1)
    if remaining is not None:
        definition["times"] = remaining
    probability = raw.get("probability", 1)
    if (
        isinstance(probability, bool)
        or not isinstance(probability, int | float)
        or not 0 < probability <= 1
    ):
        raise InvalidRequest(
            f"probability must be a number above 0 and at most 1, got {excerpt(probability)}."
        )
    seed = _integer(raw.get("seed", 0), "seed", -MAX_SAFE_INTEGER)
    if "seed" in raw:
        definition["seed"] = seed
    return Fault(
        id=fault_id,
        definition=definition,
        match=match,
        latency_ms=latency,
        action=action,
        remaining=remaining,
        probability=float(probability),
        rng=random.Random(seed),
    )


class Faults(Protocol):
    """The faults of an emulator: ``FaultRegistry`` in one process, ``SharedFaults`` (in
    ``mock_server.testdouble.shared``) across worker processes."""

    def add(self, definition: object) -> Fault: ...

    def all(self) -> list[dict[str, Any]]: ...

    def get(self, fault_id: str) -> dict[str, Any]: ...

    def delete(self, fault_id: str) -> None: ...

    def clear(self) -> None: ...

    def select(self, method: str, path: str) -> Fault | None:
        """The fault to apply to this request, counted as a hit; None lets it through."""


class FaultRegistry:
    """The faults of one emulator, in creation order; safe to use from many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, Fault] = {}
        self._next = 1

    def add(self, definition: object) -> Fault:
        with self._lock:
            fault = parse_fault(f"f{self._next}", definition)
            self._next += 1
            self._faults[fault.id] = fault
            return fault

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.to_json() for fault in self._faults.values()]

    def get(self, fault_id: str) -> dict[str, Any]:
        with self._lock:
            fault = self._faults.get(fault_id)
            if fault is None:
                raise FaultNotFound(fault_id)
            return fault.to_json()

    def delete(self, fault_id: str) -> None:
        with self._lock:
            if self._faults.pop(fault_id, None) is None:
                raise FaultNotFound(fault_id)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def select(self, method: str, path: str) -> Fault | None:
        """The fault to apply to this request, counted as a hit; None lets it through."""
        if not self._faults:  # the usual case, decided without the lock
            return None
        target = Target(method, path, *path_ids(path))
        # Matching runs outside the lock: a slow pattern delays only its own request.
        candidates = [fault for fault in list(self._faults.values()) if fault.match.accepts(target)]
        with self._lock:
            for fault in candidates:
                if not fault.active or self._faults.get(fault.id) is not fault:
                    continue
                if fault.probability < 1 and fault.rng.random() >= fault.probability:
                    continue
                fault.hits += 1
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
        return None
