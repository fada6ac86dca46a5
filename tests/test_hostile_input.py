"""What a hostile or careless client sends is refused with a Problem, never a 500 (issue 14).

Bodies nested as deep as the JSON parser allows, integers beyond 64 bits and huge values
reach the error messages and the journal; both must stay bounded and render.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import json
import socket
import threading
import tracemalloc
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from conftest import DEMO_TENANT, DEMO_TOKEN, DEMO_USERNAME, api_path, basic
from flask.testing import FlaskClient
from support_serving import serve

from mock_server.app import create_app
from mock_server.core.errors import excerpt
from mock_server.http.control import ADMIN_ROOT
from mock_server.live.recording import scrub, secrets_of
from mock_server.serving.threaded import start_in_thread
from mock_server.testdouble.journal import MAX_RECORDED_QUERY, Exchange, Journal

AUTH = basic(DEMO_USERNAME, DEMO_TOKEN)
BOB = "agAQDqmvKiRbG4ekigNSmbbb"
DEPTH = 1000
"""Under orjson's limit (1024), so the body parses and the value reaches the rules."""


def nested(depth: int = DEPTH) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_object(field: str) -> bytes:
    return b'{"' + field.encode() + b'": ' + nested() + b"}"


@pytest.fixture
def client() -> FlaskClient:
    return create_app().test_client()


JSON = {"Content-Type": "application/json"}
TARGETS = [
    ("PUT", api_path(suffix=f"/{BOB}"), "agent-status", AUTH),
    ("PUT", api_path(suffix=f"/{BOB}"), "status-code-item-id", AUTH),
    ("PUT", api_path(suffix="/bulk"), "agents", AUTH),
    ("PUT", f"{ADMIN_ROOT}/tenants/{DEMO_TENANT}/agents/{BOB}", "agent-status", {}),
    ("PUT", f"{ADMIN_ROOT}/tenants/newtenant", "username", {}),
    ("PATCH", f"{ADMIN_ROOT}/tenants/{DEMO_TENANT}", "api-enabled", {}),
    ("POST", f"{ADMIN_ROOT}/faults", "match", {}),
    ("POST", f"{ADMIN_ROOT}/faults", "times", {}),
]


@pytest.mark.parametrize(("method", "path", "field", "auth"), TARGETS)
def test_a_deeply_nested_value_is_a_bounded_400(
    client: FlaskClient, method: str, path: str, field: str, auth: dict[str, str]
) -> None:
    reply = client.open(path, method=method, data=deep_object(field), headers={**auth, **JSON})
    assert reply.status_code == 400, reply.get_data(as_text=True)[:300]
    assert len(reply.get_data()) < 2000
    assert reply.json is not None and reply.json["status"] == 400


def test_the_journal_renders_what_it_stored(client: FlaskClient) -> None:
    """Unauthenticated requests with bodies no serialiser takes back: still listed."""
    bodies = [nested(300), b'{"agent-status": 123456789012345678901234567890}', nested(DEPTH)]
    for body in bodies:
        client.put(api_path(suffix=f"/{BOB}"), data=body, headers=JSON)
    journal = client.get(f"{ADMIN_ROOT}/requests")
    assert journal.status_code == 200
    entries = journal.json["requests"]
    assert len(entries) == len(bodies)
    for entry, body in zip(entries, bodies, strict=True):
        assert entry["request"]["body"] == body.decode()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", "'abc'"),
        ({"a": [1, 2.5, None, True]}, "{'a': [1, 2.5, None, True]}"),
        ("x" * 100, "'" + "x" * 36 + "..."),
        (10**5000, "<an integer of 16610 bits>"),
    ],
    ids=["text", "object", "long text", "huge integer"],
)
def test_excerpt_shows_the_start_of_any_value(value: object, expected: str) -> None:
    assert excerpt(value) == expected


def test_excerpt_is_bounded_for_any_depth_and_size() -> None:
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    assert excerpt(deep) == "[" * 37 + "..."
    wide = {str(number): "v" * 1000 for number in range(10_000)}
    assert len(excerpt(wide)) == 40


def test_an_exchange_keeps_a_bounded_share_of_its_headers(client: FlaskClient) -> None:
    """90 headers of 60 KB each, unauthenticated: the journal keeps 16 KiB and a count."""
    headers = {f"X-Padding-{number}": "p" * 60_000 for number in range(90)}
    client.get(api_path(), headers=headers, query_string={"q": "x" * 20_000})
    (entry,) = client.get(f"{ADMIN_ROOT}/requests").json["requests"]
    kept = entry["request"]["headers"]
    assert sum(len(name) + len(value) for name, value in kept.items()) < 17 * 1024 + 100
    assert kept["X-Emulator-Omitted"].endswith("bytes")
    assert sum(len(value) for value in entry["query"]["q"]) <= MAX_RECORDED_QUERY


