"""The simulator (issue 16, part 2): a tenant whose agents take calls, breaks and logouts on
their own, with the vendor's ``Interaction`` events. Determinism, the API's rules kept for
simulated agents, the documented call sequences, the clock and the control plane, and one
simulation over two workers."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import websockets
from conftest import DEMO_TENANT, DEMO_TOKEN, DEMO_USERNAME, api_path, basic
from flask import Flask
from flask.testing import FlaskClient
from support_serving import Served, serve

from mock_server import create_app
from mock_server.core.entities import Event
from mock_server.core.sqlite_store import SQLiteStore
from mock_server.http.context import EXTENSION, EmulatorState

START_MS = 1_700_000_000_000
BOB = "agAQDqmvKiRbG4ekigNSmbbb"  # 4, group 100
AVA = "agys64KT2rumOT-zNtTKjCSF"  # 4, group 200
IN_A_CALL = {
    6: "agRv3Dr0501kiKmeknUt_tiy",  # Rita Ringing
    7: "agcrRXpMSPUa-AhewwR34pkz",  # Carl Oncall
    8: "agC-8tWpn5q4l8YU6Cgzg5on",  # Wanda Wrapup
}
"""Fixture agents in each status of a call: the simulator leaves them alone."""
AUTH = basic(DEMO_USERNAME, DEMO_TOKEN)
KEY = {"X-API-Key": DEMO_TOKEN}
INBOUND = [
    ("InteractionCreated", "CS_QUEUED"),
    ("InteractionQueued", "CS_QUEUED"),
    ("InteractionAssigned", "CS_INPROGRESS"),
    ("InteractionAccepted", "CS_CONNECTED"),
    ("InteractionPostProcess", "CS_DISCONNECTED"),
    ("InteractionEndPostProcess", "CS_DISCONNECTED"),
    ("InteractionDeassigned", "CS_DISCONNECTED"),
    ("InteractionDeleted", "CS_DISCONNECTED"),
]
"""event-lifecycle.mdx's inbound call (message-format.mdx's table, with its final
InteractionDeleted)."""
OUTBOUND = [
    ("InteractionCreated", "CS_IDLE"),
    ("InteractionAssigned", "CS_INPROGRESS"),
    ("InteractionCustomerAccepted", "CS_CONNECTED"),
    *INBOUND[4:],
]
ABANDONED = [*INBOUND[:2], ("InteractionUnqueued", "CS_DISCONNECTED"), INBOUND[-1]]
STATUS_AFTER = {
    "InteractionAssigned": 6,
    "InteractionAccepted": 7,
    "InteractionCustomerAccepted": 7,
    "InteractionPostProcess": 8,
    "InteractionDeleted": 4,
}
GUID = re.compile(r"int-[0-9a-f]+-[A-Za-z0-9]{25}-phone-00-" + DEMO_TENANT)


def new_app(**options: Any) -> Flask:
    return create_app(validate_responses=True, **options)


def start(client: FlaskClient, **body: Any) -> dict[str, Any]:
    answer = client.post("/__admin/simulation", json={"speed": 0, "start-ms": START_MS, **body})
    assert answer.status_code == 200, answer.get_json()
    state: dict[str, Any] = answer.get_json()
    return state


def advance(client: FlaskClient, seconds: float) -> dict[str, Any]:
    answer = client.post("/__admin/clock", json={"advance-seconds": seconds})
    assert answer.status_code == 200, answer.get_json()
    state: dict[str, Any] = answer.get_json()
    return state


def log(app: Flask, tenant: str = DEMO_TENANT) -> list[Event]:
    state: EmulatorState = app.extensions[EXTENSION]
    return state.backend.events_after(tenant, 0, 100_000)


def status_of(client: FlaskClient, agent_id: str) -> int:
    status: int = client.get(api_path(suffix=f"/{agent_id}"), headers=AUTH).get_json()[
        "agent-status"
    ]
    return status


def set_status(client: FlaskClient, agent_id: str, status: int) -> Any:
    return client.put(api_path(suffix=f"/{agent_id}"), headers=AUTH, json={"agent-status": status})


def calls(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Interaction payloads by interactionGUID, in order."""
    by_call: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        if "Interaction" in event:
            by_call[event["Interaction"]["interactionGUID"]].append(event["Interaction"])
    return by_call


