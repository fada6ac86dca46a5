"""emulate() for httpx users: httpx.Client and httpx.AsyncClient reach the emulator, no socket."""

from __future__ import annotations

import asyncio
import pickle
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from mock_server.harness.inprocess import emulate

AGENT = "agAQDqmvKiRbG4ekigNSmbbb"
OTHER_TENANT = "https://vcc-na12.8x8.com/api/v1/tenants/globex02/agentstatus/agents"
DEMO_AUTH = ("myclientId", "nevertellanyone")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any attempt to open a connection fails the test: in-process means no network."""

    def refuse(*args: object, **kwargs: object) -> socket.socket:
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every ``time.sleep`` (the sync path's latency), recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


@pytest.fixture
def async_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every ``asyncio.sleep`` (the async path's latency), recorded, then yielding at once."""
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def recording_sleep(seconds: float) -> None:
        slept.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    return slept


@pytest.mark.usefixtures("no_sockets")
def test_a_sync_client_gets_puts_and_sends_bulk_in_process() -> None:
    with emulate() as emulator, httpx.Client(auth=DEMO_AUTH) as client:
        got = client.get(f"{emulator.agents_url}/{AGENT}")
        assert (got.status_code, got.reason_phrase, got.json()["agent-status"]) == (200, "OK", 4)
        assert got.headers["content-type"] == "application/json"
        listed = client.get(emulator.agents_url, params={"groupId": "300"}).json()["data"]
        assert len(listed) == 3
        put = client.put(f"{emulator.agents_url}/{AGENT}", json={"agent-status": 3})
        assert put.json()["reason"] == "OK"
        body = {"agents": [{"agent-id": AGENT, "agent-status": 5}]}
        bulk = client.post(f"{emulator.agents_url}/bulk", json=body)
        assert (bulk.status_code, bulk.json()["data"][0]["change-status"]) == (207, 200)
        assert emulator.agent(AGENT)["agent-status"] == 5
        emulator.journal.assert_sent_changes([(AGENT, 3), (AGENT, 5)])


@pytest.mark.usefixtures("no_sockets")
def test_an_async_client_gets_puts_and_sends_bulk_in_process() -> None:
    async def calls(agents_url: str) -> list[object]:
        async with httpx.AsyncClient(auth=DEMO_AUTH) as client:
            got = await client.get(f"{agents_url}/{AGENT}")
            put = await client.put(f"{agents_url}/{AGENT}", json={"agent-status": 3})
            body = {"agents": [{"agent-id": AGENT, "agent-status": 5}]}
            bulk = await client.put(f"{agents_url}/bulk", json=body)
            return [got.json()["agent-status"], put.json()["reason"], bulk.status_code]

    with emulate() as emulator:
        assert asyncio.run(calls(emulator.agents_url)) == [4, "OK", 207]
        entries = emulator.journal.entries()
        assert [(e["method"], e["status"], e["outcome"]) for e in entries] == [
            ("GET", 200, "answered"),
            ("PUT", 200, "answered"),
            ("PUT", 207, "answered"),
        ]
        assert entries[1]["request"]["body"] == {"agent-status": 3}
        assert entries[1]["request"]["headers"]["Authorization"] == "Basic ***"
        emulator.journal.assert_sent_changes([(AGENT, 3), (AGENT, 5)])


def test_the_403_gates_answer_httpx_as_they_answer_requests() -> None:
    with emulate() as emulator:
        other = httpx.get(OTHER_TENANT, auth=DEMO_AUTH)
        assert other.status_code == 403
        assert other.json()["detail"] == "You are not authorized to access this tenant."
        emulator.set_api_enabled(False)

        async def disabled() -> httpx.Response:
            async with httpx.AsyncClient(auth=DEMO_AUTH) as client:
                return await client.get(emulator.agents_url)

        refused = asyncio.run(disabled())
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/xml")
        assert refused.text == "<API><Error>403 - Forbidden.</Error></API>"


