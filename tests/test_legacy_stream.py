"""The legacy Streaming API (SAPI): its formats, credentials, the three-subscription limit,
resuming a subscription id, heartbeats and the hour's end (with the durations scaled down)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import pytest
import websockets
from conftest import DEMO_TENANT, DEMO_TOKEN, DEMO_USERNAME, api_path, basic
from support_serving import Served, serve

from mock_server.app import create_app
from mock_server.core.backend import AgentStatusBackend, StatusChange
from mock_server.core.errors import ApiError
from mock_server.http.context import EXTENSION
from mock_server.http.legacy_stream import LegacyTimes, open_subscription
from schemas.rules import AgentStatus

BOB = "agAQDqmvKiRbG4ekigNSmbbb"
AUTH = basic(DEMO_USERNAME, DEMO_TOKEN)
SECONDS = 5.0


def subscribe_path(subscription: str, tenant: str = DEMO_TENANT, **query: str) -> str:
    params = {"tenantId": tenant, "subsId": subscription, **query}
    return (
        f"/api/streaming/v1/clientconnect/subscribe/TenantUpdates-{tenant}-{subscription}"
        f"?{urlencode(params)}"
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("sapi")) as running:
        yield running


def url(served: Served, path: str) -> str:
    return served.base.replace("http://", "ws://") + path


def set_bob(served: Served, status: int) -> None:
    answer = served.fresh("PUT", api_path(suffix=f"/{BOB}"), json={"agent-status": status})
    assert answer.status_code == 200, answer.text


async def next_message(socket: Any) -> str:
    message = await asyncio.wait_for(socket.recv(), SECONDS)
    assert isinstance(message, str)
    return message


def refused(served: Served, path: str, headers: dict[str, str]) -> int:
    async def attempt() -> int:
        try:
            async with websockets.connect(url(served, path), extra_headers=headers):
                return 101
        except websockets.InvalidStatusCode as refusal:
            return refusal.status_code

    return asyncio.run(attempt())


@pytest.mark.parametrize("output", ["JSON", "NEWLINE_JSON", "XML", "NEWLINE_XML"])
def test_each_output_type_carries_the_agent_status_change(served: Served, output: str) -> None:
    async def scenario() -> str:
        path = subscribe_path(f"fmt-{output.lower()}", desiredOutputType=output)
        async with websockets.connect(url(served, path), extra_headers=AUTH) as socket:
            set_bob(served, 5)
            set_bob(served, 4)
            return await next_message(socket)

    text = asyncio.run(scenario())
    assert text.endswith("\n") == output.startswith("NEWLINE_")
    if output.endswith("JSON"):
        change = json.loads(text)["AgentStatusChange"]
        assert (change["agentId"], change["newState"]) == (BOB, 5)
        assert set(change["msgInfo"]) == {"instanceId", "sequenceId", "timestamp"}
    else:
        root = ElementTree.fromstring(text.strip())
        assert root.tag == "AgentStatusChange"
        assert (root.findtext("agentId"), root.findtext("newState")) == (BOB, "5")
        assert root.find("msgInfo/sequenceId") is not None


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        (subscribe_path("a"), {}, 401),
        (subscribe_path("a"), basic(DEMO_USERNAME, "wrong"), 401),
        (subscribe_path("a", tenant="globex02"), AUTH, 401),
        (subscribe_path("a").replace("subsId=a", "subsId=b"), AUTH, 400),
        (subscribe_path("a", desiredOutputType="CSV"), AUTH, 400),
        ("/api/streaming/v1/elsewhere", AUTH, 404),
    ],
    ids=["no credentials", "wrong token", "other tenant", "ids differ", "bad type", "path"],
)
def test_a_refused_subscription_answers_its_status(
    served: Served, path: str, headers: dict[str, str], status: int
) -> None:
    assert refused(served, path, headers) == status


def test_the_token_may_travel_as_a_query_parameter(served: Served) -> None:
    path = subscribe_path("by-query", token=AUTH["Authorization"])
    assert refused(served, path, {}) == 101


def test_three_subscriptions_at_once_and_an_id_only_once(served: Served) -> None:
    async def scenario() -> tuple[int, int, int]:
        sockets = [
            await websockets.connect(url(served, subscribe_path(f"limit-{n}")), extra_headers=AUTH)
            for n in range(3)
        ]
        try:
            fourth = await asyncio.to_thread(refused, served, subscribe_path("limit-3"), AUTH)
            again = await asyncio.to_thread(refused, served, subscribe_path("limit-0"), AUTH)
        finally:
            for socket in sockets:
                await socket.close()
        await asyncio.sleep(0.3)  # the server notices the departures
        after = await asyncio.to_thread(refused, served, subscribe_path("limit-3"), AUTH)
        return fourth, again, after

    assert asyncio.run(scenario()) == (429, 409, 101)


def test_reconnecting_with_the_same_id_delivers_what_was_missed(served: Served) -> None:
    async def scenario() -> list[int]:
        path = subscribe_path("resume-me")
        async with websockets.connect(url(served, path), extra_headers=AUTH) as socket:
            set_bob(served, 5)
            await next_message(socket)
        await asyncio.sleep(0.3)
        set_bob(served, 4)
        set_bob(served, 5)
        async with websockets.connect(url(served, path), extra_headers=AUTH) as socket:
            missed = [json.loads(await next_message(socket)) for _ in range(2)]
        async with websockets.connect(
            url(served, subscribe_path("brand-new")), extra_headers=AUTH
        ) as socket:  # a new id starts from now: nothing of before
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(socket.recv(), 0.3)
        set_bob(served, 4)
        return [m["AgentStatusChange"]["newState"] for m in missed]

    assert asyncio.run(scenario()) == [4, 5]


class Pipe:
    """An in-process channel: what the session sends is kept; the client leaves on demand."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.leave = asyncio.Event()

    async def send(self, text: str) -> None:
        self.sent.append(text)

    async def receive(self) -> str | None:
        await self.leave.wait()
        return None


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def backend_of_app() -> AgentStatusBackend:
    backend: AgentStatusBackend = create_app().extensions[EXTENSION].backend
    return backend


