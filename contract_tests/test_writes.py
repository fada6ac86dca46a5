"""Writes on the agents the run may change: single and bulk sets, refusals, status codes.

Every expectation comes from the rule table through ``contract_tests.model.expect``; a
failure names the transition or the status-code rule the target broke.
"""

from __future__ import annotations

from typing import Any

from contract_tests.conformance import Conformance
from contract_tests.model import ModelAgent, expect, label
from contract_tests.target import CodeBook, StatusCode, Target, not_applicable
from schemas.rules import ALLOWED_TRANSITIONS, REPEATABLE, AgentStatus

JOINED = sorted(int(status) for status in REPEATABLE)


def body(status: int, code: StatusCode | None) -> dict[str, Any]:
    return {"agent-status": status, **(code.fields() if code else {})}


def joined_agent(target: Target, conformance: Conformance) -> tuple[dict[str, Any], CodeBook]:
    """A writable agent in 3/4/5 that can take a valid change here, and its codes."""
    for agent in target.writable_now(JOINED):
        book = target.codebook(agent["agent-id"])
        if book.valid or not conformance.value("single_requires_status_codes"):
            return agent, book
    not_applicable("no writable agent in 3, 4 or 5 with a usable status code")


def assert_refused_and_unchanged(
    target: Target, agent: dict[str, Any], sent: dict[str, Any], rule: str
) -> None:
    exchange = target.api.set_agent(agent["agent-id"], sent)
    assert exchange.status == 400, f"{rule}; the target answered {exchange.describe()}"
    now = target.api.agent_body(agent["agent-id"])
    assert ModelAgent.read(agent).mismatch(now) is None, f"{rule}; but the agent changed to {now}"


def test_an_allowed_single_change_takes_effect_and_reads_back(
    fresh: Target, conformance: Conformance
) -> None:
    agent, book = joined_agent(fresh, conformance)
    current = agent["agent-status"]
    wanted = next(s for s in JOINED if s != current)
    code = book.valid[0] if book.valid else None
    verdict = expect(current, wanted, "valid" if code else "none", code, False)
    exchange = fresh.api.set_agent(agent["agent-id"], body(wanted, code))
    assert exchange.status == 200, f"{verdict.rule}; the target answered {exchange.describe()}"
    now = fresh.api.agent_body(agent["agent-id"])
    expected = verdict.after(ModelAgent.read(agent), wanted, code)
    assert expected.mismatch(now) is None, f"{verdict.rule}; read back {now}"


def test_an_agent_in_a_status_the_api_cannot_leave_stays_there(
    fresh: Target, conformance: Conformance
) -> None:
    stuck = [int(s) for s in AgentStatus if s not in ALLOWED_TRANSITIONS]
    agents = fresh.writable_now(stuck)
    if not agents:
        not_applicable("no writable agent in a status the API cannot leave")
    required = conformance.value("single_requires_status_codes")
    for agent in agents:
        book = fresh.codebook(agent["agent-id"])
        code = book.valid[0] if book.valid else None
        for wanted in fresh.settable_targets():
            verdict = expect(
                agent["agent-status"], wanted, "valid" if code else "none", code, required
            )
            assert verdict.status == 400
            assert_refused_and_unchanged(fresh, agent, body(wanted, code), verdict.rule)


def test_status_codes_that_are_not_the_agents_are_refused(
    fresh: Target, conformance: Conformance
) -> None:
    agent, book = joined_agent(fresh, conformance)
    wrong = {"bad_list": book.bad_list, "bad_item": book.bad_item, "bad_short": book.bad_short}
    tried = {kind: code for kind, code in wrong.items() if code is not None}
    if not tried:
        not_applicable("no status code seen on the agent to derive wrong ones from")
    current = agent["agent-status"]
    for kind, code in tried.items():
        verdict = expect(current, current, kind, code, False)
        assert_refused_and_unchanged(fresh, agent, body(current, code), verdict.rule)


def bulk_method(conformance: Conformance) -> str:
    method = conformance.bulk_method
    assert method is not None, "the target answered 207 to neither POST nor PUT on .../bulk"
    return method


def bulk_ready(
    target: Target, conformance: Conformance, statuses: list[int]
) -> list[dict[str, Any]]:
    """Writable agents in ``statuses`` that a bulk entry can name here (codes if required)."""
    required = conformance.value("bulk_requires_status_codes")
    return [
        agent
        for agent in target.writable_now(statuses)
        if target.codebook(agent["agent-id"]).valid or not required
    ]


