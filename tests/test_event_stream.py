"""The Event Streaming service (Pulsar's WebSocket reader) of a real ``serve``: what each change
emits, the handshake's keys and refusals, resuming, flow control, and ordering across workers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
import websockets
from conftest import DEMO_TENANT, DEMO_TOKEN, DEMO_USERNAME, OTHER_TENANT, api_path, basic
from support_serving import Served, serve

from mock_server.http.event_stream import message_id, sequence_of

BOB = "agAQDqmvKiRbG4ekigNSmbbb"  # 4 WAIT_TRANSACT
AVA = "agys64KT2rumOT-zNtTKjCSF"  # 4 WAIT_TRANSACT, group 200 (lists 801, 802)
RITA = "agRv3Dr0501kiKmeknUt_tiy"  # 6 TRANSACT_OFFERED: cannot go on break
KEY = {"X-API-Key": DEMO_TOKEN}
ALL = f"/ws/v2/reader/persistent/{DEMO_TENANT}/event-v1/all"
RECEIVE_SECONDS = 5.0
QUIET_SECONDS = 0.3
"""How long a stream must stay silent for "nothing was sent" (events arrive within ms)."""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("events")) as running:
        yield running


@pytest.fixture(autouse=True)
def reset(served: Served) -> None:
    assert served.fresh("POST", "/__admin/reset").status_code == 200


def ws_url(served: Served, path: str = ALL, **query: str) -> str:
    url = served.base.replace("http://", "ws://") + path
    return f"{url}?{urlencode(query)}" if query else url


def put(served: Served, agent_id: str, body: dict[str, Any]) -> requests.Response:
    return served.fresh("PUT", api_path(suffix=f"/{agent_id}"), json=body)


def decoded(raw: str | bytes) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(raw)
    return message


def payload(message: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(base64.b64decode(message["payload"]))
    return event


async def receive(socket: Any, count: int) -> list[dict[str, Any]]:
    return [decoded(await asyncio.wait_for(socket.recv(), RECEIVE_SECONDS)) for _ in range(count)]


async def silent(socket: Any) -> bool:
    try:
        await asyncio.wait_for(socket.recv(), QUIET_SECONDS)
    except TimeoutError:
        return True
    return False


def refusal(served: Served, url: str, headers: dict[str, str] | None = None) -> int:
    async def attempt() -> int:
        try:
            async with websockets.connect(url, extra_headers=headers or {}):
                return 101
        except websockets.InvalidStatusCode as refused:
            return refused.status_code

    return asyncio.run(attempt())


def test_a_status_change_through_the_api_arrives_as_the_vendors_event(served: Served) -> None:
    async def scenario() -> list[dict[str, Any]]:
        async with websockets.connect(ws_url(served), extra_headers=KEY) as socket:
            assert (
                put(
                    served,
                    AVA,
                    {"agent-status": 5, "status-code-list-id": 802, "status-code-item-id": 1801},
                ).status_code
                == 200
            )
            return await receive(socket, 1)

    (message,) = asyncio.run(scenario())
    assert set(message) == {"messageId", "payload", "properties", "publishTime", "redeliveryCount"}
    assert message["redeliveryCount"] == 0 and message["properties"] == {}
    assert message["publishTime"].endswith("Z") and "T" in message["publishTime"]
    change = payload(message)["AgentStatusChange"]
    assert {k: change[k] for k in ("agentId", "newState", "newSubState", "newReasonCodeUser")} == {
        "agentId": AVA,
        "newState": 5,
        "newSubState": "none",
        "newReasonCodeUser": "802=1801",
    }
    info = change["msgInfo"]
    assert set(info) == {"instanceId", "sequenceId", "timestamp"}
    assert info["timestamp"] // 1000 == change["statusEventTS"]
    assert sequence_of(message["messageId"]) == info["sequenceId"]


def test_every_applied_change_emits_once_and_a_refused_one_nothing(served: Served) -> None:
    bulk_path = api_path(suffix="/bulk")

    async def scenario() -> tuple[list[dict[str, Any]], bool]:
        async with websockets.connect(ws_url(served), extra_headers=KEY) as socket:
            assert put(served, RITA, {"agent-status": 3}).status_code == 400  # refused
            assert put(served, BOB, {"agent-status": 4}).status_code == 200  # changes nothing
            bulk = served.fresh(
                "POST",
                bulk_path,
                json={
                    "agents": [
                        {"agent-id": BOB, "agent-status": 5},
                        {"agent-id": RITA, "agent-status": 3},
                        {"agent-id": AVA, "agent-status": 5},
                    ]
                },
            )
            assert [r["change-status"] for r in bulk.json()["data"]] == [200, 400, 200]
            placed = served.fresh(
                "PUT",
                f"/__admin/tenants/{DEMO_TENANT}/agents/{RITA}",
                json={"group-id": 200, "agent-status": 9},
            )
            assert placed.status_code == 200
            created = served.fresh(
                "PUT",
                f"/__admin/tenants/{DEMO_TENANT}/agents/agNEW",
                json={"group-id": 200, "agent-status": 1},
            )
            assert created.status_code == 201
            assert served.fresh("DELETE", f"/__admin/tenants/{DEMO_TENANT}/agents/agNEW").ok
            events = await receive(socket, 6)
            return events, await silent(socket)

    events, then_silent = asyncio.run(scenario())
    seen = [
        (kind, body["agentId"], body.get("newState", body.get("event")))
        for kind, body in (next(iter(payload(m).items())) for m in events)
    ]
    assert seen == [
        ("AgentStatusChange", BOB, 5),
        ("AgentStatusChange", AVA, 5),
        ("AgentStatusChange", RITA, 9),
        ("AgentProvChange", "agNEW", "AgentCreated"),
        ("AgentStatusChange", "agNEW", 1),
        ("AgentProvChange", "agNEW", "AgentDeleted"),
    ]
    numbers = [payload(m)[next(iter(payload(m)))]["msgInfo"]["sequenceId"] for m in events]
    assert numbers == list(range(numbers[0], numbers[0] + 6))
    assert then_silent


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"X-API-Key": DEMO_TOKEN}, {}),
        ({"x-api-key": DEMO_TOKEN}, {}),
        ({"X-Api-Key": base64.b64encode(f"{DEMO_USERNAME}:{DEMO_TOKEN}".encode()).decode()}, {}),
        ({}, {"x-api-key": DEMO_TOKEN}),
        (basic(DEMO_USERNAME, DEMO_TOKEN), {}),
        ({}, {"token": basic(DEMO_USERNAME, DEMO_TOKEN)["Authorization"]}),
    ],
    ids=["header", "header lowercase", "CC token form", "query", "Basic", "token=Basic+"],
)
def test_the_documented_ways_to_give_the_key_are_accepted(
    served: Served, headers: dict[str, str], query: dict[str, str]
) -> None:
    assert refusal(served, ws_url(served, **query), headers) == 101


@pytest.mark.parametrize(
    ("path", "headers", "query", "status"),
    [
        (ALL, {}, {}, 401),
        (ALL, {"X-API-Key": "wrong"}, {}, 401),
        (ALL, {}, {"X-API-KEY": DEMO_TOKEN}, 401),  # the parameter's name is case-sensitive
        (f"/ws/v2/reader/persistent/{OTHER_TENANT}/event-v1/all", KEY, {}, 401),
        ("/ws/v2/reader/persistent/nosuch/event-v1/all", KEY, {}, 401),
        (f"/ws/v2/reader/persistent/{DEMO_TENANT}/event-v1/NoSuchEvent", KEY, {}, 404),
        (f"/ws/v2/reader/persistent/{DEMO_TENANT}/other-v1/all", KEY, {}, 404),
        ("/ws/v1/anything", KEY, {}, 404),
        (ALL, KEY, {"messageId": "not-an-id"}, 400),
        (ALL, KEY, {"receiverQueueSize": "0"}, 400),
    ],
)
def test_a_refused_handshake_answers_its_status(
    served: Served, path: str, headers: dict[str, str], query: dict[str, str], status: int
) -> None:
    assert refusal(served, ws_url(served, path, **query), headers) == status


def test_earliest_latest_and_a_message_id_resume_where_asked(served: Served) -> None:
    async def scenario() -> tuple[list[str], list[str], bool]:
        async with websockets.connect(ws_url(served), extra_headers=KEY) as socket:
            for status in (5, 4, 5):
                assert put(served, BOB, {"agent-status": status}).status_code == 200
            ids = [m["messageId"] for m in await receive(socket, 3)]
        async with websockets.connect(ws_url(served, messageId=ids[0]), extra_headers=KEY) as s:
            after_first = [m["messageId"] for m in await receive(s, 2)]
        async with websockets.connect(ws_url(served, messageId="earliest"), extra_headers=KEY) as s:
            first = (await receive(s, 1))[0]["messageId"]
        async with websockets.connect(ws_url(served, messageId="latest"), extra_headers=KEY) as s:
            nothing_old = await silent(s)
        assert sequence_of(first) <= sequence_of(ids[0])
        return ids, after_first, nothing_old

    ids, after_first, nothing_old = asyncio.run(scenario())
    assert after_first == ids[1:]
    assert nothing_old


def test_topics_of_one_event_type_or_one_agent_carry_only_theirs(served: Served) -> None:
    by_agent = f"/ws/v2/reader/persistent/{DEMO_TENANT}/agent-v1/{AVA}"
    provisioning = f"/ws/v2/reader/persistent/{DEMO_TENANT}/event-v1/AgentProvChange"

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with (
            websockets.connect(ws_url(served, by_agent), extra_headers=KEY) as agent,
            websockets.connect(ws_url(served, provisioning), extra_headers=KEY) as prov,
        ):
            assert put(served, BOB, {"agent-status": 5}).status_code == 200
            assert put(served, AVA, {"agent-status": 5}).status_code == 200
            added = served.fresh(
                "PUT",
                f"/__admin/tenants/{DEMO_TENANT}/agents/agX",
                json={"group-id": 200, "agent-status": 1},
            )
            assert added.status_code == 201
            got_agent, got_prov = await receive(agent, 1), await receive(prov, 1)
            assert await silent(agent) and await silent(prov)
            return got_agent, got_prov

    got_agent, got_prov = asyncio.run(scenario())
    assert payload(got_agent[0])["AgentStatusChange"]["agentId"] == AVA
    assert payload(got_prov[0])["AgentProvChange"]["agentId"] == "agX"


def test_a_topic_of_one_interaction_type_carries_exactly_those_events(served: Served) -> None:
    created = f"/ws/v2/reader/persistent/{DEMO_TENANT}/event-v1/InteractionCreated"
    log = f"/__admin/tenants/{DEMO_TENANT}/events"
    before = served.fresh("GET", log).json()["last"]

    async def scenario() -> list[dict[str, Any]]:
        async with websockets.connect(ws_url(served, created), extra_headers=KEY) as calls:
            begun = served.fresh("POST", "/__admin/simulation", json={"speed": 0, "seed": 3})
            assert begun.status_code == 200, begun.text
            moved = served.fresh("POST", "/__admin/clock", json={"advance-seconds": 900})
            assert moved.status_code == 200, moved.text
            seen = []
            while not await silent_or(calls, seen):
                pass
            return seen

    streamed = asyncio.run(scenario())
    logged = served.fresh("GET", f"{log}?after={before}&limit=1000").json()
    assert logged["last"] - before < 1000, "more events than one page: shorten the clock move"
    expected = [
        entry["event"]
        for entry in logged["events"]
        if entry["event"].get("Interaction", {}).get("event") == "InteractionCreated"
    ]
    assert expected, "the simulation made no call in 15 simulated minutes"
    assert streamed == expected


async def silent_or(socket: Any, into: list[dict[str, Any]]) -> bool:
    """True when nothing more arrives; otherwise the message's payload goes ``into``."""
    try:
        raw = await asyncio.wait_for(socket.recv(), QUIET_SECONDS)
    except TimeoutError:
        return True
    into.append(payload(decoded(raw)))
    return False


