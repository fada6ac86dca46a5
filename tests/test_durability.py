"""Durability of ``--state``: every acknowledged write survives SIGKILL of the whole server.

The emulator runs as users run it (``agentstatus-mock serve --workers 2 --state FILE``, so
granian and two worker processes). A few threads write to agents of their own, single sets
and bulks, recording what each agent was acknowledged to hold and what was still in flight.
Mid-load the process group is killed with SIGKILL and the server restarted on the same file:
each agent must hold its last acknowledged state, or the one write whose answer never came.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests
from conftest import DEMO_TENANT, DEMO_TOKEN, DEMO_USERNAME, api_path
from support_serving import serve

from schemas.wire import API_BASE

THREADS = 4
AGENTS_PER_THREAD = 2
REQUESTS_PER_THREAD = 300
KILL_AFTER_ACKNOWLEDGED = 150
BOB = "agAQDqmvKiRbG4ekigNSmbbb"  # 4 WAIT_TRANSACT in the fixture
# (agent-status, status-code-item-id) pairs of list 801, which group 100 is assigned.
STATES = [(status, item) for item in (1722, 1723, 1724, 1725, 1726) for status in (3, 5)]

State = tuple[int, int]


@dataclass
class Ledger:
    """What one agent was acknowledged to hold, and a write sent but never answered."""

    acknowledged: State
    in_flight: State | None = None

    def allowed(self) -> set[State | None]:
        return {self.acknowledged, self.in_flight} - {None}


@dataclass
class Load:
    ledgers: dict[str, Ledger] = field(default_factory=dict)
    acknowledged: int = 0
    enough: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    unexpected: list[str] = field(default_factory=list)


@contextmanager
def server(state_file: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``serve --workers 2 --state FILE`` in its own process group; yields the API's base URL.
    It ends with SIGKILL: no shutdown code runs anywhere."""
    with serve(state_file.parent, "--workers", "2", "--state", str(state_file)) as served:
        try:
            yield served.base + API_BASE, served.process
        finally:
            kill_group(served.process)


def kill_group(process: subprocess.Popen[str]) -> None:
    """SIGKILL the master and every worker: no shutdown code runs anywhere."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def session() -> requests.Session:
    http = requests.Session()
    http.auth = (DEMO_USERNAME, DEMO_TOKEN)
    return http


def agent_url(base: str, agent_id: str) -> str:
    return base + api_path(suffix=f"/{agent_id}").removeprefix("/api/v1")


def body(state: State) -> dict[str, int]:
    return {"agent-status": state[0], "status-code-list-id": 801, "status-code-item-id": state[1]}


def writer(base: str, agents: list[str], load: Load) -> None:
    """Alternate single sets and bulks over this thread's own agents until the server dies."""
    with session() as http:
        bulk_url = base + api_path(suffix="/bulk").removeprefix("/api/v1")
        for number in range(REQUESTS_PER_THREAD):
            states = {agent: STATES[(number + i) % len(STATES)] for i, agent in enumerate(agents)}
            targets = agents[:1] if number % 2 == 0 else agents
            for agent in targets:
                load.ledgers[agent].in_flight = states[agent]
            try:
                if len(targets) == 1:
                    reply = http.put(
                        agent_url(base, targets[0]), json=body(states[targets[0]]), timeout=10
                    )
                    results = [{"agent-id": targets[0], "change-status": reply.status_code}]
                else:
                    entries = [{"agent-id": agent, **body(states[agent])} for agent in targets]
                    reply = http.put(bulk_url, json={"agents": entries}, timeout=10)
                    results = reply.json()["data"] if reply.status_code == 207 else []
                    if reply.status_code != 207:
                        load.unexpected.append(reply.text)
            except (requests.RequestException, ValueError):
                return  # killed mid-request: what was in flight may or may not have landed
            for result in results:
                if result["change-status"] != 200:
                    load.unexpected.append(f"{result}")
                    continue
                ledger = load.ledgers[result["agent-id"]]
                ledger.acknowledged, ledger.in_flight = states[result["agent-id"]], None
            with load.lock:
                load.acknowledged += len(results)
                if load.acknowledged >= KILL_AFTER_ACKNOWLEDGED:
                    load.enough.set()


