"""The transition rules: every from-status (0-11) against every settable target (1, 3, 4, 5)."""

from __future__ import annotations

import pytest
from conftest import Api, api_path

from schemas.rules import (
    ALLOWED_TRANSITIONS,
    REPEATABLE,
    SETTABLE,
    AgentStatus,
    TransitionTable,
    can_transition,
    transition_refusal,
    unknown_status_name,
    unknown_status_refusal,
    unlisted_status_refusal,
)

AGENT = "agMatrixTester000000000001"
ALLOWED = {
    (3, 1), (3, 3), (3, 4), (3, 5),
    (4, 1), (4, 3), (4, 4), (4, 5),
    (5, 1), (5, 3), (5, 4), (5, 5),
}  # fmt: skip


def test_rule_table_is_the_diagram() -> None:
    """The one table in the project says exactly what allowed-transitions.png draws."""
    table = {(int(a), int(b)) for a in AgentStatus for b in AgentStatus if can_transition(a, b)}
    assert table == ALLOWED
    assert {int(s) for s in SETTABLE} == {1, 3, 4, 5}


@pytest.mark.parametrize("target", sorted(SETTABLE))
@pytest.mark.parametrize("source", list(AgentStatus))
def test_single_set_follows_the_matrix(api: Api, source: AgentStatus, target: AgentStatus) -> None:
    api.place_agent(AGENT, source)
    reply = api.put(api_path(suffix=f"/{AGENT}"), {"agent-status": int(target)})
    after = api.agent(AGENT)["agent-status"]
    if (source, target) in ALLOWED:
        assert reply.status == 200, reply.text
        assert after == target
    else:
        assert reply.status == 400, reply.text
        detail = reply.json()["detail"]
        assert f"{source.value} {source.name}" in detail
        assert f"{target.value} {target.name}" in detail
        assert after == source


@pytest.mark.parametrize("target", [0, 2, 6, 7, 8, 9, 10, 11])
def test_unsettable_targets_are_refused_whatever_the_source(api: Api, target: int) -> None:
    api.place_agent(AGENT, 4)
    reply = api.put(api_path(suffix=f"/{AGENT}"), {"agent-status": target})
    assert reply.status == 400
    assert f"{target} {AgentStatus(target).name} cannot be set" in reply.json()["detail"]
    assert api.agent(AGENT)["agent-status"] == 4


@pytest.mark.parametrize("target", [-1, 12, 99])
def test_unknown_status_values_are_refused(api: Api, target: int) -> None:
    api.place_agent(AGENT, 4)
    reply = api.put(api_path(suffix=f"/{AGENT}"), {"agent-status": target})
    assert reply.status == 400
    assert f"agent-status {target} is not a known status" in reply.json()["detail"]


def test_logging_out_is_one_way(api: Api) -> None:
    api.place_agent(AGENT, 4)
    assert api.put(api_path(suffix=f"/{AGENT}"), {"agent-status": 1}).status == 200
    agent = api.agent(AGENT)
    assert (agent["agent-status"], agent["status-code-list-id"], agent["status-code-item-id"]) == (
        1,
        -1,
        1,
    )
    assert "status-code-item-short-code" not in agent
    back = api.put(api_path(suffix=f"/{AGENT}"), {"agent-status": 4})
    assert back.status == 400
    assert "logged out cannot be changed" in back.json()["detail"]


def test_same_status_changes_the_reason_code(api: Api) -> None:
    api.place_agent(
        AGENT,
        3,
        **{"status-code-list-id": 801, "status-code-item-id": 1725},
    )
    body = {
        "agent-status": 3,
        "status-code-list-id": 801,
        "status-code-item-id": 1722,
        "status-code-item-short-code": "Meet",
    }
    assert api.put(api_path(suffix=f"/{AGENT}"), body).status == 200
    agent = api.agent(AGENT)
    assert agent["status-code-item-id"] == 1722
    assert agent["status-code-item-short-code"] == "Meet"


def test_setting_without_codes_clears_the_old_reason(api: Api) -> None:
    api.place_agent(AGENT, 3, **{"status-code-list-id": 801, "status-code-item-id": 1725})
    assert api.put(api_path(suffix=f"/{AGENT}"), {"agent-status": 4}).status == 200
    agent = api.agent(AGENT)
    assert agent["agent-status"] == 4
    assert not {"status-code-list-id", "status-code-item-id"} & set(agent)


