"""The shared faults and journal answer exactly as the one-process ones, from any process.

Two ``SharedFile`` objects on one path stand for two workers: whatever one changes, the other
sees, and a script of operations run on the one-process classes and, alternately, on the two
"workers" gives the same answers.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mock_server.testdouble.faults import FaultNotFound, FaultRegistry
from mock_server.testdouble.journal import Exchange, Journal, JournalFilter
from mock_server.testdouble.shared import (
    SharedFaults,
    SharedFile,
    SharedJournal,
    remove_shared_test_double,
)

AGENTS = "/api/v1/tenants/acme/agentstatus/agents"
FAULTS: list[dict[str, Any]] = [
    {"match": {"agent": "a1"}, "action": {"type": "respond", "status": 503}, "times": 3},
    {"match": {"method": "PUT"}, "action": {"type": "drop"}, "probability": 0.4, "seed": 11},
    {"match": {"path-regex": f"{AGENTS}/a[0-9]"}, "latency-ms": 10, "probability": 0.7},
    {"match": {"tenant": "acme"}, "action": {"type": "malformed"}, "times": 2, "seed": 3},
]
REQUESTS = [(method, f"{AGENTS}/a{n % 4}") for n in range(40) for method in ("GET", "PUT")]


@pytest.fixture
def opened() -> Iterator[list[SharedFile | SharedJournal]]:
    """What a test opens, closed after it."""
    files: list[SharedFile | SharedJournal] = []
    yield files
    for file in reversed(files):
        file.close()


@pytest.fixture
def workers(tmp_path: Path, opened: list[SharedFile | SharedJournal]) -> tuple[SharedFile, ...]:
    """Two workers' views of one shared file."""
    pair = (SharedFile(tmp_path / "t.testdouble"), SharedFile(tmp_path / "t.testdouble"))
    opened.extend(pair)
    return pair


def test_faults_select_as_one_registry_whichever_worker_asks(
    workers: tuple[SharedFile, ...],
) -> None:
    alone = FaultRegistry()
    first, second = (SharedFaults(shared) for shared in workers)
    for definition in FAULTS:
        assert alone.add(definition).to_json() == first.add(definition).to_json()
    chosen_alone, chosen_shared = [], []
    for number, (method, path) in enumerate(REQUESTS):
        one = alone.select(method, path)
        other = (first if number % 2 else second).select(method, path)
        chosen_alone.append(None if one is None else (one.id, one.hits, one.remaining))
        chosen_shared.append(None if other is None else (other.id, other.hits, other.remaining))
    assert chosen_shared == chosen_alone
    assert len({choice for choice in chosen_alone if choice is not None}) > 4
    assert second.all() == alone.all() == first.all()


def test_fault_changes_reach_every_worker(workers: tuple[SharedFile, ...]) -> None:
    first, second = (SharedFaults(shared) for shared in workers)
    assert second.select("GET", AGENTS) is None
    fault = first.add({"action": {"type": "respond", "status": 500}})
    chosen = second.select("GET", AGENTS)
    assert chosen is not None and chosen.id == fault.id == "f1"
    assert first.get("f1")["hits"] == 1
    second.delete("f1")
    assert first.select("GET", AGENTS) is None
    with pytest.raises(FaultNotFound):
        first.get("f1")
    assert first.add({"action": {"type": "drop"}}).id == "f2"  # ids are never reused
    second.clear()
    assert first.all() == [] and first.select("GET", AGENTS) is None


def exchange(number: int) -> Exchange:
    agent = f"a{number % 3}"
    body: bytes | int = b'{"agent-status": 4}' if number % 2 else 70_000
    return Exchange(
        method="PUT" if number % 2 else "GET",
        path=f"{AGENTS}/{agent}",
        query=f"n={number}",
        fault=None if number % 5 else "f1",
        request_headers=[("Content-Type", "application/json"), ("Authorization", "Basic ***")],
        request_body=body,
        started=1_700_000_000.0 + number,
        status=200 if number % 4 else 404,
        duration_ms=0.5,
        response_headers=[("Content-Type", "application/json")],
        response_body=b'{"reason": "OK"}',
    )


def test_the_journal_answers_as_one_journal_whichever_worker_records(
    workers: tuple[SharedFile, ...], opened: list[SharedFile | SharedJournal]
) -> None:
    alone = Journal(7)
    first, second = (SharedJournal(shared, 7) for shared in workers)
    opened.extend([first, second])
    for number in range(12):
        alone.record(exchange(number))
        (first if number % 2 else second).record(exchange(number))
    assert first.entries() == alone.entries() == second.entries()
    assert [entry["id"] for entry in first.entries()] == list(range(6, 13))
    for where in (
        JournalFilter(agent="a1"),
        JournalFilter(status=404),
        JournalFilter(method="PUT"),
    ):
        assert second.entries(where) == alone.entries(where)
    assert first.clear(JournalFilter(agent="a2")) == alone.clear(JournalFilter(agent="a2")) > 0
    assert second.entries() == alone.entries()
    assert second.clear() == alone.clear() > 0
    assert first.entries() == [] and second.entries() == []
    first.record(exchange(1))
    assert [entry["id"] for entry in second.entries()] == [13]


