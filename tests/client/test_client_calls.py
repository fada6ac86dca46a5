"""The four operations against the running emulator, over real HTTP, and the typed results."""

from __future__ import annotations

import pickle
from collections.abc import Iterator

import pytest
from conftest import DEMO_TENANT, DEMO_TOKEN, DEMO_USERNAME, basic
from support_client import Canned, admin, make_client, place_agents, scripted

from client import (
    Agent,
    AgentStatus,
    AgentStatusClient,
    BulkResult,
    ChangeOutcome,
    ChangeRejectedError,
    MethodNotAllowedError,
    StatusChange,
    StatusCode,
    TransitionNotAllowedError,
    UnexpectedResponseError,
    can_transition,
    check_transition,
)
from mock_server import create_app
from mock_server.serving.threaded import RunningServer, start_in_thread
from schemas import rules

PADMA = "ag64oyEUb_Sk6bxVB9P5yaaa"
BOB = "agAQDqmvKiRbG4ekigNSmbbb"
PAUL_NEVER_LOGGED_IN = "ag1LmqEeEYRoOti9KjIi_Dng"
JANE_LOGGED_OUT = "ag0XgxWZr7TzqWFhxboBGj1g"
CHAT_GROUP = {"agBacU3lzDPXzaLLkPZCLk1V", "agi-I1oJLJIJ0FUFF6FDzV-n", "agoXkv2frcyHlm76KlqTiOek"}


@pytest.fixture
def status_client(live: RunningServer) -> Iterator[AgentStatusClient]:
    with make_client(f"{live.base_url}/api/v1") as api:
        yield api


@pytest.fixture(scope="module")
def guide_platform() -> Iterator[RunningServer]:
    with start_in_thread(create_app(profile="guide")) as server:
        yield server


@pytest.fixture(scope="module")
def reference_platform() -> Iterator[RunningServer]:
    with start_in_thread(create_app(profile="reference")) as server:
        yield server


@pytest.fixture
def guide_server(guide_platform: RunningServer) -> RunningServer:
    """An emulator following the developer guide (bulk is PUT only), at its fixture."""
    admin(guide_platform.base_url, "POST", "/reset")
    return guide_platform


@pytest.fixture
def reference_server(reference_platform: RunningServer) -> RunningServer:
    """An emulator following the API reference (bulk is POST only, lists page)."""
    admin(reference_platform.base_url, "POST", "/reset")
    return reference_platform


def test_list_agents_returns_every_agent_typed(status_client: AgentStatusClient) -> None:
    agents = status_client.list_agents()
    assert len(agents) == 20
    jane = next(agent for agent in agents if agent.agent_id == JANE_LOGGED_OUT)
    assert jane.status is AgentStatus.LOGGED_OUT
    assert (jane.status_code_list_id, jane.status_code_item_id) == (-1, 1)
    assert jane.status_code_short_code is None
    assert {agent.status for agent in agents} == set(AgentStatus)


def test_list_agents_of_one_group(status_client: AgentStatusClient) -> None:
    assert {agent.agent_id for agent in status_client.list_agents(group_id=300)} == CHAT_GROUP
    assert status_client.list_agents(group_id="999") == []


def test_get_agent_reads_every_field(status_client: AgentStatusClient) -> None:
    agent = status_client.get_agent(PADMA)
    assert agent == Agent(
        agent_id=PADMA,
        status=AgentStatus.WORK_OFFLINE,
        name="Padma Othertask",
        sub_status="none",
        status_code_list_id=801,
        status_code_item_id=1726,
        status_code_short_code="Train",
    )
    assert agent.status_code == StatusCode(801, 1726, "Train")
    assert agent.status_label == "5 WORK_OFFLINE"


def test_set_agent_status_with_a_reason_code(status_client: AgentStatusClient) -> None:
    outcome = status_client.set_agent_status(
        PADMA, AgentStatus.ON_BREAK, StatusCode(801, 1725, "Lunch")
    )
    assert outcome.ok
    assert (outcome.change_status, outcome.reason) == (200, "OK")
    assert outcome.message == "Agent status change successful"
    after = status_client.get_agent(PADMA)
    assert after.status is AgentStatus.ON_BREAK
    assert after.status_code == StatusCode(801, 1725, "Lunch")