def test_no_more_than_the_receiver_queue_until_acknowledged(served: Served) -> None:
    async def scenario() -> tuple[int, bool, int]:
        async with websockets.connect(
            ws_url(served, receiverQueueSize="2"), extra_headers=KEY
        ) as s:
            for status in (5, 4, 5, 4):
                assert put(served, BOB, {"agent-status": status}).status_code == 200
            first = await receive(s, 2)
            held = await silent(s)
            for message in first:
                await s.send(json.dumps({"messageId": message["messageId"]}))
            rest = await receive(s, 2)
            await s.send(json.dumps({"type": "isEndOfTopic"}))
            end = await receive(s, 1)
            assert end == [{"endOfTopic": False}]
            return len(first), held, len(rest)

    assert asyncio.run(scenario()) == (2, True, 2)


def test_another_tenants_changes_never_reach_a_reader(served: Served) -> None:
    async def scenario() -> bool:
        async with websockets.connect(ws_url(served), extra_headers=KEY) as socket:
            other = served.fresh(
                "PUT",
                api_path(OTHER_TENANT, "/agYr_8pLYeeVLSWdsbkx5q2n"),
                json={"agent-status": 5},
                headers=basic("globexapi", "globex-demo-token"),
            )
            assert other.status_code == 200
            return await silent(socket)

    assert asyncio.run(scenario())


