"""One call to the target and its answer, as every check and observer sees it, and the
failure of a check about it (raised, never ``assert``ed, so ``python -O`` keeps every check)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mock_server.testdouble.journal import MASK

EXCERPT_CHARS = 300


class CheckFailed(AssertionError):
    """The target did not do what a check needs of it; the message shows the answer."""


@dataclass(frozen=True)
class Answer:
    """One call and its answer (no request headers kept, so no credentials). The server's
    journal keeps its own record of each exchange (``mock_server.testdouble.journal``)."""

    method: str
    path: str
    """Below the API root, e.g. ``/tenants/acme/agentstatus/agents/ag1``."""
    operation: str | None
    status: int
    headers: Mapping[str, str] = field(repr=False)
    """Lower-case names."""
    body: bytes = field(repr=False)

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


class Scrubber:
    """Blanks secrets out of whatever a target answers, before any check, message or report
    sees it: each secret as given and JSON-escaped, in any letter case (a service may echo the
    Authorization header, or its base64, into a body)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms = {form for secret in secrets for form in (secret, json.dumps(secret)[1:-1])}
        ordered = sorted(forms, key=len, reverse=True)
        alternatives = "|".join(re.escape(form) for form in ordered)
        self._text = re.compile(alternatives, re.IGNORECASE) if ordered else None
        self._bytes = re.compile(alternatives.encode(), re.IGNORECASE) if ordered else None

    def text(self, value: str) -> str:
        return value if self._text is None else self._text.sub(MASK, value)

    def bytes(self, value: bytes) -> bytes:
        return value if self._bytes is None else self._bytes.sub(MASK.encode(), value)

    def answer(self, answer: Answer) -> Answer:
        """The answer with its path, every header value and its body scrubbed."""
        return Answer(
            answer.method,
            self.text(answer.path),
            answer.operation,
            answer.status,
            {name: self.text(value) for name, value in answer.headers.items()},
            self.bytes(answer.body),
        )