def test_a_sync_latency_is_slept_and_one_over_the_read_timeout_raises(
    sleeps: list[float],
) -> None:
    with emulate() as emulator:
        emulator.faults.delay(300, times=1)
        assert httpx.get(emulator.agents_url, auth=DEMO_AUTH, timeout=5).status_code == 200
        emulator.faults.delay(5_000, times=1)
        with pytest.raises(httpx.ReadTimeout, match=r"0\.05s read timeout"):
            httpx.get(emulator.agents_url, auth=DEMO_AUTH, timeout=httpx.Timeout(5, read=0.05))
        assert sleeps == [0.3, 0.05]
        outcomes = [entry["outcome"] for entry in emulator.journal.entries()]
        assert outcomes == ["answered", "timed-out"]


def test_an_async_latency_is_awaited_and_one_over_the_read_timeout_raises(
    async_sleeps: list[float], sleeps: list[float]
) -> None:
    async def calls(agents_url: str) -> int:
        async with httpx.AsyncClient(auth=DEMO_AUTH) as client:
            answered = await client.get(agents_url, timeout=5)
            with pytest.raises(httpx.ReadTimeout, match=r"0\.05s read timeout"):
                await client.get(agents_url, timeout=httpx.Timeout(5, read=0.05))
            return answered.status_code

    with emulate() as emulator:
        emulator.faults.delay(300, times=1)
        emulator.faults.delay(5_000, times=1)
        assert asyncio.run(calls(emulator.agents_url)) == 200
        assert (async_sleeps, sleeps) == ([0.3, 0.05], [])
        outcomes = [entry["outcome"] for entry in emulator.journal.entries()]
        assert outcomes == ["answered", "timed-out"]


def test_two_delayed_async_requests_wait_together() -> None:
    """Both requests are sent before either is answered: the latency does not hold the loop."""
    events: list[str] = []

    def hook(name: str) -> Callable[[object], Awaitable[None]]:
        async def record(_: object) -> None:
            events.append(name)

        return record

    async def both(agents_url: str) -> list[int]:
        hooks = {"request": [hook("sent")], "response": [hook("answered")]}
        async with httpx.AsyncClient(auth=DEMO_AUTH, event_hooks=hooks) as client:
            first, second = await asyncio.gather(
                client.get(f"{agents_url}/{AGENT}"), client.get(agents_url)
            )
            return [first.status_code, second.status_code]

    with emulate() as emulator:
        emulator.faults.delay(200, times=2)
        assert asyncio.run(both(emulator.agents_url)) == [200, 200]
        assert events == ["sent", "sent", "answered", "answered"]


DROP_CAUGHT_BY = pytest.mark.parametrize(
    "caught", [httpx.RemoteProtocolError, httpx.ConnectError], ids=["remote-protocol", "connect"]
)
"""What a real dropped connection raises in httpx, and what the issue promised: either
``except`` catches an emulated drop."""


@DROP_CAUGHT_BY
@pytest.mark.usefixtures("no_sockets")
def test_a_sync_drop_is_caught_as_either_error(caught: type[httpx.HTTPError]) -> None:
    with emulate() as emulator:
        emulator.faults.drop(times=1)
        with pytest.raises(caught, match="without sending a response") as raised:
            httpx.get(emulator.agents_url, auth=DEMO_AUTH)
        assert raised.value.request.url == emulator.agents_url
        assert httpx.get(emulator.agents_url, auth=DEMO_AUTH).status_code == 200
        outcomes = [entry["outcome"] for entry in emulator.journal.entries()]
        assert outcomes == ["dropped", "answered"]


@DROP_CAUGHT_BY
@pytest.mark.usefixtures("no_sockets")
def test_an_async_drop_is_caught_as_either_error(caught: type[httpx.HTTPError]) -> None:
    async def dropped(agents_url: str) -> int:
        async with httpx.AsyncClient(auth=DEMO_AUTH) as client:
            try:
                await client.get(agents_url)
            except caught as error:
                assert "without sending a response" in str(error)
                assert error.request.url == agents_url
            else:
                pytest.fail("the drop raised nothing")
            return (await client.get(agents_url)).status_code

    with emulate() as emulator:
        emulator.faults.drop(times=1)
        assert asyncio.run(dropped(emulator.agents_url)) == 200
        outcomes = [entry["outcome"] for entry in emulator.journal.entries()]
        assert outcomes == ["dropped", "answered"]


