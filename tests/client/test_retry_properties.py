"""The retry policy by property: only what the table of docs/client.md allows is repeated, for every
error status and transport failure; the total wait stays within the budget; the documented
defaults; ``Retry-After`` in seconds or as an HTTP date, clamped at zero. Time is a recorder
(``support_client.Recorder``): nothing really sleeps."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
import urllib3
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support_client import Recorder
from support_stub import Reply, served

from client import AgentStatusClient, AgentStatusError, RetryPolicy, StatusChange
from client.retry import parse_retry_after

MAX_EXAMPLES = int(os.environ.get("AGENTSTATUS_FUZZ_EXAMPLES", "50"))
PROPERTY = settings(
    max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
CALLS: dict[str, tuple[Callable[[AgentStatusClient], object], Reply]] = {
    "get": (lambda api: api.get_agent("agA"), Reply(body={"agent-id": "agA", "agent-status": 4})),
    "list": (lambda api: api.list_agents(), Reply(body={"data": []})),
    "set 3": (lambda api: api.set_agent_status("agA", 3), Reply()),
    "set 5": (lambda api: api.set_agent_status("agA", 5), Reply()),
    "set 1": (lambda api: api.set_agent_status("agA", 1), Reply()),
    "bulk": (
        lambda api: api.set_agents_statuses([StatusChange("agA", 3)]),
        Reply(207, {"data": []}),
    ),
}
REPEATABLE_CALLS = {"get", "list", "set 3", "set 5"}
"""docs/client.md's table, written out here so that a change to the module shows: the columns."""
NOT_PROCESSED = {429, 503}
MAYBE_PROCESSED = {500, 502, 504}


def refused() -> requests.RequestException:
    cause = urllib3.exceptions.NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", cause))  # type: ignore[arg-type]


def reset() -> requests.RequestException:
    return requests.ConnectionError(ConnectionResetError(104, "Connection reset by peer"))


TRANSPORT: dict[str, tuple[Callable[[], requests.RequestException], bool]] = {
    "refused": (refused, False),
    "connect timeout": (requests.ConnectTimeout, False),
    "read timeout": (requests.ReadTimeout, True),
    "reset": (reset, True),
}
"""Each transport failure, and whether the request may have been processed (the table's rows)."""


def repeated(call: str, failure: Reply) -> bool:
    """Whether the client sends the request again after ``failure``, as docs/client.md says."""
    if failure.fail is not None:
        maybe_processed = next(sent for make, sent in TRANSPORT.values() if make is failure.fail)
        return call in REPEATABLE_CALLS or not maybe_processed
    if failure.status in NOT_PROCESSED:
        return True
    return failure.status in MAYBE_PROCESSED and call in REPEATABLE_CALLS


FAILURES = [Reply(status, b"failed", "text/plain") for status in range(400, 600)] + [
    Reply(fail=make) for make, _ in TRANSPORT.values()
]


@pytest.mark.parametrize("call", CALLS)
def test_only_what_the_table_allows_is_repeated(call: str) -> None:
    """Every error status and transport failure once, then success: a write that may have
    been applied is never sent twice."""
    run, success = CALLS[call]
    for failure in FAILURES:
        time = Recorder()
        with served(failure, success, retry=time.policy()) as (api, stub):
            if repeated(call, failure):
                run(api)
            else:
                with pytest.raises(AgentStatusError):
                    run(api)
        assert len(stub.seen) == (2 if repeated(call, failure) else 1), (call, failure)


RETRY_AFTER = st.none() | st.floats(0, 40).map(lambda s: f"{s:.3f}")
TRANSIENT = st.builds(
    lambda status, after: Reply(
        status, b"busy", "text/plain", {} if after is None else {"Retry-After": after}
    ),
    st.sampled_from(sorted(NOT_PROCESSED | MAYBE_PROCESSED)),
    RETRY_AFTER,
) | st.sampled_from([Reply(fail=make) for make, _ in TRANSPORT.values()])


@PROPERTY
@given(
    st.integers(1, 6),
    st.floats(0, 3),
    st.floats(0, 10),
    st.floats(0, 30),
    st.floats(0, 1),
    st.lists(TRANSIENT, max_size=7),
)
@example(3, 1.0, 10.0, 1.5, 1.0, [Reply(503, b"busy", "text/plain")] * 2)
@example(4, 0.5, 8.0, 2.0, 1.0, [Reply(429, b"busy", "text/plain", {"Retry-After": "1.5"})] * 3)
def test_the_total_wait_stays_within_the_budget(
    attempts: int,
    base: float,
    ceiling: float,
    budget: float,
    draw: float,
    failures: list[Reply],
) -> None:
    time = Recorder()
    policy = time.policy(
        max_attempts=attempts,
        base_delay=base,
        max_delay=ceiling,
        max_elapsed=budget,
        random=lambda: draw,
    )
    with served(*failures, CALLS["get"][1], retry=policy) as (api, stub):
        try:
            api.get_agent("agA")
            succeeded = True
        except AgentStatusError:
            succeeded = False
    assert sum(time.sleeps) <= budget
    assert len(stub.seen) <= attempts
    assert succeeded == (len(stub.seen) == len(failures) + 1)
    for number, (slept, failure) in enumerate(zip(time.sleeps, failures, strict=False), 1):
        after = failure.headers.get("Retry-After")
        if after is not None and failure.status in NOT_PROCESSED:
            assert slept == pytest.approx(float(after))
        else:
            assert slept == pytest.approx(draw * min(ceiling, base * 2.0 ** (number - 1)))


