"""``agentstatus-mock serve`` as users run it: granian workers, one state for all of them.

Each server is a child process on a free port of 127.0.0.1. Requests that must reach either
worker open a new connection each (``Connection: close``), so the kernel spreads them.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import DEMO_TOKEN, api_path
from support_serving import AUTH, Served, serve

from mock_server.app import create_app
from mock_server.http.control import ADMIN_ROOT

BOB = "agAQDqmvKiRbG4ekigNSmbbb"
JANE = "ag0XgxWZr7TzqWFhxboBGj1g"
AWAY = {"agent-status": 5, "status-code-list-id": 801, "status-code-item-id": 1722}
"""A change Bob (4, WAIT_TRANSACT in the fixture) may make."""


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("two"), "--workers", "2") as served:
        yield served


@pytest.fixture
def shared(two_workers: Served) -> Served:
    """The two-worker server, reset: no fault, an empty journal, the fixture's state."""
    assert two_workers.fresh("POST", f"{ADMIN_ROOT}/reset").status_code == 200
    return two_workers


def add_fault(served: Served, definition: dict[str, object]) -> str:
    created = served.fresh("POST", f"{ADMIN_ROOT}/faults", json=definition)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_health_counts_every_worker(shared: Served) -> None:
    health = shared.fresh("GET", f"{ADMIN_ROOT}/health")
    assert health.status_code == 200
    assert health.json()["workers"] == {"ready": 2, "expected": 2}


def test_slow_clients_do_not_stop_the_workers(shared: Served) -> None:
    """Connections that never finish their headers (four, twice the workers) hold nothing:
    a sync worker per connection would answer no one else."""
    trickling = []
    for _ in range(4):
        connection = socket.create_connection(("127.0.0.1", shared.port))
        connection.sendall(b"GET /api/v1/tenants/acmecorp01/agentstatus/agents HTTP/1.1\r\nHo")
        trickling.append(connection)
    try:
        for _ in range(4):
            assert shared.fresh("GET", api_path()).status_code == 200
    finally:
        for connection in trickling:
            connection.close()


def test_connections_are_kept_alive(shared: Served) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", shared.port, timeout=30)
    try:
        connection.request("GET", api_path(), headers=AUTH)
        first = connection.getresponse()
        first.read()
        opened = connection.sock
        connection.request("GET", api_path(suffix=f"/{BOB}"), headers=AUTH)
        second = connection.getresponse()
        second.read()
        assert (first.status, second.status) == (200, 200)
        assert not first.will_close
        assert connection.sock is opened
    finally:
        connection.close()


def test_times_run_down_once_across_workers(shared: Served) -> None:
    add_fault(
        shared, {"match": {"agent": BOB}, "action": {"type": "respond", "status": 503}, "times": 4}
    )
    statuses = [shared.fresh("GET", api_path(suffix=f"/{BOB}")).status_code for _ in range(6)]
    assert statuses == [503, 503, 503, 503, 200, 200]
    (fault,) = shared.fresh("GET", f"{ADMIN_ROOT}/faults").json()["faults"]
    assert (fault["hits"], fault["remaining"], fault["active"]) == (4, 0, False)


def test_a_seeded_probability_draws_as_one_process_does(shared: Served) -> None:
    definition = {
        "match": {"method": "GET"},
        "action": {"type": "respond", "status": 500},
        "probability": 0.5,
        "seed": 7,
    }
    one_process = create_app().test_client()
    assert one_process.post(f"{ADMIN_ROOT}/faults", json=definition).status_code == 201
    expected = [one_process.get(api_path(), headers=AUTH).status_code for _ in range(16)]
    add_fault(shared, definition)
    served = [shared.fresh("GET", api_path()).status_code for _ in range(16)]
    assert served == expected
    assert set(expected) == {200, 500}


def test_the_journal_holds_every_workers_exchanges_in_order(shared: Served) -> None:
    agents = [BOB, JANE] * 4
    for number, agent in enumerate(agents):
        shared.fresh("GET", api_path(suffix=f"/{agent}"), params={"n": str(number)})
    shared.fresh("GET", api_path(tenant="nosuchtenant"))
    entries = shared.fresh("GET", f"{ADMIN_ROOT}/requests").json()["requests"]
    assert [entry["query"].get("n") for entry in entries] == [
        *[[str(number)] for number in range(len(agents))],
        None,
    ]
    ids = [entry["id"] for entry in entries]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(entry["request"]["headers"]["Authorization"] == "Basic ***" for entry in entries)
    janes = shared.fresh("GET", f"{ADMIN_ROOT}/requests", params={"agent": JANE}).json()
    assert [entry["query"]["n"] for entry in janes["requests"]] == [["1"], ["3"], ["5"], ["7"]]
    refused = shared.fresh("GET", f"{ADMIN_ROOT}/requests", params={"status": "403"}).json()
    assert [entry["tenant"] for entry in refused["requests"]] == ["nosuchtenant"]
    deleted = shared.fresh("DELETE", f"{ADMIN_ROOT}/requests", params={"agent": BOB}).json()
    assert deleted == {"deleted": 4}
    left = shared.fresh("GET", f"{ADMIN_ROOT}/requests").json()["requests"]
    assert {entry["agent"] for entry in left} == {JANE, None}


