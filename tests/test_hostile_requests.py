"""Generated hostile requests against every serving mode: no 5xx, no HTML, no hang, bounded memory.

Each example is one raw HTTP/1.1 exchange on its own connection: a method, a target built from
the API's and the control plane's paths with hostile ids and queries, many or huge headers,
credentials good and bad, bodies nested to the parser's limit, beyond 64-bit integers, over the
size limit, not UTF-8, and framed well or badly (Content-Length missing, short, long, not a
number, twice; chunks good, with extensions, malformed, unterminated). The servers are child
processes, so their memory is read apart from the test's.

``make test`` runs a few examples per mode; ``make fuzz`` runs ``AGENTSTATUS_FUZZ_EXAMPLES``.
What is allowed: any status below 500; a body that is Problem JSON (its ``status`` the answer's),
JSON, or the guide's XML 403; an empty body only where the HTTP layer (granian's parser, before
any application code) refuses what is not HTTP (400/414/431, ``docs/DECISIONS.md``).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from conftest import DEMO_TENANT, DEMO_TOKEN, DEMO_USERNAME, basic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support_serving import Served, resident_bytes, serve, serve_threaded

from mock_server.http.control import ADMIN_HEADER, ADMIN_ROOT
from schemas.wire import API_BASE, API_ROOT

MAX_EXAMPLES = int(os.environ.get("AGENTSTATUS_FUZZ_EXAMPLES", "40"))
ANSWER_WITHIN = 20.0
"""Seconds for a whole exchange; more is a hang (the slowest legitimate one is well under 1 s)."""
MEMORY_GROWTH_BOUND = 160 * 1024 * 1024
"""What the server may grow by over a run: the journal's 64 MiB cap, the largest body buffered
(1 MiB), per worker, and the allocator's slack."""
ADMIN_TOKEN = "fuzz-admin-token"
BOB = "agAQDqmvKiRbG4ekigNSmbbb"
AGENTS = f"{API_BASE}/tenants/{DEMO_TENANT}/agentstatus/agents"
GOOD_AUTH = basic(DEMO_USERNAME, DEMO_TOKEN)["Authorization"]
PROTOCOL_REFUSALS = {400, 414, 431}
BODY_TYPES = ("application/problem+json", "application/json", "application/xml", "text/xml")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def segment() -> st.SearchStrategy[str]:
    """An id as a hostile client spells it in a path: any text, percent-encoded or not."""
    text = st.text(min_size=0, max_size=40)
    return st.one_of(
        st.just(BOB),
        st.just(DEMO_TENANT),
        text.map(lambda value: quote(value, safe="")),
        text.map(lambda value: quote(value, safe="/%?#;")),
        st.sampled_from(["", ".", "..", "%00", "%FF%FE", "%ZZ", "a" * 5000, "%2F", "bulk"]),
    )


@st.composite
def targets(draw: st.DrawFn) -> str:
    template = draw(
        st.sampled_from(
            [
                "{base}/tenants/{a}/agentstatus/agents",
                "{base}/tenants/{t}/agentstatus/agents/{a}",
                "{base}/tenants/{t}/agentstatus/agents/bulk",
                "{api}{a}/tenants/{t}/agentstatus/agents",
                "{base}/tenants/{a}/agentstatus/agents/{b}",
                "{admin}/tenants/{a}",
                "{admin}/tenants/{t}/agents/{a}",
                "{admin}/tenants/{t}/reset",
                "{admin}/requests",
                "{admin}/health",
                "{admin}/{a}",
                "/{a}",
                "//{a}//{b}",
            ]
        )
    )
    path = template.format(
        api=API_ROOT,
        base=API_BASE,
        admin=ADMIN_ROOT,
        t=DEMO_TENANT,
        a=draw(segment()),
        b=draw(segment()),
    )
    query = draw(
        st.one_of(
            st.just(""),
            st.dictionaries(st.text(max_size=20), st.text(max_size=200), max_size=8).map(
                lambda pairs: "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs.items())
            ),
            st.sampled_from(["groupId=", "groupId=%FF", "a=" + "b" * 20000, "%", "&&&="]),
        )
    )
    return path + ("?" + query if query else "")


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def bodies() -> st.SearchStrategy[bytes]:
    set_body = {"agent-status": 5, "status-code-list-id": 801, "status-code-item-id": 1722}
    return st.one_of(
        st.just(b""),
        st.just(json.dumps(set_body).encode()),
        st.integers(1, 1100).map(nested),
        st.integers(1, 1100).map(lambda depth: b'{"agent-status": ' + nested(depth) + b"}"),
        st.integers(1, 150).map(
            lambda count: json.dumps({"agents": [{"agent-id": BOB, **set_body}] * count}).encode()
        ),
        st.just(b'{"agent-status": 1' + b"0" * 400 + b"}"),
        st.just(b'{"agent-status": NaN, "x": 1e999}'),
        st.integers(900_000, 2_200_000).map(lambda size: b'{"a": "' + b"x" * size + b'"}'),
        st.binary(max_size=2000),
        st.text(max_size=500).map(lambda text: json.dumps({"username": text}).encode()),
        st.just(b'{"agent-status": "\xff\xfe"}'),
    )