def test_set_agent_status_without_a_code_clears_it(status_client: AgentStatusClient) -> None:
    status_client.set_agent_status(PADMA, 4)
    after = status_client.get_agent(PADMA)
    assert after.status is AgentStatus.WAIT_TRANSACT
    assert after.status_code is None


def test_refused_transition_carries_the_servers_reason(status_client: AgentStatusClient) -> None:
    with pytest.raises(ChangeRejectedError) as refused:
        status_client.set_agent_status(PAUL_NEVER_LOGGED_IN, AgentStatus.ON_BREAK)
    assert refused.value.status == 400
    assert "0 UNKNOWN -> 3 ON_BREAK" in refused.value.reason
    assert status_client.get_agent(PAUL_NEVER_LOGGED_IN).status is AgentStatus.UNKNOWN


def test_bulk_reports_each_entry_in_the_callers_order(status_client: AgentStatusClient) -> None:
    result = status_client.set_agents_statuses(
        [
            StatusChange(PADMA, 3, StatusCode(801, 1725, "Lunch")),
            StatusChange("agNobodyHere", 3),
            StatusChange(BOB, 5),
            StatusChange(PAUL_NEVER_LOGGED_IN, 4),
        ]
    )
    assert [entry.agent_id for entry in result] == [
        PADMA,
        "agNobodyHere",
        BOB,
        PAUL_NEVER_LOGGED_IN,
    ]
    assert [entry.change_status for entry in result] == [200, 404, 200, 400]
    assert not result.ok
    assert [entry.agent_id for entry in result.succeeded] == [PADMA, BOB]
    assert [entry.agent_id for entry in result.failed] == ["agNobodyHere", PAUL_NEVER_LOGGED_IN]
    refused = result.failed[1]
    assert refused.change == StatusChange(PAUL_NEVER_LOGGED_IN, 4)
    assert refused.reason is not None and "0 UNKNOWN -> 4 WAIT_TRANSACT" in refused.reason
    assert refused.message == "Agent status change failed"
    assert status_client.get_agent(BOB).status is AgentStatus.WORK_OFFLINE


def test_bulk_of_nothing_sends_nothing(status_client: AgentStatusClient) -> None:
    result = status_client.set_agents_statuses([])
    assert len(result) == 0
    assert result.ok


def test_bulk_over_250_agents_is_chunked_by_100(
    live: RunningServer, status_client: AgentStatusClient
) -> None:
    agent_ids = [f"agBulk{index:04d}" for index in range(250)]
    place_agents(live.base_url, agent_ids, status=4)
    targets = [(3, 5, 1)[index % 3] for index in range(250)]
    changes = [StatusChange(a, t) for a, t in zip(agent_ids, targets, strict=True)]
    changes[150] = StatusChange("agMissing", 3)
    progress: list[tuple[int, int]] = []

    result = status_client.set_agents_statuses(changes, progress=lambda *p: progress.append(p))

    assert progress == [(100, 250), (200, 250), (250, 250)]
    assert [entry.agent_id for entry in result] == [change.agent_id for change in changes]
    assert [entry.agent_id for entry in result.failed] == ["agMissing"]
    assert len(result.succeeded) == 249
    statuses = {agent.agent_id: agent.status for agent in status_client.list_agents()}
    assert all(
        statuses[change.agent_id] == change.status
        for change in changes
        if change.agent_id in statuses
    )


def test_bulk_with_put_as_the_guide_documents(live: RunningServer) -> None:
    with make_client(f"{live.base_url}/api/v1", bulk_method="PUT") as api:
        result = api.set_agents_statuses([StatusChange(BOB, 3)])
    assert result.ok


def test_a_405_on_the_bulk_method_names_the_option(guide_server: RunningServer) -> None:
    with (
        make_client(f"{guide_server.base_url}/api/v1") as api,
        pytest.raises(MethodNotAllowedError) as refused,
    ):
        api.set_agents_statuses([StatusChange(BOB, 3, StatusCode(801, 1725, "Lunch"))])
    assert refused.value.status == 405
    assert "bulk_method='PUT'" in str(refused.value)


