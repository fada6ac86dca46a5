"""A fake transport for the client: a ``requests`` adapter that answers from a script and
keeps what was sent, mounted on the client's session, so no server or socket is needed (the
property tests serve thousands of generated answers through it)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from support_client import make_client

from client import AgentStatusClient
from client.retry import NO_RETRY

API_URL = "http://vendor.test/api/v1"
TENANT = "acme01"


@dataclass(frozen=True)
class Reply:
    """One scripted answer: ``body`` bytes as given, or JSON for anything else; ``fail`` makes
    the exception raised instead of answering (a refused connection, a read timeout)."""

    status: int = 200
    body: Any = None
    content_type: str | None = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    fail: Callable[[], requests.RequestException] | None = None

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


class Stub(HTTPAdapter):
    """Answers from a script, in order (then ``default``), and keeps what was sent."""

    def __init__(self, replies: list[Reply], default: Reply | None = None) -> None:
        super().__init__()
        self.replies = list(replies)
        self.default = default
        self.seen: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        self.seen.append(request)
        reply = self.replies.pop(0) if self.replies else self.default
        assert reply is not None, f"unscripted request {request.method} {request.url}"
        if reply.fail is not None:
            raise reply.fail()
        headers = dict(reply.headers)
        if reply.content_type is not None:
            headers["Content-Type"] = reply.content_type
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(reply.payload()),
            headers=headers,
            status=reply.status,
            preload_content=False,
        )
        return self.build_response(request, raw)

    def bodies(self) -> list[Any]:
        return [json.loads(request.body or b"null") for request in self.seen]


@contextmanager
def served(*replies: Reply, **options: Any) -> Iterator[tuple[AgentStatusClient, Stub]]:
    """A client whose session is answered by ``replies`` (no retries unless ``retry`` given)."""
    stub = Stub(list(replies), options.pop("default", None))
    session = requests.Session()
    session.mount("http://", stub)
    options.setdefault("retry", NO_RETRY)
    options.setdefault("tenant", TENANT)
    with make_client(API_URL, session=session, **options) as api:
        yield api, stub
    session.close()