def entry(target: Target, agent_id: str, status: int) -> dict[str, Any]:
    valid = target.codebook(agent_id).valid
    return {"agent-id": agent_id, **body(status, valid[0] if valid else None)}


def test_a_bulk_answers_207_with_one_result_per_entry_in_order(
    fresh: Target, conformance: Conformance
) -> None:
    method = bulk_method(conformance)
    agents = bulk_ready(fresh, conformance, JOINED)[:3]
    if not agents:
        not_applicable("no writable agent in 3, 4 or 5")
    unknown = fresh.unknown_agent_id()
    entries = [entry(fresh, a["agent-id"], a["agent-status"]) for a in agents]
    entries.append({"agent-id": unknown, **body(4, StatusCode(801, 1722, "Meet"))})
    exchange = fresh.api.bulk(method, {"agents": entries})
    assert exchange.status == 207, exchange.describe()
    results = exchange.json()["data"]
    assert [r["agent-id"] for r in results] == [e["agent-id"] for e in entries]
    assert [r["change-status"] for r in results] == [200] * len(agents) + [404], (
        f"{len(agents)} changes to the same joined status, then an unknown agent: {results}"
    )


def test_an_unsettable_status_in_a_bulk_changes_nothing(
    fresh: Target, conformance: Conformance
) -> None:
    method = bulk_method(conformance)
    agents = bulk_ready(fresh, conformance, JOINED)[:2]
    if not agents:
        not_applicable("no writable agent in 3, 4 or 5")
    busy = int(AgentStatus.BUSY)
    entries = [entry(fresh, a["agent-id"], busy) for a in agents]
    exchange = fresh.api.bulk(method, {"agents": entries})
    rule = expect(agents[0]["agent-status"], busy, "none", None, False).rule
    assert exchange.status in (207, 400), exchange.describe()
    if exchange.status == 207:
        outcomes = [r["change-status"] for r in exchange.json()["data"]]
        assert outcomes == [400] * len(agents), f"{rule}; results {exchange.json()['data']}"
    for agent in agents:
        now = fresh.api.agent_body(agent["agent-id"])
        assert ModelAgent.read(agent).mismatch(now) is None, f"{rule}; but it changed to {now}"


def test_a_bulk_of_unknown_agents_answers_404_for_each(
    target: Target, conformance: Conformance
) -> None:
    method = bulk_method(conformance)
    unknown = [target.unknown_agent_id() for _ in range(2)]
    entries = [{"agent-id": a, **body(3, StatusCode(801, 1725, "Lunch"))} for a in unknown]
    exchange = target.api.bulk(method, {"agents": entries})
    assert exchange.status == 207, exchange.describe()
    results = [(r["agent-id"], r["change-status"]) for r in exchange.json()["data"]]
    assert results == [(a, 404) for a in unknown], (
        f"an unknown agent in a bulk must be a per-entry 404; results {exchange.json()['data']}"
    )


def test_a_bulk_with_a_refused_entry_still_applies_the_others(
    fresh: Target, conformance: Conformance
) -> None:
    method = bulk_method(conformance)
    stuck = [int(s) for s in AgentStatus if s not in ALLOWED_TRANSITIONS]
    movable = bulk_ready(fresh, conformance, JOINED)
    blocked = fresh.writable_now(stuck)
    if not movable or not blocked:
        not_applicable("needs a writable agent in 3, 4 or 5 and one in a status it cannot leave")
    good, bad = movable[0], blocked[0]
    wanted = next(s for s in JOINED if s != good["agent-status"])
    refused = expect(bad["agent-status"], wanted, "none", None, False)
    good_entry = entry(fresh, good["agent-id"], wanted)
    bad_entry = {**good_entry, "agent-id": bad["agent-id"]}
    exchange = fresh.api.bulk(method, {"agents": [good_entry, bad_entry]})
    assert exchange.status == 207, exchange.describe()
    first, second = exchange.json()["data"]
    assert first["change-status"] == 200, (
        f"{label(good['agent-status'])} -> {label(wanted)}: {first}"
    )
    assert second["change-status"] == 400, f"{refused.rule}; the target answered {second}"
    assert fresh.api.agent_body(good["agent-id"])["agent-status"] == wanted
    assert ModelAgent.read(bad).mismatch(fresh.api.agent_body(bad["agent-id"])) is None