def held(base: str, http: requests.Session, agent_id: str) -> State:
    reply = http.get(agent_url(base, agent_id), timeout=10)
    assert reply.status_code == 200, reply.text
    agent = reply.json()
    return agent["agent-status"], agent["status-code-item-id"]


def test_acknowledged_writes_survive_sigkill_of_every_worker(tmp_path: Path) -> None:
    state_file = tmp_path / "state.sqlite"
    agents = [
        f"agDurable{thread}x{n}" for thread in range(THREADS) for n in range(AGENTS_PER_THREAD)
    ]
    load = Load()
    with server(state_file) as (base, process):
        for agent in agents:
            start = STATES[0]
            placed = requests.put(
                f"{base.removesuffix('/api/v1')}/__admin/tenants/{DEMO_TENANT}/agents/{agent}",
                json={"group-id": 100, **body(start)},
                timeout=10,
            )
            assert placed.status_code == 201, placed.text
            load.ledgers[agent] = Ledger(acknowledged=start)
        threads = [
            threading.Thread(
                target=writer,
                args=(base, agents[i * AGENTS_PER_THREAD : (i + 1) * AGENTS_PER_THREAD], load),
            )
            for i in range(THREADS)
        ]
        for thread in threads:
            thread.start()
        assert load.enough.wait(timeout=60), "the load never reached the kill point"
        kill_group(process)
        for thread in threads:
            thread.join(timeout=30)
    assert load.unexpected == []
    assert load.acknowledged >= KILL_AFTER_ACKNOWLEDGED

    with server(state_file) as (base, _), session() as http:
        for agent, ledger in load.ledgers.items():
            assert held(base, http, agent) in ledger.allowed(), agent


def test_restart_keeps_the_state_and_reset_restores_the_fixture(tmp_path: Path) -> None:
    state_file = tmp_path / "state.sqlite"
    with server(state_file) as (base, _), session() as http:
        assert http.put(agent_url(base, BOB), json=body((3, 1725)), timeout=10).status_code == 200
    with server(state_file) as (base, _), session() as http:
        assert held(base, http, BOB) == (3, 1725)
        reset = requests.post(f"{base.removesuffix('/api/v1')}/__admin/reset", timeout=10)
        assert reset.status_code == 200
        assert http.get(agent_url(base, BOB), timeout=10).json()["agent-status"] == 4


def test_every_worker_answers_from_the_latest_write(tmp_path: Path) -> None:
    """Each worker caches what it read until the shared revision moves: a write answered by
    one worker is what every later read sees, whichever worker serves it, for the single
    get, the list and the credentials (a rotated token fails at once everywhere)."""
    with server(tmp_path / "state.sqlite") as (base, _), session() as http:
        admin = f"{base.removesuffix('/api/v1')}/__admin/tenants/{DEMO_TENANT}"
        list_url = f"{base}{api_path().removeprefix('/api/v1')}"
        for state in STATES * 2:
            assert http.put(agent_url(base, BOB), json=body(state), timeout=10).status_code == 200
            for _ in range(3):  # a new connection per request: both workers answer in turn
                assert held(base, http, BOB) == state
                listed = http.get(list_url, timeout=10).json()["data"]
                bob = next(agent for agent in listed if agent["agent-id"] == BOB)
                assert (bob["agent-status"], bob["status-code-item-id"]) == state
        token = requests.post(f"{admin}/token", timeout=10).json()["token"]
        for _ in range(6):
            assert http.get(agent_url(base, BOB), timeout=10).status_code == 401
            fresh = requests.get(agent_url(base, BOB), auth=(DEMO_USERNAME, token), timeout=10)
            assert fresh.status_code == 200