def test_the_journal_is_bounded_in_bytes_and_keeps_the_newest() -> None:
    journal = Journal(size=1000, max_bytes=1024 * 1024)
    for number in range(100):
        journal.record(
            Exchange("PUT", f"/api/v1/x/{number}", "", None, [], b"b" * 60_000, status=200)
        )
    entries = journal.entries()
    assert 10 <= len(entries) <= 17
    assert entries[-1]["id"] == 100
    assert [entry["id"] for entry in entries] == list(range(101 - len(entries), 101))


def test_made_up_usernames_are_not_kept(client: FlaskClient) -> None:
    """2000 requests with 48 KB usernames once added 83 MB to the credentials cache."""

    def unknown(number: int) -> dict[str, str]:
        return basic(f"{number:06d}" + "u" * 48_000, "token")

    def send(numbers: range) -> None:
        for number in numbers:
            assert client.get(api_path(), headers=unknown(number)).status_code == 401
            client.delete(f"{ADMIN_ROOT}/requests")
        gc.collect()

    tracemalloc.start()
    try:
        send(range(50))  # warm: whatever is allocated once
        before = tracemalloc.get_traced_memory()[0]
        send(range(50, 350))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 2 * 1024 * 1024, f"{grown} bytes kept after 300 unknown usernames"


@pytest.mark.parametrize(
    "path",
    [
        "/api//v1/tenants/acmecorp01/agentstatus/agents",
        "/api/v1/tenants/acmecorp01/agentstatus//agents",
        f"/api/v1/tenants/acmecorp01/agentstatus/agents//{BOB}",
        "/__admin//tenants",
    ],
)
def test_an_empty_path_segment_is_a_404_problem(client: FlaskClient, path: str) -> None:
    reply = client.get(path, headers=AUTH)
    assert reply.status_code == 404
    assert reply.mimetype == "application/problem+json"
    assert "Location" not in reply.headers


BAD_FRAMING = {
    "superscript length": b"Content-Length: \xc2\xb2\r\n\r\n{}",
    "chunk size ZZ": b"Transfer-Encoding: chunked\r\n\r\nZZ\r\nab\r\n0\r\n\r\n",
    "negative chunk": b"Transfer-Encoding: chunked\r\n\r\n-5\r\nab\r\n0\r\n\r\n",
    "chunk without CRLF": b"Transfer-Encoding: chunked\r\n\r\n2\r\nabXX0\r\n\r\n",
}


@pytest.mark.parametrize("framing", BAD_FRAMING.values(), ids=BAD_FRAMING.keys())
@pytest.mark.parametrize(
    "path",
    [api_path(suffix=f"/{BOB}"), f"{ADMIN_ROOT}/tenants/{DEMO_TENANT}/agents/{BOB}"],
    ids=["API", "control plane"],
)
def test_bad_framing_on_the_threaded_server_is_a_400_problem(framing: bytes, path: str) -> None:
    """The in-thread server (fixtures, the pytest plugin) reads bodies in the middleware,
    outside Flask's error handling: a body it cannot read was a 500 HTML page."""
    with start_in_thread(create_app()) as server:
        head = (
            f"PUT {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            f"Authorization: {AUTH['Authorization']}\r\nContent-Type: application/json\r\n"
        )
        with socket.create_connection((server.host, server.port), timeout=10) as connection:
            connection.sendall(head.encode() + framing)
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"400", answer[:300]
    assert b"application/problem+json" in rest.split(b"\r\n\r\n")[0].lower()
    assert b"<html" not in answer.lower()


def test_a_backtracking_pattern_cannot_stall_a_request(client: FlaskClient) -> None:
    """``(/?[a-z0-9]+)*`` took seconds per unauthenticated request under Python's ``re``,
    holding the fault registry's lock; RE2 matches in linear time."""
    fault = {"match": {"path-regex": "(/?[a-z0-9]+)*"}, "action": {"type": "drop"}}
    assert client.post(f"{ADMIN_ROOT}/faults", json=fault).status_code == 201
    for _ in range(20):
        assert client.get(api_path(suffix="/" + "a" * 40 + "!")).status_code == 401
    assert client.get(f"{ADMIN_ROOT}/faults").json["faults"][0]["hits"] == 0