def test_reset_clears_every_workers_faults_and_journal(shared: Served) -> None:
    add_fault(shared, {"action": {"type": "respond", "status": 503}})
    assert shared.fresh("GET", api_path()).status_code == 503
    assert shared.fresh("POST", f"{ADMIN_ROOT}/reset").status_code == 200
    for _ in range(4):
        assert shared.fresh("GET", api_path()).status_code == 200
    assert shared.fresh("GET", f"{ADMIN_ROOT}/faults").json() == {"faults": []}
    entries = shared.fresh("GET", f"{ADMIN_ROOT}/requests").json()["requests"]
    assert len(entries) == 4


def test_a_delayed_answer_delays_no_other_request(tmp_path: Path) -> None:
    """One worker: while a fault holds one answer back, the next requests are answered."""
    with serve(tmp_path) as served:
        add_fault(served, {"match": {"agent": BOB}, "latency-ms": 5000})
        delayed: list[int] = []
        waiting = threading.Thread(
            target=lambda: delayed.append(
                served.fresh("GET", api_path(suffix=f"/{BOB}")).status_code
            )
        )
        waiting.start()
        try:
            time.sleep(0.2)  # let the delayed request reach the worker first
            for _ in range(3):
                assert served.fresh("GET", api_path()).status_code == 200
            assert waiting.is_alive() and not delayed
        finally:
            waiting.join(timeout=30)
        assert delayed == [200]


def test_a_drop_fault_answers_not_a_single_byte(tmp_path: Path) -> None:
    with serve(tmp_path) as served:
        add_fault(served, {"action": {"type": "drop"}, "times": 1})
        with socket.create_connection(("127.0.0.1", served.port), timeout=30) as connection:
            head = f"GET {api_path()} HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH['Authorization']}"
            connection.sendall(f"{head}\r\n\r\n".encode())
            try:
                received = connection.recv(1024)
            except ConnectionResetError:
                received = b""
        assert received == b""
        assert served.fresh("GET", api_path()).status_code == 200
        (entry, _) = served.fresh("GET", f"{ADMIN_ROOT}/requests").json()["requests"]
        assert entry["outcome"] == "dropped"


def test_one_access_line_per_request_without_secrets_or_colour(tmp_path: Path) -> None:
    with serve(tmp_path) as served:
        served.fresh("GET", api_path(), params={"x-api-key": "SECRETKEY"})
        served.fresh("GET", api_path(suffix="/%1B[31mred"))
        served.fresh("PUT", api_path(suffix=f"/{BOB}"), json={"agent-status": 4})
        time.sleep(0.2)
        lines = served.log.read_text().splitlines()
    assert len(lines) == 3, lines
    listed, escaped, changed = lines
    assert listed.startswith('127.0.0.1 "GET /api/v1/tenants/acmecorp01/agentstatus/agents" 200 ')
    assert '"PUT ' in changed and f"/{BOB}" in changed
    assert "\\x1b[31mred" in escaped and " 404 " in escaped
    for line in lines:
        duration, request_id = line.rsplit(" ", 2)[1:]
        assert duration.endswith("ms") and float(duration[:-2]) >= 0
        assert len(request_id) == 32
    text = "\n".join(lines)
    assert "SECRETKEY" not in text and DEMO_TOKEN not in text and "\x1b" not in text
    assert AUTH["Authorization"].split()[1] not in text


def test_quiet_logs_no_request(tmp_path: Path) -> None:
    with serve(tmp_path, "--quiet") as served:
        assert served.fresh("GET", api_path()).status_code == 200
    assert served.log.read_text() == ""


def test_the_state_file_seeds_once_and_starts_the_test_double_empty(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    with serve(tmp_path, "--workers", "2", "--state", str(state)) as served:
        add_fault(served, {"action": {"type": "respond", "status": 503}})
        assert served.fresh("PUT", api_path(suffix=f"/{BOB}"), json=AWAY).status_code == 503
        assert served.fresh("DELETE", f"{ADMIN_ROOT}/faults").status_code == 204
        assert served.fresh("PUT", api_path(suffix=f"/{BOB}"), json=AWAY).ok
    with serve(tmp_path, "--workers", "2", "--state", str(state)) as served:
        assert served.fresh("GET", f"{ADMIN_ROOT}/faults").json() == {"faults": []}
        assert served.fresh("GET", f"{ADMIN_ROOT}/requests").json()["requests"] == []
        agent = served.fresh("GET", api_path(suffix=f"/{BOB}")).json()
        assert agent["agent-status"] == 5


def worker_libraries(served: Served) -> set[str]:
    """The file names of the shared libraries the server's worker processes have mapped."""
    names: set[str] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) != served.process.pid:
                continue
            maps = (stat.parent / "maps").read_text()
        except (OSError, IndexError, ValueError):
            continue  # the process ended meanwhile
        names |= {line.rsplit("/", 1)[1] for line in maps.splitlines() if ".so" in line}
    return names


def test_the_workers_run_on_uvloop(shared: Served) -> None:
    """uvloop answers 10-15% more requests per second than asyncio's loop (docs/serving.md)."""
    assert shared.fresh("GET", api_path()).status_code == 200
    assert any(name.startswith("loop.cpython") for name in worker_libraries(shared))


def test_without_uvloop_the_workers_run_on_asyncio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "uvloop.py").write_text("raise ImportError('no uvloop here')\n")
    monkeypatch.setenv("PYTHONPATH", str(hidden))
    with serve(tmp_path, "--workers", "2") as served:
        for _ in range(4):
            assert served.fresh("GET", api_path()).status_code == 200
        assert served.fresh("GET", f"{ADMIN_ROOT}/health").json()["workers"]["ready"] == 2
        assert not any(name.startswith("loop.cpython") for name in worker_libraries(served))