def steps_of(call: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(event["event"], event["callState"]) for event in call]


# -- determinism -------------------------------------------------------------------------


def run_shift(seed: int) -> list[tuple[Any, ...]]:
    """A shift with an API call in the middle; the events, the API's stamped apart."""
    app = new_app()
    client = app.test_client()
    start(client, seed=seed)
    advance(client, 1200)
    before = len(log(app))
    answer = set_status(client, AVA, 5)
    by_api = {event.sequence for event in log(app)[before:]}
    advance(client, 2400)
    assert client.delete("/__admin/simulation").status_code == 200
    return [
        (
            answer.status_code,
            event.sequence,
            event.kind,
            event.agent_id,
            json.dumps({**event.body, "statusEventTS": None}, sort_keys=True),
            None if event.sequence in by_api else event.published_ms,
            None if event.sequence in by_api else event.body.get("statusEventTS"),
        )
        for event in log(app)
    ]


def test_the_same_seed_and_steps_give_the_same_events_and_another_seed_others() -> None:
    first, again, other = run_shift(11), run_shift(11), run_shift(12)
    assert len(first) > 200
    assert first == again
    assert first != other


def test_the_simulators_events_carry_the_simulated_time() -> None:
    app = new_app()
    client = app.test_client()
    start(client, seed=3)
    state = advance(client, 1800)
    assert state["clock-ms"] == START_MS + 1_800_000
    events = log(app)
    stamps = [event.published_ms for event in events]
    assert stamps == sorted(stamps)
    assert stamps[0] > START_MS and stamps[-1] <= START_MS + 1_800_000
    for event in events:
        body = event.payload()[event.kind]
        seconds = body.get("statusEventTS", body.get("interactionEventTS"))
        assert seconds == event.published_ms // 1000


# -- the API's rules ---------------------------------------------------------------------


def test_an_agent_on_a_simulated_call_is_refused_as_any_agent_in_that_status() -> None:
    app = new_app()
    client = app.test_client()
    start(client, seed=5, tenants={DEMO_TENANT: {"calls-per-hour": 600}})
    refused: dict[int, str] = {}
    for _ in range(200):
        advance(client, 3)
        agents = client.get(f"/__admin/tenants/{DEMO_TENANT}").get_json()["agents"]
        for agent in agents:
            status = agent["agent-status"]
            if status in IN_A_CALL and agent["agent-id"] not in IN_A_CALL.values():
                if status in refused:
                    continue
                before = len(log(app))
                answer = set_status(client, agent["agent-id"], 3)
                assert answer.status_code == 400
                fixture = set_status(client, IN_A_CALL[status], 3)
                assert answer.get_json()["detail"] == fixture.get_json()["detail"]
                assert len(log(app)) == before  # a refused change emits nothing
                assert status_of(client, agent["agent-id"]) == status
                refused[status] = answer.get_json()["detail"]
        if len(refused) == 3:
            break
    assert sorted(refused) == [6, 7, 8]
    assert "6 TRANSACT_OFFERED -> 3 ON_BREAK is not allowed" in refused[6]
    # The refused agents' calls go on: nobody is left in a call status the simulator gave.
    state = client.delete("/__admin/simulation").get_json()
    assert state["running"] is False
    agents = client.get(f"/__admin/tenants/{DEMO_TENANT}").get_json()["agents"]
    assert {agent["agent-id"] for agent in agents if agent["agent-status"] in IN_A_CALL} == set(
        IN_A_CALL.values()
    )