def framings() -> st.SearchStrategy[str]:
    return st.sampled_from(
        [
            *("length", "none", "short", "long", "not a number", "twice"),
            *("chunked", "extension", "bad chunk size", "unterminated"),
        ]
    )


def frame(framing: str, body: bytes) -> tuple[list[str], bytes]:
    """Headers and bytes that carry ``body`` as ``framing`` says."""
    size = len(body)
    if framing == "length":
        return [f"Content-Length: {size}"], body
    if framing == "none":
        return [], body
    if framing == "short":
        return [f"Content-Length: {max(size - 3, 0)}"], body
    if framing == "long":
        return [f"Content-Length: {size + 10}"], body
    if framing == "not a number":
        return ["Content-Length: \u00b2".encode().decode("latin-1")], body
    if framing == "twice":
        return [f"Content-Length: {size}", f"Content-Length: {size + 1}"], body
    chunked = ["Transfer-Encoding: chunked"]
    if framing in ("chunked", "extension"):
        extension = b";ext=1" if framing == "extension" else b""
        pieces = [body[at : at + 65536] for at in range(0, size, 65536)]
        data = b"".join(b"%x%s\r\n%s\r\n" % (len(p), extension, p) for p in pieces)
        return chunked, data + b"0\r\n\r\n"
    if framing == "bad chunk size":
        return chunked, b"ZZ\r\n" + body + b"\r\n0\r\n\r\n"
    return chunked, b"%x\r\n" % (size + 5) + body


INCOMPLETE = frozenset({"long", "unterminated"})
"""Framings whose body never ends: the client gives up (closes its side) and no answer is owed."""


@dataclass(frozen=True)
class Hostile:
    raw: bytes
    complete: bool

    def __repr__(self) -> str:
        """Short enough for Hypothesis to report: the head, and the size of the rest."""
        head, _, body = self.raw.partition(b"\r\n\r\n")
        return f"Hostile({head[:1500]!r} + {len(body)} body bytes, complete={self.complete})"


@st.composite
def requests_(draw: st.DrawFn) -> Hostile:
    method = draw(st.sampled_from(["GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS"]))
    headers = ["Host: fuzz", "Connection: close"]
    authorization = draw(
        st.one_of(
            st.none(),
            st.just(GOOD_AUTH),
            st.just(GOOD_AUTH.split()[1] + " Basic"),
            st.just("Basic " + "QUFB" * draw(st.integers(1, 4000))),
            st.text(max_size=100).map(lambda text: "Basic " + quote(text)),
        )
    )
    if authorization is not None:
        headers.append(f"Authorization: {authorization}")
    if draw(st.booleans()):
        headers.append(f"{ADMIN_HEADER}: {draw(st.sampled_from([ADMIN_TOKEN, '', 'wrong']))}")
    content_type = draw(
        st.sampled_from(
            ["application/json", "application/json; charset=utf-16", "text/plain", "", "a/b/c"]
        )
    )
    if content_type:
        headers.append(f"Content-Type: {content_type}")
    count = draw(st.integers(0, 120))
    size = draw(st.integers(0, 12000 if count < 10 else 300))
    headers += [f"X-Fuzz-{n}: {'v' * size}" for n in range(count)]
    if draw(st.booleans()):
        headers.append("X-Forwarded-Authorization: " + GOOD_AUTH)
    framing = draw(framings())
    framing_headers, data = frame(framing, draw(bodies()))
    head = f"{method} {draw(targets())} HTTP/1.1\r\n" + "\r\n".join(headers + framing_headers)
    raw = head.encode("latin-1", "replace") + b"\r\n\r\n" + data
    return Hostile(raw, framing not in INCOMPLETE)