@pytest.mark.parametrize("current", [-1, 12])
def test_refusal_from_an_unknown_current_status_explains_itself(current: int) -> None:
    assert not can_transition(current, 3)
    assert transition_refusal(current, 3) == (
        f"The agent's status {current} is not a known status (0-11); it cannot be changed."
    )


def test_the_rule_table_cannot_be_changed_in_place() -> None:
    """Whatever is derived from the table (REPEATABLE, SETTABLE, the messages) cannot go stale."""
    with pytest.raises(TypeError):
        ALLOWED_TRANSITIONS[AgentStatus.LOGGED_OUT] = frozenset({AgentStatus.WAIT_TRANSACT})  # type: ignore[index]
    assert all(isinstance(targets, frozenset) for targets in ALLOWED_TRANSITIONS.values())
    assert {int(s) for s in REPEATABLE} == {3, 4, 5}


def test_a_table_built_from_a_mapping_keeps_no_link_to_it() -> None:
    rows = {AgentStatus.ON_BREAK: frozenset({AgentStatus.WAIT_TRANSACT})}
    table = TransitionTable(rows)
    rows[AgentStatus.LOGGED_OUT] = frozenset({AgentStatus.ON_BREAK})
    assert not table.allows(AgentStatus.LOGGED_OUT, AgentStatus.ON_BREAK)


def test_the_refusal_sentences_for_todays_table() -> None:
    """Byte for byte what the emulator and the client have always said."""
    assert transition_refusal(4, 12) == "agent-status 12 is not a known status (0-11)."
    assert transition_refusal(4, 9) == (
        "agent-status 9 BUSY cannot be set through the API; "
        "only 1 LOGGED_OUT, 3 ON_BREAK, 4 WAIT_TRANSACT and 5 WORK_OFFLINE can."
    )
    assert transition_refusal(1, 4) == (
        "The agent is 1 LOGGED_OUT; an agent logged out cannot be changed "
        "through the API (refused: 1 LOGGED_OUT -> 4 WAIT_TRANSACT)."
    )
    assert transition_refusal(9, 4) == (
        "The transition 9 BUSY -> 4 WAIT_TRANSACT is not allowed through the API; "
        "it is allowed only from 3 ON_BREAK, 4 WAIT_TRANSACT and 5 WORK_OFFLINE."
    )
    assert unknown_status_refusal(12) == (
        "agent-status 12 is not a known status; statuses are 0-11 "
        "and only 1, 3, 4 and 5 can be set."
    )
    assert unlisted_status_refusal(42) == (
        "The agent's status 42 is not in the rule table; the API allows changes "
        "only from 3 ON_BREAK, 4 WAIT_TRANSACT and 5 WORK_OFFLINE."
    )
    assert unknown_status_name("x") == (
        "unknown status 'x'; use a number 0-11 or one of UNKNOWN, LOGGED_OUT, LOGGED_IN, "
        "ON_BREAK, WAIT_TRANSACT, WORK_OFFLINE, TRANSACT_OFFERED, PROCESS_TRANSACT, "
        "POST_PROCESS, BUSY, DIRECT_CALL, ON_EMAIL"
    )


def test_another_table_says_its_own_rules() -> None:
    """The sentences are derived from the table: other rows, other settable and source lists."""
    table = TransitionTable(
        {
            AgentStatus.ON_BREAK: frozenset({AgentStatus.ON_BREAK, AgentStatus.LOGGED_IN}),
            AgentStatus.LOGGED_OUT: frozenset({AgentStatus.ON_BREAK}),
        }
    )
    assert (table.settable, table.repeatable) == (
        {AgentStatus.LOGGED_IN, AgentStatus.ON_BREAK},
        {AgentStatus.ON_BREAK},
    )
    assert table.refusal(3, 4) == (
        "agent-status 4 WAIT_TRANSACT cannot be set through the API; "
        "only 2 LOGGED_IN and 3 ON_BREAK can."
    )
    assert table.refusal(1, 2) == (
        "The transition 1 LOGGED_OUT -> 2 LOGGED_IN is not allowed through the API; "
        "it is allowed only from 1 LOGGED_OUT and 3 ON_BREAK."
    )
    assert table.unknown_status(-1).endswith("statuses are 0-11 and only 2 and 3 can be set.")
    assert table.unlisted_status(42).endswith("only from 1 LOGGED_OUT and 3 ON_BREAK.")
