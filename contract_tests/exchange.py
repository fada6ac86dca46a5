"""One call to the target and its answer, as every check and observer sees it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

EXCERPT_CHARS = 300


@dataclass(frozen=True)
class Exchange:
    """One call and its answer (no request headers kept, so no credentials)."""

    method: str
    path: str
    """Below the API root, e.g. ``/tenants/acme/agentstatus/agents/ag1``."""
    operation: str | None
    status: int
    headers: Mapping[str, str]
    """Lower-case names."""
    body: bytes

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def parsed(self) -> Any:
        """The JSON body, or None when there is none or it is not JSON."""
        try:
            return json.loads(self.body) if self.body.strip() else None
        except ValueError:
            return None

    def describe(self) -> str:
        """``PUT /tenants/…/agents/x -> 400 application/problem+json: {...}`` for messages."""
        excerpt = " ".join(self.text.split())[:EXCERPT_CHARS]
        return (
            f"{self.method} {self.path} -> {self.status} {self.media_type or '(none)'}: {excerpt}"
        )