def exchange(served: Served, hostile: Hostile) -> Answer | None:
    """Send the request (the answer read meanwhile, as a client does) and read the answer. A
    request whose body never ends is followed by closing the client's side, as a client that
    gives up does; None when no byte came back.

    A complete request is not followed by a half-close: granian (hyper) closes a connection
    whose client half-closed before the answer was written (docs/DECISIONS.md)."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=ANSWER_WITHIN) as sock:

        def send() -> None:
            try:
                sock.sendall(hostile.raw)
                if not hostile.complete:
                    sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the server answered and closed before it read everything

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        deadline = time.monotonic() + ANSWER_WITHIN
        received = b""
        try:
            head_only = hostile.raw.startswith(b"HEAD ")
            while not answered(received, head_only) and (chunk := sock.recv(1 << 16)):
                received += chunk
                assert time.monotonic() < deadline, "no end of answer within the deadline"
        except ConnectionResetError:
            pass  # after a whole answer, the close of a connection with unread bytes
    sender.join(ANSWER_WITHIN)
    if not received:
        return None
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(lines[0].split()[1]), headers, body)


def answered(received: bytes, head_only: bool) -> bool:
    """The whole answer is in: its headers and, but for a HEAD, a 204 or a 304, as many bytes
    as its Content-Length says (read as clients read it, not to the connection's end)."""
    head, found, body = received.partition(b"\r\n\r\n")
    if not found:
        return False
    if head_only or head.split(b" ", 2)[1] in (b"204", b"304"):
        return True  # an answer that has no body, whatever its headers say
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def check(hostile: Hostile, answer: Answer | None) -> None:
    shown = hostile.raw[:200]
    if answer is None:
        assert not hostile.complete, f"closed without an answer: {shown!r}"
        return
    assert answer.status < 500, (answer, shown)
    assert b"<html" not in answer.body.lower() and b"<!doctype" not in answer.body.lower()
    media_type = answer.headers.get("content-type", "").split(";")[0]
    if not answer.body:
        assert media_type in BODY_TYPES or answer.status in PROTOCOL_REFUSALS | {200, 204}, (
            answer,
            shown,
        )
        return
    assert media_type in BODY_TYPES, (answer.status, answer.headers, shown)
    if media_type == "application/problem+json":
        assert json.loads(answer.body)["status"] == answer.status


@pytest.fixture(scope="module", params=["threaded", "granian", "granian, 2 workers, SQLite"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("hostile")
    if request.param == "threaded":
        with serve_threaded(folder) as served:
            yield served
    elif request.param == "granian":
        with serve(folder, "--admin-token", ADMIN_TOKEN) as served:
            yield served
    else:
        state = str(folder / "state.sqlite")
        options = ("--admin-token", ADMIN_TOKEN, "--workers", "2", "--state", state)
        with serve(folder, *options) as served:
            yield served


def test_no_generated_request_breaks_a_serving_mode(server: Served) -> None:
    warm_up = basic(DEMO_USERNAME, DEMO_TOKEN)["Authorization"]
    for _ in range(20):
        plain = Hostile(
            f"GET {AGENTS} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            f"Authorization: {warm_up}\r\n\r\n".encode(),
            complete=True,
        )
        check(plain, exchange(server, plain))
    before = resident_bytes(server)

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(hostile=requests_())
    def one_exchange(hostile: Hostile) -> None:
        check(hostile, exchange(server, hostile))

    one_exchange()
    grown = resident_bytes(server) - before
    print(f"{MAX_EXAMPLES} hostile requests: the server grew by {grown / 2**20:.1f} MiB")
    assert grown < MEMORY_GROWTH_BOUND, f"the server grew by {grown / 2**20:.0f} MiB"
    raw = f"GET {ADMIN_ROOT}/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    health = exchange(server, Hostile(raw.encode(), complete=True))
    assert health is not None and health.status == 200