def test_a_call_goes_only_to_an_agent_who_is_available_now() -> None:
    app = new_app()
    client = app.test_client()
    quiet = {"breaks-per-hour": 0, "offline-per-hour": 0, "logouts-per-hour": 0}
    plan = {"agents": [BOB, AVA], "calls-per-hour": 120, "mix": {"inbound": 1}, **quiet}
    start(client, seed=2, tenants={DEMO_TENANT: {**plan, "break-seconds": 86_400}})
    assert set_status(client, BOB, 3).status_code == 200
    assert set_status(client, AVA, 3).status_code == 200
    state = advance(client, 1800)
    counters = state["tenants"][DEMO_TENANT]["counters"]
    assert counters["changes-seen"] == 2 and counters["calls"] > 10
    assert counters["abandoned"] == counters["calls"] - state["tenants"][DEMO_TENANT]["queued"]
    assigned = [e for e in log(app) if e.body.get("event") == "InteractionAssigned"]
    assert assigned == []
    assert set_status(client, BOB, 4).status_code == 200
    advance(client, 1800)
    agents = {e.body["agentId"] for e in log(app) if e.body.get("event") == "InteractionAssigned"}
    assert agents == {BOB}
    assert status_of(client, AVA) == 3


# -- the vendor's call sequences ---------------------------------------------------------


def test_each_call_follows_the_vendors_documented_sequence() -> None:
    app = new_app()
    client = app.test_client()
    start(client, seed=9)
    state = advance(client, 7200)
    counters = state["tenants"][DEMO_TENANT]["counters"]
    payloads = [event.payload() for event in log(app)]
    by_call = calls(payloads)
    finished = [call for call in by_call.values() if call[-1]["event"] == "InteractionDeleted"]
    assert len(finished) == counters["completed"] + counters["abandoned"] > 50
    shapes = {tuple(steps_of(call)) for call in finished}
    assert shapes <= {tuple(INBOUND), tuple(OUTBOUND), tuple(ABANDONED)}
    assert tuple(INBOUND) in shapes and tuple(OUTBOUND) in shapes
    for guid, call in by_call.items():
        assert GUID.fullmatch(guid)
        assert {event["direction"] for event in call} == {call[0]["direction"]}
        assert {event["mediaType"] for event in call} == {"phone"}
        assert all(e["interactionEventTS"] == e["eventTS"] for e in call)
        assert [e["interactionEventTS"] for e in call] == sorted(
            e["interactionEventTS"] for e in call
        )
        assigned = [e for e in call if "agentId" in e]
        assert len({e["agentId"] for e in assigned}) <= 1
    # After each step of a call, its agent's next status change is the call's status.
    for index, event in enumerate(payloads):
        interaction = event.get("Interaction", {})
        expected = STATUS_AFTER.get(interaction.get("event"))
        if expected is None or interaction.get("hangupInitiator") == "SYSTEM":
            continue
        if interaction["event"] == "InteractionDeleted" and "agentId" not in interaction:
            continue  # abandoned in the queue
        following = next(
            e["AgentStatusChange"]
            for e in payloads[index + 1 :]
            if e.get("AgentStatusChange", {}).get("agentId") == interaction["agentId"]
        )
        assert following["newState"] == expected, interaction


def test_a_simulated_break_carries_a_reason_code_of_the_agents_group() -> None:
    app = new_app()
    client = app.test_client()
    plan = {"agents": [AVA], "calls-per-hour": 0, "breaks-per-hour": 60, "break-seconds": 10}
    others = {"offline-per-hour": 0, "logouts-per-hour": 0}
    start(client, seed=4, tenants={DEMO_TENANT: {**plan, **others}})
    advance(client, 3600)
    breaks = [e.body for e in log(app) if e.kind == "AgentStatusChange" and e.body["newState"] == 3]
    assert len(breaks) > 10
    codes = {body["newReasonCodeUser"] for body in breaks}
    lists = {code.split("=")[0] for code in codes}
    assert lists <= {"801", "802"} and len(codes) > 1  # Ava's group 200 has lists 801 and 802


# -- the control plane -------------------------------------------------------------------


def test_before_a_simulation_get_says_none_runs_and_the_clock_is_refused() -> None:
    client = new_app().test_client()
    assert client.get("/__admin/simulation").get_json() == {"running": False, "tenants": {}}
    answer = client.post("/__admin/clock", json={"advance-ms": 1000})
    assert answer.status_code == 409
    assert "No simulation is running" in answer.get_json()["detail"]


