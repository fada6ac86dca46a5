"""Reads: the list, one agent, an unknown agent, the group filter, and that they agree."""

from __future__ import annotations

from typing import Any

import pytest

from contract_tests.conformance import NO_SUCH_GROUP, Conformance
from contract_tests.http import ApiTransport
from contract_tests.target import Target, not_applicable
from mock_server.harness.handle import Emulator
from schemas.wire import STATUS_CODE_FIELDS

LIVE_READ_SAMPLE = 10


def test_the_list_names_each_agent_once(api: ApiTransport) -> None:
    answer = api.list_agents()
    assert answer.status == 200, answer.describe()
    ids = [agent["agent-id"] for agent in answer.json()["data"]]
    assert len(ids) == len(set(ids)), f"agents listed twice: {sorted(ids)}"


def test_each_agent_reads_alone_as_the_list_shows_it(target: Target) -> None:
    listed = target.api.agents()
    if not listed:
        not_applicable("the tenant has no agents")
    if not target.config.live:
        for agent in listed:
            assert target.api.agent_body(agent["agent-id"]) == agent, agent["agent-id"]
        return
    # A live agent may change between two reads (a call arrives): a disagreement counts
    # only when a second pair of reads disagrees the same way.
    for agent in listed[:LIVE_READ_SAMPLE]:
        agent_id = agent["agent-id"]
        alone = target.api.agent_body(agent_id)
        if agree(alone, agent):
            continue
        again = {a["agent-id"]: a for a in target.api.agents()}.get(agent_id)
        assert again is not None and agree(target.api.agent_body(agent_id), again), (
            f"list and get disagree on the status of {agent_id}: listed {agent}, alone {alone}"
        )


def agree(alone: dict[str, Any], listed: dict[str, Any]) -> bool:
    """The same status, and the same value for every status-code field both show (either
    may show fewer members: neither document says which a list or a read must carry)."""
    shared = [name for name in STATUS_CODE_FIELDS if name in alone and name in listed]
    same = all(alone[name] == listed[name] for name in shared)
    return alone.get("agent-status") == listed.get("agent-status") and same


def test_an_unknown_agent_is_404(target: Target) -> None:
    answer = target.api.get_agent("agKitNoSuchAgentAtAll000")
    assert answer.status == 404, answer.describe()


def test_every_agent_the_run_may_change_exists(target: Target) -> None:
    named = target.config.write_agents
    if named is None:
        not_applicable("every agent of an emulator may be changed")
    missing = sorted(set(named) - set(target.initial))
    assert not missing, f"AGENTSTATUS_WRITE_AGENTS names agents the tenant does not list: {missing}"


def test_an_unknown_group_filters_to_nothing_or_is_ignored(
    api: ApiTransport, conformance: Conformance
) -> None:
    if conformance.value("group_filter") is None:
        not_applicable("the probe could not tell whether the target filters by groupId")
    everyone = [agent["agent-id"] for agent in api.agents()]
    filtered = [agent["agent-id"] for agent in api.agents({"groupId": NO_SUCH_GROUP})]
    if conformance.value("group_filter"):
        assert filtered == [], f"an unknown group must list no agent, the target listed {filtered}"
    else:
        assert sorted(filtered) == sorted(everyone), "a groupId the target ignores lists everyone"


@pytest.mark.needs_control_plane("only the control plane tells which agent is in which group")
def test_the_group_filter_lists_exactly_the_groups_agents_or_everyone_when_ignored(
    fresh: Target, emulator: Emulator, conformance: Conformance
) -> None:
    state = emulator.state()
    filters = bool(conformance.value("group_filter"))
    for group in state["groups"]:
        members = [
            a["agent-id"] for a in state["agents"] if a["group-id"] == group["id"] or not filters
        ]
        answer = fresh.api.list_agents({"groupId": str(group["id"])})
        assert answer.status == 200, answer.describe()
        listed = [agent["agent-id"] for agent in answer.json()["data"]]
        assert listed == members, f"groupId={group['id']}"