def test_heartbeats_come_and_the_hour_ends_the_subscription() -> None:
    backend, clock = backend_of_app(), Clock()
    times = LegacyTimes(scale=0.001)  # an hour is 3.6 s, a heartbeat 0.05 s

    async def scenario() -> list[dict[str, Any]]:
        query = urlencode({"tenantId": DEMO_TENANT, "subsId": "hb"})
        session = open_subscription(
            backend,
            f"/api/streaming/v1/clientconnect/subscribe/TenantUpdates-{DEMO_TENANT}-hb",
            query,
            {"authorization": AUTH["Authorization"]},
            times,
            clock,
        )
        pipe = Pipe()
        task = asyncio.create_task(session.run(pipe))
        for _ in range(4):
            await asyncio.sleep(0.02)
            clock.now += times.heartbeat
        backend.set_agent_status(DEMO_TENANT, BOB, StatusChange(AgentStatus(5), None, None, None))
        await asyncio.sleep(0.05)
        clock.now += times.session
        await asyncio.wait_for(task, SECONDS)  # ended by the server, the client still there
        return [json.loads(text) for text in pipe.sent]

    messages = asyncio.run(scenario())
    kinds = [next(iter(message)) for message in messages]
    assert kinds.count("ClientCheck") >= 2 and "AgentStatusChange" in kinds
    beat = next(m["ClientCheck"] for m in messages if "ClientCheck" in m)
    assert (beat["heartbeat"], beat["subscription-id"], beat["tenant-id"]) == (
        "[HEARTBEAT]",
        "hb",
        DEMO_TENANT,
    )


def test_serve_scales_the_hour_and_the_heartbeats_down(tmp_path: Path) -> None:
    """``--stream-time-scale 0.0005``: the hour is 1.8 s and a heartbeat comes every 0.05 s."""
    with serve(tmp_path, "--stream-time-scale", "0.0005") as scaled:

        async def scenario() -> tuple[float, list[str]]:
            loop = asyncio.get_running_loop()
            kinds: list[str] = []
            async with websockets.connect(
                url(scaled, subscribe_path("short")), extra_headers=AUTH
            ) as socket:
                began = loop.time()
                with pytest.raises(websockets.ConnectionClosed):
                    while True:
                        message = await asyncio.wait_for(socket.recv(), SECONDS)
                        kinds.append(next(iter(json.loads(message))))
                return loop.time() - began, kinds

        lasted, kinds = asyncio.run(scenario())
    assert 1.5 < lasted < SECONDS
    assert kinds.count("ClientCheck") >= 10


def test_after_two_hours_away_an_id_is_a_new_subscription() -> None:
    backend, clock = backend_of_app(), Clock()
    times = LegacyTimes(scale=0.001)
    path = f"/api/streaming/v1/clientconnect/subscribe/TenantUpdates-{DEMO_TENANT}-away"
    query = urlencode({"tenantId": DEMO_TENANT, "subsId": "away"})
    headers = {"authorization": AUTH["Authorization"]}

    async def visit() -> bool:
        """Connect, and leave at once; whether the id resumed what it had missed."""
        session = open_subscription(backend, path, query, headers, times, clock)
        pipe = Pipe()
        pipe.leave.set()
        await session.run(pipe)
        return session.resumed

    assert not asyncio.run(visit())
    backend.set_agent_status(DEMO_TENANT, BOB, StatusChange(AgentStatus(5), None, None, None))
    clock.now += times.retention / 2
    assert asyncio.run(visit())
    clock.now += times.retention + 1
    fresh = open_subscription(backend, path, query, headers, times, clock)
    assert not fresh.resumed
    assert fresh.cursor == backend.last_event(DEMO_TENANT)


def test_a_refusal_is_an_api_error_with_its_status() -> None:
    backend = backend_of_app()
    with pytest.raises(ApiError) as refused_error:
        open_subscription(backend, "/api/streaming/v1/x", "", {}, LegacyTimes())
    assert refused_error.value.status == 404


def test_the_limit_and_resuming_hold_across_two_workers(tmp_path: Path) -> None:
    """Connections land on either worker; the subscriptions are one shared record."""
    with serve(tmp_path, "--workers", "2", "--state", str(tmp_path / "state.db")) as two:

        async def scenario() -> tuple[int, list[int]]:
            sockets = [
                await websockets.connect(url(two, subscribe_path(f"w-{n}")), extra_headers=AUTH)
                for n in range(3)
            ]
            fourth = await asyncio.to_thread(refused, two, subscribe_path("w-3"), AUTH)
            await sockets[0].close()
            for socket in sockets[1:]:
                await socket.close()
            await asyncio.sleep(0.3)
            set_bob(two, 5)
            set_bob(two, 4)
            path = url(two, subscribe_path("w-0"))
            async with websockets.connect(path, extra_headers=AUTH) as again:
                missed = [json.loads(await next_message(again)) for _ in range(2)]
            return fourth, [m["AgentStatusChange"]["newState"] for m in missed]

        assert asyncio.run(scenario()) == (429, [5, 4])