def test_delete_stops_it_and_ends_its_calls() -> None:
    app = new_app()
    client = app.test_client()
    start(client, seed=1, tenants={DEMO_TENANT: {"calls-per-hour": 600}})
    state = advance(client, 600)
    assert state["tenants"][DEMO_TENANT]["on-call"] > 0
    stopped = client.delete("/__admin/simulation").get_json()
    assert stopped["running"] is False and stopped["tenants"][DEMO_TENANT]["on-call"] == 0
    assert stopped["tenants"][DEMO_TENANT]["counters"]["interrupted"] > 0
    open_calls = [c for c in calls([e.payload() for e in log(app)]).values()]
    assert all(call[-1]["event"] == "InteractionDeleted" for call in open_calls)
    events = len(log(app))
    assert client.post("/__admin/clock", json={"advance-ms": 60_000}).status_code == 409
    assert len(log(app)) == events
    assert client.get("/__admin/simulation").get_json()["running"] is False
    assert client.delete("/__admin/simulation").status_code == 200  # stopping again: no change


def test_a_full_reset_stops_it_and_a_new_start_replaces_the_old() -> None:
    client = new_app().test_client()
    start(client, seed=1)
    advance(client, 60)
    assert client.post("/__admin/reset").status_code == 200
    assert client.get("/__admin/simulation").get_json()["running"] is False
    start(client, seed=1)
    replaced = start(client, seed=2, tenants={DEMO_TENANT: {"agents": [BOB]}})
    assert replaced["seed"] == 2 and list(replaced["tenants"]) == [DEMO_TENANT]
    assert replaced["tenants"][DEMO_TENANT]["agents"] == 1
    assert replaced["tenants"][DEMO_TENANT]["settings"]["agents"] == [BOB]


def test_speed_moves_the_clock_with_real_time_and_delete_ends_the_ticker() -> None:
    client = new_app().test_client()
    start(client, seed=1, speed=600)
    time.sleep(0.6)
    elapsed = client.get("/__admin/simulation").get_json()["elapsed-ms"]
    assert 200_000 <= elapsed <= 600_000
    assert any(t.name == "agentstatus-simulation" for t in threading.enumerate())
    stopped = client.delete("/__admin/simulation").get_json()
    time.sleep(0.3)
    assert client.get("/__admin/simulation").get_json()["clock-ms"] == stopped["clock-ms"]
    deadline = time.monotonic() + 2
    while any(t.name == "agentstatus-simulation" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the ticker did not end"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("path", "body", "detail"),
    [
        ("/__admin/simulation", [], "The request body must be a JSON object"),
        ("/__admin/simulation", {"sede": 1}, "'sede' is not a field"),
        ("/__admin/simulation", {"seed": "7"}, "seed must be an integer"),
        ("/__admin/simulation", {"seed": 1.5}, "seed must be an integer"),
        ("/__admin/simulation", {"speed": -1}, "speed must be a number from 0"),
        ("/__admin/simulation", {"speed": 4000}, "speed must be a number from 0"),
        ("/__admin/simulation", {"speed": True}, "speed must be a number, got a boolean"),
        ("/__admin/simulation", {"start-ms": -5}, "start-ms must be an integer"),
        ("/__admin/simulation", {"tenants": []}, "tenants must be a JSON object"),
        ("/__admin/simulation", {"tenants": {}}, "tenants must name at least one tenant"),
        ("/__admin/simulation", {"tenants": {"nosuch": {}}}, "tenants.nosuch: the tenant does"),
        (
            "/__admin/simulation",
            {"tenants": {DEMO_TENANT: {"talk-secs": 3}}},
            f"tenants.{DEMO_TENANT}: 'talk-secs' is not a field",
        ),
        (
            "/__admin/simulation",
            {"tenants": {DEMO_TENANT: {"talk-seconds": 0}}},
            f"tenants.{DEMO_TENANT}.talk-seconds must be a number above 0",
        ),
        (
            "/__admin/simulation",
            {"tenants": {DEMO_TENANT: {"calls-per-hour": "many"}}},
            f"tenants.{DEMO_TENANT}.calls-per-hour must be a number, got a string",
        ),
        (
            "/__admin/simulation",
            {"tenants": {DEMO_TENANT: {"mix": {"inbound": 0}}}},
            f"tenants.{DEMO_TENANT}.mix must give inbound or outbound a weight",
        ),
        (
            "/__admin/simulation",
            {"tenants": {DEMO_TENANT: {"mix": {"sideways": 1}}}},
            f"tenants.{DEMO_TENANT}.mix: 'sideways' is not a field",
        ),
        (
            "/__admin/simulation",
            {"tenants": {DEMO_TENANT: {"agents": [BOB, BOB]}}},
            f"tenants.{DEMO_TENANT}.agents[1]: '{BOB}' is named twice",
        ),
        (
            "/__admin/simulation",
            {"tenants": {DEMO_TENANT: {"agents": [BOB, 5]}}},
            f"tenants.{DEMO_TENANT}.agents[1] must be an agent id",
        ),
        (
            "/__admin/simulation",
            {"tenants": {DEMO_TENANT: {"agents": ["agNobody"]}}},
            f"tenants.{DEMO_TENANT}.agents[0]: the agent does not exist",
        ),
        ("/__admin/clock", {}, "one of advance-ms and advance-seconds"),
        ("/__admin/clock", {"advance-ms": 1, "advance-seconds": 1}, "one of advance-ms"),
        ("/__admin/clock", {"advance-ms": 1.5}, "advance-ms must be an integer from 0"),
        ("/__admin/clock", {"advance-ms": 86_400_001}, "advance-ms must be an integer from 0"),
        ("/__admin/clock", {"advance-seconds": "1"}, "advance-seconds must be a number"),
        ("/__admin/clock", {"advance-minutes": 1}, "'advance-minutes' is not a field"),
    ],
)
def test_a_bad_body_is_a_400_naming_the_field(path: str, body: Any, detail: str) -> None:
    client = new_app().test_client()
    start(client, seed=1)
    before = client.get("/__admin/simulation").get_json()
    answer = client.post(path, json=body)
    assert answer.status_code == 400, answer.get_json()
    assert answer.mimetype == "application/problem+json"
    assert detail in answer.get_json()["detail"]
    assert client.get("/__admin/simulation").get_json() == before  # nothing changed