def test_the_defaults_are_four_attempts_doubling_from_half_a_second() -> None:
    time = Recorder()
    busy = Reply(503, b"busy", "text/plain")
    with (
        served(
            *[busy] * 5, retry=RetryPolicy(sleep=time.sleep, clock=time.clock, random=lambda: 1.0)
        ) as (api, stub),
        pytest.raises(AgentStatusError),
    ):
        api.list_agents()
    assert (len(stub.seen), time.sleeps) == (4, [0.5, 1.0, 2.0])


def test_the_default_backoff_stops_at_eight_seconds_and_thirty_in_all() -> None:
    time = Recorder()
    policy = RetryPolicy(max_attempts=20, sleep=time.sleep, clock=time.clock, random=lambda: 1.0)
    with (
        served(default=Reply(500, b"boom", "text/plain"), retry=policy) as (api, stub),
        pytest.raises(AgentStatusError),
    ):
        api.list_agents()
    assert time.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert len(stub.seen) == 7


@PROPERTY
@given(st.floats(0, 60))
def test_a_retry_after_within_the_default_budget_is_waited(seconds: float) -> None:
    time = Recorder()
    policy = RetryPolicy(sleep=time.sleep, clock=time.clock)
    wait = Reply(429, b"later", "text/plain", {"Retry-After": repr(seconds)})
    with served(wait, default=Reply(body={"data": []}), retry=policy) as (api, _):
        if seconds <= 30:
            api.list_agents()
        else:
            with pytest.raises(AgentStatusError):
                api.list_agents()
    assert time.sleeps == ([seconds] if seconds <= 30 else [])


BOUNDS = st.floats(-5, 5) | st.just(0.0) | st.just(-0.0)


@PROPERTY
@given(st.integers(-2, 3), BOUNDS, BOUNDS, BOUNDS)
@example(0, 0.0, 0.0, 0.0)
@example(1, -0.5, 0.0, 0.0)
@example(1, 0.0, -0.5, 0.0)
@example(1, 0.0, 0.0, -0.5)
def test_a_policy_refuses_no_attempt_and_negative_delays_only(
    attempts: int, base: float, ceiling: float, budget: float
) -> None:
    wrong = attempts < 1 or min(base, ceiling, budget) < 0
    if wrong:
        with pytest.raises(ValueError, match="must"):
            RetryPolicy(
                max_attempts=attempts, base_delay=base, max_delay=ceiling, max_elapsed=budget
            )
    else:
        RetryPolicy(max_attempts=attempts, base_delay=base, max_delay=ceiling, max_elapsed=budget)


@PROPERTY
@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**6), 10**6))
@example(-1.5)
@example(-0.0)
@example(float("inf"))
@example(float("nan"))
def test_retry_after_seconds_are_clamped_at_zero(seconds: float) -> None:
    finite = seconds == seconds and abs(seconds) != float("inf")
    expected = max(0.0, float(seconds)) if finite else None
    assert parse_retry_after(f" {seconds} ") == expected


@PROPERTY
@given(st.integers(-(10**6), 10**6), st.booleans())
def test_retry_after_as_an_http_date_in_either_zone_form(offset: int, gmt: bool) -> None:
    """``GMT`` or ``-0000`` (a date with no zone: read as UTC); a past date is zero."""
    now = datetime.now(UTC) + timedelta(seconds=offset)
    text = format_datetime(now, usegmt=True) if gmt else format_datetime(now.replace(tzinfo=None))
    waited = parse_retry_after(text)
    assert waited is not None
    assert max(0.0, offset - 2.0) <= waited <= max(0.0, offset + 1.0)


RETRY_AFTER_TEXT = (
    st.text()
    | st.from_regex(r"\A[ ]?[-+]?[0-9]{1,12}(\.[0-9]{1,6})?([eE][-+]?[0-9]{1,4})?[ ]?\Z")
    | st.builds(
        lambda day, year, zone: f"{day}, 01 Jan {year} 00:00:00 {zone}",
        st.sampled_from(["Mon", "Thu", "Xyz"]),
        st.integers(0, 10**25),
        st.sampled_from(["GMT", "-0000", "+0100", "UTC"]),
    )
)
"""Any text, numbers as a server writes them, and HTTP dates of any year."""


@PROPERTY
@given(RETRY_AFTER_TEXT)
@example("Mon, 01 Jan 99999999999999999999 00:00:00 GMT")
@example("-5")
@example("1e400")
def test_any_retry_after_text_is_a_wait_or_none(text: str) -> None:
    waited = parse_retry_after(text)
    assert waited is None or waited >= 0
