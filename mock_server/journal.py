"""The request journal: what every API request asked and what it was answered, newest last.

A bounded ring buffer (oldest entries fall out), so a long-running emulator stays small.
Credentials never enter it: ``Authorization``-like headers keep only their scheme
(``Basic ***``). Entries are plain JSON-ready dicts, the shape ``GET /__admin/requests`` shows.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mock_server.errors import InvalidRequest

DEFAULT_JOURNAL_SIZE = 1000
MAX_RECORDED_BODY = 64 * 1024
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-admin-token"})
MASK = "***"


def mask_header(name: str, value: str) -> str:
    """The value to show for a header: secrets keep only their scheme, e.g. ``Basic ***``."""
    if name.lower() not in SECRET_HEADERS:
        return value
    scheme, space, _ = value.strip().partition(" ")
    return f"{scheme} {MASK}" if space and name.lower().endswith("authorization") else MASK


def recorded_body(raw: bytes, content_type: str | None) -> Any:
    """A body as the journal keeps it: parsed JSON when it parses, else text; None when empty."""
    if not raw:
        return None
    if len(raw) > MAX_RECORDED_BODY:
        return f"<{len(raw)} bytes, not recorded>"
    text = raw.decode("utf-8", errors="replace")
    if content_type is not None and "json" in content_type:
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


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
        if status is not None and not status.strip().isdigit():
            raise InvalidRequest(f"status must be an HTTP status code, got '{status[:40]}'.")
        method = args.get("method")
        return cls(
            method=None if method is None else method.upper(),
            path=args.get("path"),
            tenant=args.get("tenant"),
            agent=args.get("agent"),
            status=None if status is None else int(status),
        )

    def accepts(self, entry: Mapping[str, Any]) -> bool:
        return (
            (self.method is None or entry["method"] == self.method)
            and (self.path is None or str(entry["path"]).startswith(self.path))
            and (self.tenant is None or entry["tenant"] == self.tenant)
            and (self.agent is None or self.agent in entry["agents"])
            and (self.status is None or entry["status"] == self.status)
        )


class Journal:
    """The last ``size`` API exchanges; ids grow by one per request and are never reused."""

    def __init__(self, size: int = DEFAULT_JOURNAL_SIZE) -> None:
        if size < 1:
            raise ValueError(f"the journal size must be at least 1, got {size}")
        self.size = size
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)
        self._next = 1

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._entries.append({"id": self._next, **entry})
            self._next += 1

    def entries(self, where: JournalFilter | None = None) -> list[dict[str, Any]]:
        chosen = where or JournalFilter()
        with self._lock:
            return [entry for entry in self._entries if chosen.accepts(entry)]

    def clear(self, where: JournalFilter | None = None) -> int:
        """Drop the matching entries (all by default); returns how many went."""
        chosen = where or JournalFilter()
        with self._lock:
            kept = [entry for entry in self._entries if not chosen.accepts(entry)]
            removed = len(self._entries) - len(kept)
            self._entries = deque(kept, maxlen=self.size)
            return removed
