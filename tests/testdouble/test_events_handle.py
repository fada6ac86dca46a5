"""``emulator.events`` (the handle the pytest plugin and ``emulate()`` give): wait for the
event a change emits, or rule one out, in-process and over HTTP alike."""

from __future__ import annotations

import pytest
import requests
from conftest import DEMO_TENANT, DEMO_TOKEN, DEMO_USERNAME

from mock_server.harness.handle import Emulator, EventTimeout
from mock_server.harness.inprocess import emulate
from mock_server.serving.threaded import RunningServer

BOB = "agAQDqmvKiRbG4ekigNSmbbb"  # 4 WAIT_TRANSACT
RITA = "agRv3Dr0501kiKmeknUt_tiy"  # 6 TRANSACT_OFFERED: no break for her


def set_status(emulator: Emulator, agent: str, status: int) -> int:
    url = f"{emulator.agents_url}/{agent}"
    return requests.put(url, json={"agent-status": status}, auth=emulator.auth).status_code


def test_in_process_a_change_is_waited_for_and_a_refusal_emits_nothing() -> None:
    with emulate() as emulator:
        assert set_status(emulator, BOB, 5) == 200
        change = emulator.events.wait_for("AgentStatusChange", agentId=BOB, newState=5)
        assert change["msgInfo"]["sequenceId"] >= 1
        assert set_status(emulator, RITA, 3) == 400
        emulator.events.assert_none()


def test_from_now_passes_over_what_came_before() -> None:
    with emulate() as emulator:
        assert set_status(emulator, BOB, 5) == 200
        later = Emulator(emulator.base_url, DEMO_TENANT, DEMO_USERNAME, DEMO_TOKEN)
        assert next(iter(later.events.new()[0])) == "AgentStatusChange"  # the log's start
        later.events.from_now().assert_none()
        emulator.put_agent("agNEW", 1, 100)
        assert [next(iter(e)) for e in later.events.new()] == [
            "AgentProvChange",
            "AgentStatusChange",
        ]


def test_a_timeout_names_what_came_instead() -> None:
    with emulate() as emulator:
        assert set_status(emulator, BOB, 5) == 200
        with pytest.raises(EventTimeout, match=r"newState=3 within 0\.1s.*newState=5"):
            emulator.events.wait_for("AgentStatusChange", newState=3, timeout=0.1)


def test_over_http_the_same(live: RunningServer) -> None:
    base = f"http://{live.host}:{live.port}"
    emulator = Emulator(base, DEMO_TENANT, DEMO_USERNAME, DEMO_TOKEN)
    emulator.events.from_now()  # the session's server keeps the events of earlier tests
    assert set_status(emulator, BOB, 5) == 200
    assert emulator.events.wait_for(agentId=BOB)["newState"] == 5