def test_an_exchange_too_large_for_its_slot_keeps_its_sizes(
    workers: tuple[SharedFile, ...], opened: list[SharedFile | SharedJournal]
) -> None:
    journal = SharedJournal(workers[0], 16_384)
    opened.append(journal)
    large = exchange(1)
    large.request_body = b"x" * 60_000
    journal.record(large)
    (entry,) = journal.entries()
    assert entry["request"]["body"] == "<60000 bytes, not recorded>"
    assert entry["response"]["body"] == "<16 bytes, not recorded>"
    assert entry["status"] == 200


def test_a_new_run_starts_with_no_fault_and_an_empty_journal(
    tmp_path: Path, opened: list[SharedFile | SharedJournal]
) -> None:
    path = tmp_path / "t.testdouble"
    shared = SharedFile(path)
    journal = SharedJournal(shared, 10)
    SharedFaults(shared).add({"action": {"type": "drop"}})
    journal.record(exchange(1))
    journal.close()
    shared.close()
    remove_shared_test_double(path)
    assert not [name for name in os.listdir(tmp_path) if name.startswith("t.testdouble")]
    again = SharedFile(path)
    again_journal = SharedJournal(again, 10)
    opened.extend([again, again_journal])
    assert SharedFaults(again).all() == []
    assert again_journal.entries() == []


def test_recording_waits_for_no_lock_another_worker_holds(
    workers: tuple[SharedFile, ...], opened: list[SharedFile | SharedJournal]
) -> None:
    """Every API request records an exchange: a lock shared by the workers on that way made
    each wait for the others (a third of the requests per second with two workers)."""
    first, second = (SharedJournal(shared, 10) for shared in workers)
    opened.extend([first, second])
    first.record(exchange(1))
    recorded = threading.Event()

    def record_one() -> None:
        first.record(exchange(2))
        recorded.set()

    with second.shared.locked():
        recorder = threading.Thread(target=record_one)
        recorder.start()
        assert recorded.wait(5), "recording waited for the other worker's lock"
    recorder.join()
    assert [entry["query"] for entry in second.entries()] == [{"n": ["1"]}, {"n": ["2"]}]


def test_ids_run_as_one_journal_however_unevenly_the_workers_record(
    workers: tuple[SharedFile, ...], opened: list[SharedFile | SharedJournal]
) -> None:
    """A worker may record many times its ring's size before anyone reads: those overwritten
    are counted, so the ids and the window are one journal's."""
    alone = Journal(5)
    first, second = (SharedJournal(shared, 5) for shared in workers)
    opened.extend([first, second])
    number = 0
    for burst, reading in ((12, second), (1, first), (2, first), (17, second), (3, second)):
        for _ in range(burst):
            number += 1
            alone.record(exchange(number))
            (first if number % 7 < 5 else second).record(exchange(number))
        assert reading.entries() == alone.entries()
    assert [entry["id"] for entry in first.entries()] == list(range(number - 4, number + 1))


def test_a_forked_worker_records_into_a_ring_of_its_own(
    workers: tuple[SharedFile, ...], opened: list[SharedFile | SharedJournal]
) -> None:
    """granian forks its workers: a child that went on in the parent's ring would write over
    the parent's next exchanges (both count from the same sequence number)."""
    journal = SharedJournal(workers[0], 10)
    opened.append(journal)
    journal.record(exchange(1))  # the parent's ring claimed and mapped before the fork
    with warnings.catch_warnings():
        # Python 3.12 warns about fork() when the test process runs other threads; the child
        # below only records two exchanges and leaves by os._exit.
        warnings.simplefilter("ignore", DeprecationWarning)
        child = os.fork()
    if child == 0:  # pragma: no cover - the forked child
        try:
            journal.record(exchange(2))
            journal.record(exchange(3))
        finally:
            os._exit(0)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    journal.record(exchange(4))
    entries = journal.entries()
    assert [entry["query"]["n"] for entry in entries] == [["1"], ["2"], ["3"], ["4"]]
    assert [entry["id"] for entry in entries] == [1, 2, 3, 4]


def test_a_new_worker_takes_over_the_ring_of_one_gone(
    tmp_path: Path, workers: tuple[SharedFile, ...], opened: list[SharedFile | SharedJournal]
) -> None:
    gone = SharedJournal(workers[0], 10)
    for number in (1, 2):
        gone.record(exchange(number))
    gone.close()  # a worker that ended (granian respawns it)
    respawned = SharedJournal(workers[1], 10)
    opened.append(respawned)
    respawned.record(exchange(3))
    entries = respawned.entries()
    assert [entry["query"]["n"] for entry in entries] == [["1"], ["2"], ["3"]]
    assert [entry["id"] for entry in entries] == [1, 2, 3]
    assert sorted(path.name for path in tmp_path.glob("t.testdouble.journal.*")) == [
        "t.testdouble.journal.0"
    ]


def test_an_exchange_half_written_is_left_out(
    tmp_path: Path, workers: tuple[SharedFile, ...], opened: list[SharedFile | SharedJournal]
) -> None:
    """A worker killed while it wrote a slot leaves bytes that do not match its header."""
    journal = SharedJournal(workers[0], 10)
    opened.append(journal)
    for number in (1, 2, 3):
        journal.record(exchange(number))
    ring = tmp_path / "t.testdouble.journal.0"
    data = bytearray(ring.read_bytes())
    marker = data.index(b"n=2")
    data[marker : marker + 3] = b"n=9"
    ring.write_bytes(bytes(data))
    entries = journal.entries()
    assert [entry["query"]["n"] for entry in entries] == [["1"], ["3"]]
    first_id, last_id = (entry["id"] for entry in entries)
    assert first_id < last_id == 3  # the one left out is counted all the same