def test_the_admin_token_guards_every_simulation_route() -> None:
    client = new_app(admin_token="s3cret").test_client()
    calls_ = [
        ("POST", "/__admin/simulation", {"speed": 0}),
        ("GET", "/__admin/simulation", None),
        ("POST", "/__admin/clock", {"advance-ms": 1}),
        ("DELETE", "/__admin/simulation", None),
    ]
    for method, path, body in calls_:
        assert client.open(path, method=method, json=body).status_code == 403
    for method, path, body in calls_:
        answer = client.open(path, method=method, json=body, headers={"X-Admin-Token": "s3cret"})
        assert answer.status_code == 200, (method, path)


def test_two_processes_over_one_state_file_move_one_clock(tmp_path: Path) -> None:
    """Two apps over one SQLite file, as two workers are, each with its ticker: the lease
    lets one of them move the clock at ``speed``, neither faster nor slower."""
    speed = 600
    stores = [SQLiteStore(tmp_path / "state.sqlite") for _ in range(2)]
    try:
        first, second = (new_app(store=store).test_client() for store in stores)
        started = time.monotonic()
        first.post("/__admin/simulation", json={"speed": speed, "seed": 6})
        leaders = set()
        for _ in range(10):
            for client in (first, second):  # a GET makes a process stand by to take over
                leaders.add(client.get("/__admin/simulation").get_json()["leader-pid"])
            time.sleep(0.1)
        tickers = [t for t in threading.enumerate() if t.name == "agentstatus-simulation"]
        stopped = second.delete("/__admin/simulation").get_json()
        wall = time.monotonic() - started
        for ticker in tickers:  # each ends at its next tick, which reads the store
            ticker.join(timeout=5)
        assert not any(ticker.is_alive() for ticker in tickers)
    finally:
        for store in stores:
            store.close()
    assert len(tickers) == 2
    assert leaders - {None} == {os.getpid()}
    assert speed * 1000 * (wall - 0.4) <= stopped["elapsed-ms"] <= speed * 1000 * wall