def test_a_drop_error_pickles_as_httpx_errors_do() -> None:
    """A drop raised in a worker process reaches the parent (multiprocessing, pytest-xdist)
    as the same error, still caught by either class."""
    with emulate() as emulator:
        emulator.faults.drop(times=1)
        with pytest.raises(httpx.TransportError) as raised:
            httpx.get(emulator.agents_url, auth=DEMO_AUTH)
    copy = pickle.loads(pickle.dumps(raised.value))
    assert type(copy) is type(raised.value)
    assert isinstance(copy, httpx.ConnectError) and isinstance(copy, httpx.RemoteProtocolError)
    assert (str(copy), copy.request.url) == (str(raised.value), emulator.agents_url)


def test_other_urls_go_to_the_transport_in_place_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """A mock that patched httpx's transports first (respx does) still gets every URL the
    emulator does not take, and has them back afterwards."""
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(299, text="mocked")

    mock = httpx.MockTransport(answer)

    def mocked_sync(transport: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        return mock.handle_request(request)

    async def mocked_async(
        transport: httpx.AsyncHTTPTransport, request: httpx.Request
    ) -> httpx.Response:
        return await mock.handle_async_request(request)

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", mocked_sync)
    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", mocked_async)

    async def async_codes(agents_url: str) -> list[int]:
        async with httpx.AsyncClient(auth=DEMO_AUTH) as client:
            return [
                (await client.get("https://example.com/async")).status_code,
                (await client.get(agents_url)).status_code,
            ]

    with emulate() as emulator:
        assert httpx.get("https://example.com/sync").status_code == 299
        assert httpx.get("https://8x8.com.evil.example/").status_code == 299
        assert httpx.get(emulator.agents_url, auth=DEMO_AUTH).status_code == 200
        assert asyncio.run(async_codes(emulator.agents_url)) == [299, 200]
    assert httpx.get(emulator.agents_url, auth=DEMO_AUTH).status_code == 299
    assert seen == [
        "https://example.com/sync",
        "https://8x8.com.evil.example/",
        "https://example.com/async",
        emulator.agents_url,
    ]
    assert vars(httpx.HTTPTransport)["handle_request"] is mocked_sync
    assert vars(httpx.AsyncHTTPTransport)["handle_async_request"] is mocked_async


def test_a_client_given_its_own_transport_keeps_it() -> None:
    mock = httpx.MockTransport(lambda request: httpx.Response(299))
    with emulate() as emulator, httpx.Client(transport=mock) as client:
        assert client.get(emulator.agents_url).status_code == 299
        assert emulator.journal.entries() == []


@pytest.mark.usefixtures("no_sockets")
def test_nested_emulators_route_httpx_to_the_innermost_until_the_outer_ends() -> None:
    with emulate() as outer:
        with emulate(profile="guide") as inner:
            response = httpx.post(f"{inner.agents_url}/bulk", auth=DEMO_AUTH, json={})
            assert response.status_code == 405
        body: dict[str, list[object]] = {"agents": []}
        response = httpx.post(f"{outer.agents_url}/bulk", auth=DEMO_AUTH, json=body)
        assert response.status_code == 207


def test_emulate_works_without_httpx_installed() -> None:
    """httpx is optional: with its import blocked, requests is still served and nothing
    imports httpx."""
    program = (
        "import sys\n"
        "sys.modules['httpx'] = None\n"
        "import requests\n"
        "from mock_server import emulate\n"
        "with emulate() as emulator:\n"
        "    print(requests.get(emulator.agents_url, auth=emulator.auth).status_code)\n"
        "print(sorted(name for name, module in sys.modules.items()\n"
        "             if 'httpx' in name and module is not None))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "200\n[]\n", "")