def test_message_ids_look_like_pulsars_and_round_trip() -> None:
    assert message_id(1) == "CAEQAQ=="  # the vendor's sample id
    for number in (1, 127, 128, 300, 2**40):
        assert sequence_of(message_id(number)) == number
    for bad in ("", "!!", base64.b64encode(b"\x0a\x01").decode(), "CAEQ"):
        with pytest.raises(ValueError):
            sequence_of(bad)


def test_two_workers_deliver_every_event_to_every_reader_in_one_order(tmp_path: Path) -> None:
    """Readers on several connections (so on either worker) while writes go to either worker:
    each reader gets every event once, in the same order, numbered without a gap."""
    writes = 60
    with serve(tmp_path, "--workers", "2", "--state", str(tmp_path / "state.db")) as two:

        async def scenario() -> list[list[int]]:
            readers = [await websockets.connect(ws_url(two), extra_headers=KEY) for _ in range(4)]
            try:
                rng = random.Random(7)
                loop = asyncio.get_running_loop()
                status = {BOB: 4, AVA: 4}
                for _ in range(writes):
                    agent = rng.choice([BOB, AVA])
                    status[agent] = 9 - status[agent]  # 4 and 5 in turn: each write a change
                    answer = await loop.run_in_executor(
                        None, put, two, agent, {"agent-status": status[agent]}
                    )
                    assert answer.status_code == 200
                got = [await receive(reader, writes) for reader in readers]
                for reader in readers:
                    assert await silent(reader)
                return [
                    [payload(m)["AgentStatusChange"]["msgInfo"]["sequenceId"] for m in messages]
                    for messages in got
                ]
            finally:
                for reader in readers:
                    await reader.close()

        numbers = asyncio.run(scenario())
    assert all(sequence == numbers[0] for sequence in numbers)
    assert numbers[0] == list(range(numbers[0][0], numbers[0][0] + writes))