def test_bulk_fallback_switches_to_the_method_the_platform_takes(
    guide_server: RunningServer,
) -> None:
    change = StatusChange(BOB, 3, StatusCode(801, 1725, "Lunch"))
    with make_client(f"{guide_server.base_url}/api/v1", bulk_method_fallback=True) as api:
        assert api.set_agents_statuses([change]).ok
        assert api.bulk_method == "PUT"
        assert api.get_agent(BOB).status is AgentStatus.ON_BREAK


def test_put_bulk_on_a_post_only_platform(reference_server: RunningServer) -> None:
    url = f"{reference_server.base_url}/api/v1"
    with (
        make_client(url, bulk_method="PUT") as api,
        pytest.raises(ChangeRejectedError) as refused,
    ):
        api.set_agents_statuses([StatusChange(BOB, 3)])
    assert refused.value.status == 400
    assert "bulk_method='POST'" in str(refused.value)
    with make_client(url, bulk_method="PUT", bulk_method_fallback=True) as api:
        assert api.set_agents_statuses([StatusChange(BOB, 3)]).ok
        assert api.bulk_method == "POST"
        assert api.get_agent(BOB).status is AgentStatus.ON_BREAK


def test_fallback_keeps_a_real_refusal_when_both_methods_fail(
    guide_server: RunningServer,
) -> None:
    """The guide requires status codes in bulk: its 400 is the answer, not POST's 405."""
    url = f"{guide_server.base_url}/api/v1"
    with make_client(url, bulk_method="PUT", bulk_method_fallback=True) as api:
        with pytest.raises(ChangeRejectedError) as refused:
            api.set_agents_statuses([StatusChange(BOB, 3)])
        assert api.bulk_method == "PUT"
    assert refused.value.detail is not None
    assert "status-code-list-id is required" in refused.value.detail


def test_reference_platform_empty_200_and_pages(reference_server: RunningServer) -> None:
    place_agents(reference_server.base_url, [f"agPage{index:03d}" for index in range(150)], 4)
    with make_client(f"{reference_server.base_url}/api/v1") as api:
        outcome = api.set_agent_status(BOB, 3)
        agents = api.list_agents()
    assert (outcome.ok, outcome.change_status, outcome.reason) == (True, 200, None)
    assert len(agents) == 170
    assert len({agent.agent_id for agent in agents}) == 170


def test_unknown_fields_and_statuses_are_kept_not_fatal() -> None:
    odd = {
        "agent-id": "agOdd",
        "agent-status": 42,
        "name": "Otto Odd",
        "agent-sub-status": "stopnew",
        "status-code-list-id": "801",
        "skills": ["chat"],
    }
    with scripted(Canned(body=odd)) as server, make_client(server.api_url) as api:
        agent = api.get_agent("agOdd")
    assert agent.status == 42
    assert not isinstance(agent.status, AgentStatus)
    assert agent.status_label == "42 (unknown)"
    assert agent.sub_status == "stopnew"
    assert agent.status_code_list_id is None
    assert dict(agent.extra) == {"status-code-list-id": "801", "skills": ["chat"]}
    assert agent.to_wire() == odd


def test_an_agent_without_an_id_is_an_unexpected_response() -> None:
    with (
        scripted(Canned(body={"data": [{"agent-status": 4}]})) as server,
        make_client(server.api_url) as api,
        pytest.raises(UnexpectedResponseError),
    ):
        api.list_agents()


def test_bulk_results_out_of_order_are_matched_by_agent_id() -> None:
    results = {
        "data": [
            {"agent-id": "agB", "change-status": 400, "reason": "no"},
            {"agent-id": "agA", "change-status": 200, "reason": "OK", "trace": "x1"},
        ]
    }
    changes = [StatusChange("agA", 3), StatusChange("agB", 4), StatusChange("agC", 5)]
    with scripted(Canned(207, results)) as server, make_client(server.api_url) as api:
        result = api.set_agents_statuses(changes)
    assert [(e.agent_id, e.change_status) for e in result] == [
        ("agA", 200),
        ("agB", 400),
        ("agC", None),
    ]
    assert dict(result.entries[0].extra) == {"trace": "x1"}
    assert [entry.agent_id for entry in result.failed] == ["agB", "agC"]
    assert server.seen[0].json() == {
        "agents": [
            {"agent-id": "agA", "agent-status": 3},
            {"agent-id": "agB", "agent-status": 4},
            {"agent-id": "agC", "agent-status": 5},
        ]
    }