def test_a_pattern_re2_cannot_run_is_a_400_naming_it(client: FlaskClient) -> None:
    fault = {"match": {"path-regex": "(a)\\1"}, "action": {"type": "drop"}}
    refused = client.post(f"{ADMIN_ROOT}/faults", json=fault)
    assert refused.status_code == 400
    assert "RE2 syntax" in refused.json["detail"] and "\\1" in refused.json["detail"]


@pytest.mark.parametrize(
    "path",
    [f"{ADMIN_ROOT}/tenants/ab%0A", f"{ADMIN_ROOT}/tenants/{DEMO_TENANT}/agents/ag1%0A"],
    ids=["tenant", "agent"],
)
def test_an_id_with_a_trailing_newline_is_refused(client: FlaskClient, path: str) -> None:
    """The schema's ``^...$`` let Python's ``$`` match before a final newline."""
    document = {"username": "newuser", "token": "newtoken", "agents": []}
    if "/agents/" in path:
        document = {"agent-status": 1, "group-id": 100}
    reply = client.put(path, json=document)
    assert reply.status_code == 400, reply.get_data(as_text=True)
    assert "does not match" in reply.json["detail"]
    assert not any("\n" in tenant for tenant in client.get(f"{ADMIN_ROOT}/tenants").json["tenants"])


def test_a_tenant_cannot_take_another_tenants_username(client: FlaskClient) -> None:
    """Fixture files refused it; the control plane let it through, and the first tenant's own
    credentials then got 403."""
    copy = {"username": DEMO_USERNAME, "token": DEMO_TOKEN, "agents": []}
    refused = client.put(f"{ADMIN_ROOT}/tenants/impostor01", json=copy)
    assert refused.status_code == 400
    assert "is used by another tenant" in refused.json["detail"]
    assert client.get(api_path(), headers=AUTH).status_code == 200
    own = client.put(f"{ADMIN_ROOT}/tenants/{DEMO_TENANT}", json=copy)
    assert own.status_code == 200  # a tenant keeps its own username when replaced


SECRET_TOKEN = "s3cr3t-t0ken+/="
CREDENTIALS = base64.b64encode(f"{DEMO_USERNAME}:{SECRET_TOKEN}".encode()).decode()


def test_the_journal_masks_secrets_by_what_they_are(client: FlaskClient) -> None:
    headers = {
        "X-Forwarded-Authorization": f"Basic {CREDENTIALS}",
        "Authorization": f"{CREDENTIALS} Basic",
        "X-Api-Key": SECRET_TOKEN,
        "X-Custom": f"Bearer {SECRET_TOKEN}",
    }
    client.get(api_path(), headers=headers, query_string={"x-api-key": SECRET_TOKEN, "n": "1"})
    (entry,) = client.get(f"{ADMIN_ROOT}/requests").json["requests"]
    shown = entry["request"]["headers"]
    assert shown["X-Forwarded-Authorization"] == "Basic ***"
    assert shown["Authorization"] == "***"
    assert shown["X-Api-Key"] == "***"
    assert shown["X-Custom"] == "Bearer ***"
    assert entry["query"] == {"x-api-key": ["***"], "n": ["1"]}
    text = json.dumps(entry)
    assert SECRET_TOKEN not in text and CREDENTIALS not in text


def test_a_recording_scrubs_secrets_as_a_url_carries_them() -> None:
    secrets = secrets_of([("Authorization", f"Basic {CREDENTIALS}")])
    query = f"token={quote(SECRET_TOKEN, safe='')}&auth={quote(CREDENTIALS, safe='')}"
    scrubbed = scrub(query, secrets)
    assert quote(SECRET_TOKEN, safe="") not in scrubbed
    assert quote(CREDENTIALS, safe="") not in scrubbed
    assert scrubbed == "token=***&auth=***"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"{ADMIN_ROOT}/no-such-route"),
        ("GET", f"{ADMIN_ROOT}/tenants/{DEMO_TENANT}/no-such-route"),
        ("DELETE", f"{ADMIN_ROOT}/reset"),
        ("POST", f"{ADMIN_ROOT}/health"),
        ("GET", f"{ADMIN_ROOT}/"),
    ],
)
def test_the_admin_token_is_checked_before_the_route_map_answers(method: str, path: str) -> None:
    """With a token set, a caller without it learns nothing of the control plane's routes:
    an unknown path or method is the same 403 as a known one."""
    client = create_app(admin_token="s3cret").test_client()
    refused = client.open(path, method=method)
    assert refused.status_code == 403
    assert refused.json is not None and refused.json["title"] == "Forbidden"
    answered = client.open(path, method=method, headers={"X-Admin-Token": "s3cret"})
    assert answered.status_code in (404, 405)
    assert answered.mimetype == "application/problem+json"


