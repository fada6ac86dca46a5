"""Retries: which failures are retried for which call, how long the client waits, and when
it stops. Time is a recorder: nothing really sleeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from support_client import Canned, Recorder, ScriptedServer, make_client, refused_url, scripted

from client import (
    AgentStatus,
    ChangeRejectedError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    StatusChange,
    TransportError,
)

AGENT = {"agent-id": "agA", "agent-status": 4}
BULK_OK = {"data": [{"agent-id": "agA", "change-status": 200, "reason": "OK"}]}
SET_OK = {"reason": "OK", "change-status": 200, "message": "Agent status change successful"}
DROP = Canned(drop=True)


def test_a_read_waits_as_retry_after_says_then_succeeds() -> None:
    time = Recorder()
    with (
        scripted(Canned(503, "busy", {"Retry-After": "2"}), Canned(body=AGENT)) as server,
        make_client(server.api_url, retry=time.policy()) as api,
    ):
        assert api.get_agent("agA").status is AgentStatus.WAIT_TRANSACT
    assert time.sleeps == [2.0]
    assert len(server.seen) == 2


def test_retry_after_as_an_http_date() -> None:
    time = Recorder()
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=6), usegmt=True)
    with (
        scripted(Canned(429, "later", {"Retry-After": when}), Canned(body=AGENT)) as server,
        make_client(server.api_url, retry=time.policy()) as api,
    ):
        api.get_agent("agA")
    assert len(time.sleeps) == 1
    assert 4.0 < time.sleeps[0] <= 6.0


def test_backoff_is_exponential_full_jitter_and_bounded_in_count() -> None:
    time = Recorder()
    draws = iter([1.0, 0.5, 0.25])
    policy = time.policy(max_attempts=4, base_delay=1.0, max_delay=3.0, random=lambda: next(draws))
    with (
        scripted(*[Canned(500, "boom")] * 5) as server,
        make_client(server.api_url, retry=policy) as api,
        pytest.raises(ServerError) as failed,
    ):
        api.list_agents()
    assert time.sleeps == [1.0 * 1.0, 0.5 * 2.0, 0.25 * 3.0]
    assert len(server.seen) == 4
    assert failed.value.attempts == 4


def test_retrying_stops_when_the_time_budget_would_be_exceeded() -> None:
    time = Recorder()
    policy = time.policy(max_attempts=10, base_delay=4.0, max_delay=4.0, max_elapsed=10.0)
    with (
        scripted(*[Canned(503, "down")] * 10) as server,
        make_client(server.api_url, retry=policy) as api,
        pytest.raises(ServerError),
    ):
        api.list_agents()
    assert time.sleeps == [4.0, 4.0]
    assert len(server.seen) == 3


def test_a_retry_after_beyond_the_budget_is_raised_at_once() -> None:
    time = Recorder()
    reply = Canned(429, "later", {"Retry-After": "120"})
    with (
        scripted(reply) as server,
        make_client(server.api_url, retry=time.policy()) as api,
        pytest.raises(RateLimitedError) as failed,
    ):
        api.list_agents()
    assert failed.value.retry_after == 120.0
    assert time.sleeps == []
    assert len(server.seen) == 1


def test_a_refusal_is_never_retried() -> None:
    time = Recorder()
    reply = Canned(400, {"status": 400, "detail": "no"})
    with (
        scripted(reply, Canned(body=SET_OK)) as server,
        make_client(server.api_url, retry=time.policy()) as api,
        pytest.raises(ChangeRejectedError),
    ):
        api.set_agent_status("agA", 3)
    assert len(server.seen) == 1


def test_connection_refused_is_retried_even_for_bulk() -> None:
    """Nothing was sent, so repeating a write is safe."""
    time = Recorder()
    with (
        make_client(refused_url(), retry=time.policy(max_attempts=3)) as api,
        pytest.raises(TransportError) as failed,
    ):
        api.set_agents_statuses([StatusChange("agA", 3)])
    assert failed.value.sent is False
    assert failed.value.attempts == 3
    assert time.sleeps == [0.5, 1.0]


def run(server: ScriptedServer, call: str) -> None:
    with make_client(server.api_url, retry=Recorder().policy()) as api:
        if call == "get":
            api.get_agent("agA")
        elif call == "set-break":
            api.set_agent_status("agA", AgentStatus.ON_BREAK)
        elif call == "set-logout":
            api.set_agent_status("agA", AgentStatus.LOGGED_OUT)
        else:
            api.set_agents_statuses([StatusChange("agA", 3)])


SUCCESS = {"get": AGENT, "set-break": SET_OK, "set-logout": SET_OK, "bulk": BULK_OK}


@pytest.mark.parametrize(
    ("call", "failure", "retried"),
    [
        # Proof the request was not processed (429, 503): every call is repeated.
        ("get", Canned(429, "x"), True),
        ("set-logout", Canned(429, "x"), True),
        ("bulk", Canned(429, "x"), True),
        ("bulk", Canned(503, "x"), True),
        # Maybe processed (500, 502, 504, a dropped connection): only what is idempotent.
        ("get", Canned(500, "x"), True),
        ("get", DROP, True),
        ("set-break", Canned(502, "x"), True),
        ("set-break", DROP, True),
        ("set-logout", Canned(500, "x"), False),
        ("set-logout", DROP, False),
        ("bulk", Canned(500, "x"), False),
        ("bulk", Canned(504, "x"), False),
        ("bulk", DROP, False),
    ],
)
def test_which_failures_each_call_repeats(call: str, failure: Canned, retried: bool) -> None:
    code = 207 if call == "bulk" else 200
    with scripted(failure, Canned(code, SUCCESS[call])) as server:
        if retried:
            run(server, call)
        else:
            with pytest.raises((ServerError, TransportError)):
                run(server, call)
    assert len(server.seen) == (2 if retried else 1)


def test_no_retry_policy_means_one_attempt() -> None:
    with (
        scripted(Canned(503, "x"), Canned(body=AGENT)) as server,
        make_client(server.api_url, retry=RetryPolicy(max_attempts=1)) as api,
        pytest.raises(ServerError),
    ):
        api.get_agent("agA")
    assert len(server.seen) == 1


def test_a_failed_chunk_keeps_the_results_of_the_chunks_before_it() -> None:
    first = {"data": [{"agent-id": "agA", "change-status": 200, "reason": "OK"}]}
    with (
        scripted(Canned(207, first), Canned(500, "boom")) as server,
        make_client(server.api_url, bulk_chunk_size=1) as api,
        pytest.raises(ServerError) as failed,
    ):
        api.set_agents_statuses([StatusChange("agA", 3), StatusChange("agB", 3)])
    partial = failed.value.partial
    assert partial is not None
    assert [(entry.agent_id, entry.ok) for entry in partial] == [("agA", True)]
    assert len(server.seen) == 2


def test_policy_rejects_nonsense_bounds() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(base_delay=-1)