def test_the_rule_table_is_the_one_in_schemas() -> None:
    assert can_transition is rules.can_transition
    assert AgentStatus.ON_BREAK.settable
    assert not AgentStatus.BUSY.settable


def test_check_transition_refuses_locally(status_client: AgentStatusClient) -> None:
    jane = status_client.get_agent(JANE_LOGGED_OUT)
    with pytest.raises(TransitionNotAllowedError) as refused:
        check_transition(jane, AgentStatus.WAIT_TRANSACT)
    assert isinstance(refused.value, ChangeRejectedError)
    assert refused.value.status is None
    assert "1 LOGGED_OUT" in refused.value.reason
    check_transition(status_client.get_agent(PADMA), AgentStatus.ON_BREAK)
    with pytest.raises(TransitionNotAllowedError):
        check_transition(42, AgentStatus.ON_BREAK)


def test_an_empty_agent_id_is_refused_before_sending(status_client: AgentStatusClient) -> None:
    with pytest.raises(ValueError, match="agent_id"):
        status_client.get_agent("")


def test_requests_carry_basic_auth_and_quote_the_agent_id() -> None:
    with (
        scripted(Canned(body={"agent-id": "a/b", "agent-status": 4})) as server,
        make_client(server.api_url + "/", tenant=DEMO_TENANT) as api,
    ):
        api.get_agent("a/b")
    seen = server.seen[0]
    assert seen.path == f"/api/v1/tenants/{DEMO_TENANT}/agentstatus/agents/a%2Fb"
    assert seen.headers["Accept"] == "application/json"
    assert seen.headers["Authorization"] == basic(DEMO_USERNAME, DEMO_TOKEN)["Authorization"]


def test_results_survive_a_pickle_round_trip_and_stay_read_only() -> None:
    agent = Agent.from_wire({"agent-id": "agOdd", "agent-status": 42, "skills": ["chat"]})
    outcome = ChangeOutcome.from_wire(
        {"agent-id": "agOdd", "change-status": 400, "trace": "x1"}, StatusChange("agOdd", 3)
    )
    for result in (agent, outcome, BulkResult((outcome,))):
        assert pickle.loads(pickle.dumps(result)) == result
    copy = pickle.loads(pickle.dumps(agent))
    with pytest.raises(TypeError):
        copy.extra["skills"] = []  # type: ignore[index]


def test_a_page_object_in_integral_floats_is_followed() -> None:
    """The reference types the page numbers ``number``: 1.0 is read as 1, as the API does."""
    first = {
        "data": [{"agent-id": "agA", "agent-status": 4}],
        "page": {"pageIndex": 0.0, "totalPages": 2.0, "pageSize": 1.0},
    }
    last = {
        "data": [{"agent-id": "agB", "agent-status": 3}],
        "page": {"pageIndex": 1, "totalPages": 2, "pageSize": 1},
    }
    with (
        scripted(Canned(body=first), Canned(body=last)) as server,
        make_client(server.api_url) as api,
    ):
        agents = api.list_agents()
    assert [agent.agent_id for agent in agents] == ["agA", "agB"]
    assert server.seen[1].path.endswith("/agents?pageIndex=1&pageSize=1")


def test_integral_floats_are_read_as_integers() -> None:
    agent = Agent.from_wire(
        {"agent-id": "agA", "agent-status": 3.0, "status-code-list-id": 801.0, "name": True}
    )
    assert (agent.status, agent.status_code_list_id) == (AgentStatus.ON_BREAK, 801)
    assert dict(agent.extra) == {"name": True}
    not_integral = Agent.from_wire(
        {"agent-id": "agA", "agent-status": 4, "status-code-item-id": 1.5}
    )
    assert dict(not_integral.extra) == {"status-code-item-id": 1.5}
    change = StatusChange.from_wire(
        {
            "agent-id": "agA",
            "agent-status": 3.0,
            "status-code-list-id": 801.0,
            "status-code-item-id": 1725,
        }
    )
    assert change == StatusChange("agA", 3, StatusCode(801, 1725))
    with pytest.raises(ValueError, match="status-code-list-id"):
        StatusChange.from_wire(
            {"agent-id": "agA", "status-code-list-id": True, "status-code-item-id": 1}
        )