def test_only_health_and_the_published_admin_document_are_open() -> None:
    client = create_app(admin_token="s3cret").test_client()
    assert client.get(f"{ADMIN_ROOT}/health").status_code == 200
    assert client.get(f"{ADMIN_ROOT}/openapi.json").status_code == 200
    assert client.get(f"{ADMIN_ROOT}/requests").status_code == 403


@pytest.fixture(scope="module", params=["threaded", "granian"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int]]:
    """Both serving modes: the in-thread server (fixtures, the plugin) and ``serve``'s."""
    if request.param == "threaded":
        with start_in_thread(create_app()) as server:
            yield server.host, server.port
    else:
        with serve(tmp_path_factory.mktemp("granian")) as process:
            yield "127.0.0.1", process.port


def exchange(address: tuple[str, int], head: str, body: bytes) -> tuple[int, bytes, bytes]:
    """One raw request on its own connection, the answer read while it is sent and by its
    Content-Length (as curl does: a server may answer before the body is all sent)."""
    with socket.create_connection(address, timeout=30) as connection:

        def send() -> None:
            with contextlib.suppress(OSError):
                connection.sendall(head.encode() + body)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        reader = connection.makefile("rb")
        status_line = reader.readline()
        headers = b"".join(iter(reader.readline, b"\r\n")).lower()
        length = int(headers.split(b"content-length:")[1].split(b"\r\n")[0])
        answer = reader.read(length)
    sender.join(timeout=30)
    return int(status_line.split()[1]), headers, answer


def chunked(payload: bytes, size: int = 65536) -> bytes:
    pieces = [payload[at : at + size] for at in range(0, len(payload), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


BIG = b'{"username": "' + b"a" * 5_000_000 + b'"}'


@pytest.mark.parametrize(
    "path",
    [f"{ADMIN_ROOT}/tenants/newtenant", api_path(suffix=f"/{BOB}")],
    ids=["control plane", "API"],
)
def test_a_chunked_body_over_the_limit_is_413_in_every_mode(
    served: tuple[str, int], path: str
) -> None:
    """A 5 MB body sent in chunks (no Content-Length) is as too large as a declared one."""
    head = (
        f"PUT {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Authorization: {AUTH['Authorization']}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    status, headers, body = exchange(served, head, chunked(BIG))
    assert status == 413, body[:300]
    assert b"application/problem+json" in headers
    assert json.loads(body)["status"] == 413


PROTOCOL_ERRORS = {
    "150 headers": "GET / HTTP/1.1\r\nHost: x\r\n"
    + "".join(f"X-H{n}: v\r\n" for n in range(150))
    + "\r\n",
    "70 KB request line": f"GET /{'a' * 70000} HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad version": "GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    "not HTTP": "HELLO\r\n\r\n",
}


@pytest.mark.parametrize("raw", PROTOCOL_ERRORS.values(), ids=PROTOCOL_ERRORS.keys())
def test_what_the_threaded_server_refuses_before_the_app_is_a_problem(raw: str) -> None:
    """The HTTP layer's own refusals (Python's http.server) were HTML pages."""
    with (
        start_in_thread(create_app()) as server,
        socket.create_connection((server.host, server.port), timeout=10) as connection,
    ):
        connection.sendall(raw.encode())
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    assert 400 <= status < 500, answer[:300]
    assert b"content-type: application/problem+json" in head.lower()
    assert json.loads(body)["status"] == status


def test_a_chunk_extension_is_valid_http_on_the_threaded_server() -> None:
    """RFC 9112 7.1.1 lets a chunk size carry extensions (``13;ext=1``), which a recipient
    ignores; Werkzeug's development server refused them."""
    body = b'{"agent-status": 5, "status-code-list-id": 801, "status-code-item-id": 1722}'
    head = (
        f"PUT {api_path(suffix=f'/{BOB}')} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Authorization: {AUTH['Authorization']}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    framed = b"%x;ext=1\r\n%s\r\n0;last\r\n\r\n" % (len(body), body)
    with start_in_thread(create_app()) as server:
        status, _, answer = exchange((server.host, server.port), head, framed)
    assert status == 200, answer


def test_two_different_content_lengths_are_a_400_in_every_mode(served: tuple[str, int]) -> None:
    """RFC 9112 6.3: differing Content-Length values are an unrecoverable framing error. The
    threaded server took the last one and waited for a body that was never coming."""
    head = (
        f"GET {api_path()} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Authorization: {AUTH['Authorization']}\r\nContent-Length: 0\r\nContent-Length: 1\r\n\r\n"
    )
    status, _, _ = exchange(served, head, b"")
    assert status == 400