# -- a real server ---------------------------------------------------------------------


def ws_url(served: Served, **query: str) -> str:
    path = f"/ws/v2/reader/persistent/{DEMO_TENANT}/event-v1/all"
    url = served.base.replace("http://", "ws://") + path
    return f"{url}?{urlencode({'receiverQueueSize': '100000', **query})}"


async def read_all(socket: Any, quiet: float = 0.5) -> list[dict[str, Any]]:
    """Every message until the stream stays silent for ``quiet`` seconds, decoded."""
    got: list[dict[str, Any]] = []
    while True:
        try:
            raw = await asyncio.wait_for(socket.recv(), quiet)
        except TimeoutError:
            return got
        got.append(json.loads(base64.b64decode(json.loads(raw)["payload"])))


def test_a_clock_move_reaches_the_stream_before_the_answer_is_read(tmp_path: Path) -> None:
    with serve(tmp_path) as served:
        begun = served.fresh("POST", "/__admin/simulation", json={"speed": 0, "seed": 8})
        assert begun.status_code == 200

        async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]], float]:
            async with websockets.connect(ws_url(served), extra_headers=KEY) as socket:
                loop = asyncio.get_running_loop()
                moved = await loop.run_in_executor(
                    None,
                    lambda: served.fresh("POST", "/__admin/clock", json={"advance-ms": 900_000}),
                )
                answered = time.monotonic()
                first = json.loads(await asyncio.wait_for(socket.recv(), 5))
                delay = time.monotonic() - answered
                rest = await read_all(socket)
                return moved.json(), [json.loads(base64.b64decode(first["payload"])), *rest], delay

        state, events, delay = asyncio.run(scenario())
    assert delay < 1.0
    assert len(events) == state["tenants"][DEMO_TENANT]["counters"]["events"] > 20
    assert {next(iter(event)) for event in events} == {"AgentStatusChange", "Interaction"}


def test_two_workers_run_one_simulation_and_stop_cleanly(tmp_path: Path) -> None:
    speed = 600
    with serve(tmp_path, "--workers", "2", "--state", str(tmp_path / "state.db")) as two:
        answer = two.fresh("POST", "/__admin/simulation", json={"speed": speed, "seed": 6})
        assert answer.status_code == 200
        begun = time.monotonic()
        leaders = set()
        for _ in range(15):  # on fresh connections: both workers answer, and stand by
            state = two.fresh("GET", "/__admin/simulation").json()
            leaders.add(state["leader-pid"])
            time.sleep(0.1)
        wall = time.monotonic() - begun
        final = two.fresh("DELETE", "/__admin/simulation").json()

        async def scenario() -> tuple[list[dict[str, Any]], bool]:
            async with websockets.connect(
                ws_url(two, messageId="earliest"), extra_headers=KEY
            ) as socket:
                events = await read_all(socket)
                later = await read_all(socket, 0.4)
                return events, later == []

        events, stopped = asyncio.run(scenario())
        assert two.fresh("POST", "/__admin/simulation", json={"speed": speed}).status_code == 200
        time.sleep(0.3)
        process = two.process
    # Stopped by SIGTERM with a simulation running: no traceback, no SIGKILL needed.
    assert process.returncode != -signal.SIGKILL
    assert "Traceback" not in two.log.read_text()
    assert stopped
    assert len(leaders - {None}) == 1  # one process moved the clock throughout
    assert speed * 1000 * (wall - 0.5) <= final["elapsed-ms"] <= speed * 1000 * (wall + 0.5)
    counters = final["tenants"][DEMO_TENANT]["counters"]
    numbers = [event[next(iter(event))]["msgInfo"]["sequenceId"] for event in events]
    assert numbers == list(range(1, len(events) + 1))
    assert len(events) == counters["events"] > 20
    for call in calls(events).values():
        steps = steps_of(call)
        assert len(set(steps)) == len(steps)  # nothing twice
        assert any(
            steps == shape[: len(steps)] or steps[-1] == INBOUND[-1]
            for shape in (INBOUND, OUTBOUND, ABANDONED)
        )
