"""Writes on the agents the run may change: single and bulk sets, refusals, status codes.

Every expectation comes from the rule table through ``contract_tests.model.expect``; a
failure names the transition or the status-code rule the target broke. Bulk results are
paired with their entries by agent id (``Target.results``), and every agent a bulk names is
read back: a result must tell the truth about what happened to its agent.
"""

from __future__ import annotations

from typing import Any

from contract_tests.conformance import Conformance
from contract_tests.model import (
    REFUSALS,
    UNKNOWN_AGENT,
    Expectation,
    ModelAgent,
    StatusCode,
    expect,
    label,
)
from contract_tests.target import CodeBook, Target, not_applicable
from schemas.rules import ALLOWED_TRANSITIONS, REPEATABLE, SETTABLE, AgentStatus
from schemas.wire import integral

JOINED = sorted(int(status) for status in REPEATABLE)
STUCK = [int(status) for status in AgentStatus if status not in ALLOWED_TRANSITIONS]
UNSETTABLE = [int(status) for status in AgentStatus if status not in SETTABLE]
NO_SUCH_STATUS = max(AgentStatus) + 1


def body(status: int, code: StatusCode | None) -> dict[str, Any]:
    return {"agent-status": status, **(code.fields() if code else {})}


def other_joined(status: int) -> int:
    return next(s for s in JOINED if s != status)


def joined_agent(target: Target, conformance: Conformance) -> tuple[dict[str, Any], CodeBook]:
    """A writable agent in 3/4/5 that can take a valid change here, and its codes."""
    for agent in target.writable_now(JOINED):
        book = target.codebook(agent["agent-id"])
        if book.valid or not conformance.value("single_requires_status_codes"):
            return agent, book
    not_applicable("no writable agent in 3, 4 or 5 with a usable status code")


def assert_refused_and_unchanged(
    target: Target, agent: dict[str, Any], sent: dict[str, Any], verdict: Expectation
) -> None:
    agent_id = agent["agent-id"]
    answer = target.api.set_agent(agent_id, sent)
    target.judge(verdict, answer, f"PUT agent {agent_id}")
    now = target.api.agent_body(agent_id)
    assert ModelAgent.read(agent).mismatch(now) is None, (
        f"{verdict.rule}; refused with {answer.status}, but the agent changed to {now}"
    )


def read_back(
    target: Target, model: ModelAgent, agent_id: str, what: str, *, changed: bool
) -> None:
    """The agent as read must be the model's (after a change, a status code not shown is
    only a finding)."""
    now = target.api.agent_body(agent_id)
    differs = model.mismatch(now, code_may_be_hidden=changed)
    assert differs is None, (
        f"{what}, but the agent reads back as {now} ({differs}): a read must show the last "
        "acknowledged write, and a refused change must change nothing"
    )
    if model.code_hidden(now):
        target.api.note("code_not_shown", f"no status code after {what}", f"agent {agent_id}")


def single_codes(conformance: Conformance) -> bool | None:
    """Whether a single set needs all status-code fields here (None: not determined)."""
    required: bool | None = conformance.value("single_requires_status_codes")
    return required


def set_and_read_back(
    target: Target,
    model: ModelAgent,
    agent_id: str,
    wanted: int,
    code: StatusCode | None,
    codes_required: bool | None,
) -> ModelAgent:
    """One single set judged by the rule table, then the agent read back against the model."""
    kind = "valid" if code else "none"
    verdict = expect(model.status, wanted, kind, code, codes_required)
    answer = target.api.set_agent(agent_id, body(wanted, code))
    target.judge(verdict, answer, f"PUT agent {agent_id}")
    expected = verdict.after(model, wanted, code, answer.status)
    read_back(
        target,
        expected,
        agent_id,
        f"{verdict.rule}; answered {answer.status}",
        changed=answer.status == 200,
    )
    return expected


def test_an_allowed_single_change_takes_effect_and_reads_back(
    fresh: Target, conformance: Conformance
) -> None:
    agent, book = joined_agent(fresh, conformance)
    code = book.valid[0] if book.valid else None
    wanted = other_joined(agent["agent-status"])
    set_and_read_back(
        fresh, ModelAgent.read(agent), agent["agent-id"], wanted, code, single_codes(conformance)
    )


def test_every_drawn_transition_between_the_joined_statuses_is_allowed(
    fresh: Target, conformance: Conformance
) -> None:
    agent, book = joined_agent(fresh, conformance)
    code = book.valid[0] if book.valid else None
    start = agent["agent-status"]
    first, second = (s for s in JOINED if s != start)
    # Every directed edge between 3, 4 and 5 once, ending where the agent started.
    model = ModelAgent.read(agent)
    for wanted in (first, second, start, second, first, start):
        model = set_and_read_back(
            fresh, model, agent["agent-id"], wanted, code, single_codes(conformance)
        )


def test_setting_the_status_an_agent_already_has_is_either_answer(
    fresh: Target, conformance: Conformance
) -> None:
    """Not drawn in the vendor's diagram: accepted (the emulator's choice, a new reason code)
    or refused both conform; what it answered must read back."""
    agent, book = joined_agent(fresh, conformance)
    code = book.valid[-1] if book.valid else None
    current = agent["agent-status"]
    set_and_read_back(
        fresh, ModelAgent.read(agent), agent["agent-id"], current, code, single_codes(conformance)
    )


def test_an_agent_in_a_status_the_api_cannot_leave_stays_there(
    fresh: Target, conformance: Conformance
) -> None:
    agents = fresh.writable_now(STUCK)
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
            assert_refused_and_unchanged(fresh, agent, body(wanted, code), verdict)


def test_a_status_the_api_cannot_set_is_refused_and_changes_nothing(
    fresh: Target, conformance: Conformance
) -> None:
    agent, book = joined_agent(fresh, conformance)
    code = book.valid[0] if book.valid else None
    for wanted in [*UNSETTABLE, NO_SUCH_STATUS]:
        kind = "valid" if code else "none"
        verdict = expect(agent["agent-status"], wanted, kind, code, single_codes(conformance))
        assert verdict.status == 400
        assert_refused_and_unchanged(fresh, agent, body(wanted, code), verdict)


def test_status_codes_that_are_not_the_agents_are_refused(
    fresh: Target, conformance: Conformance
) -> None:
    agent, book = joined_agent(fresh, conformance)
    wrong = {"bad_list": book.bad_list, "bad_item": book.bad_item, "bad_short": book.bad_short}
    tried = {kind: code for kind, code in wrong.items() if code is not None}
    if not tried:
        not_applicable("no status code seen on the agent to derive wrong ones from")
    current = agent["agent-status"]
    wanted = other_joined(current)
    for kind, code in tried.items():
        verdict = expect(current, wanted, kind, code, single_codes(conformance))
        answer = fresh.api.set_agent(agent["agent-id"], body(wanted, code))
        fresh.judge(verdict, answer, f"PUT agent {agent['agent-id']}")
        now = fresh.api.agent_body(agent["agent-id"])
        if answer.status != 200:
            read_back(fresh, ModelAgent.read(agent), agent["agent-id"], verdict.rule, changed=False)
            continue
        # Accepted (the vendor leaves a wrong short code open): the item's own code is kept.
        assert code is not None and now.get("status-code-item-short-code") != code.short_code, (
            f"{verdict.rule}: accepted, and the agent now shows the wrong short code: {now}"
        )
        assert integral(now.get("agent-status")) == wanted, f"{verdict.rule}: accepted, {now}"
        fresh.api.set_agent(agent["agent-id"], body(current, book.valid[0] if book.valid else None))


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


def code_for(target: Target, agent_id: str) -> StatusCode | None:
    valid = target.codebook(agent_id).valid
    return valid[0] if valid else None


def entry(target: Target, agent_id: str, status: int) -> dict[str, Any]:
    return {"agent-id": agent_id, **body(status, code_for(target, agent_id))}


def assert_bulk_told_the_truth(
    target: Target,
    before: dict[str, dict[str, Any]],
    planned: list[tuple[dict[str, Any], Expectation, int]],
) -> None:
    """Every writable agent after a bulk: changed as its own result says, the others not at all.

    ``planned`` holds each entry naming a writable agent, its verdict and its answer.
    """
    expected = {agent_id: ModelAgent.read(agent) for agent_id, agent in before.items()}
    changed = {sent["agent-id"] for sent, _, answered in planned if answered == 200}
    for sent, verdict, answered in planned:
        agent_id = sent["agent-id"]
        code = code_for(target, agent_id) if "status-code-list-id" in sent else None
        expected[agent_id] = verdict.after(expected[agent_id], sent["agent-status"], code, answered)
    now = {agent["agent-id"]: agent for agent in target.api.agents()}
    for agent_id, model in expected.items():
        differs = model.mismatch(now[agent_id], code_may_be_hidden=agent_id in changed)
        assert differs is None, (
            f"after the bulk, agent {agent_id} reads {now[agent_id]} ({differs}): a result "
            "must tell what happened to its agent, and no other agent may change"
        )
        if model.code_hidden(now[agent_id]):
            target.api.note("code_not_shown", "no status code after a bulk", f"agent {agent_id}")


def test_a_bulk_answers_207_with_one_true_result_per_entry(
    fresh: Target, conformance: Conformance
) -> None:
    method = bulk_method(conformance)
    required = conformance.value("bulk_requires_status_codes")
    agents = bulk_ready(fresh, conformance, JOINED)[:3]
    if not agents:
        not_applicable("no writable agent in 3, 4 or 5")
    before = {a["agent-id"]: a for a in fresh.writable_now(list(AgentStatus))}
    unknown = fresh.unknown_agent_id()
    entries = [entry(fresh, a["agent-id"], other_joined(a["agent-status"])) for a in agents]
    entries.append({"agent-id": unknown, **body(4, StatusCode(801, 1722, "Meet"))})
    answer = fresh.api.bulk(method, {"agents": entries})
    results = fresh.results(entries, answer)
    planned = []
    for agent, sent, result in zip(agents, entries, results, strict=False):
        code = code_for(fresh, agent["agent-id"])
        kind = "valid" if code else "none"
        verdict = expect(agent["agent-status"], sent["agent-status"], kind, code, required)
        where = f"bulk entry for {agent['agent-id']}"
        planned.append((sent, verdict, fresh.judge_result(verdict, result, where)))
    fresh.judge_result(UNKNOWN_AGENT, results[-1], f"bulk entry for the unknown agent {unknown}")
    assert_bulk_told_the_truth(fresh, before, planned)


def test_an_unsettable_status_in_a_bulk_changes_nothing(
    fresh: Target, conformance: Conformance
) -> None:
    method = bulk_method(conformance)
    agents = bulk_ready(fresh, conformance, JOINED)[:2]
    if not agents:
        not_applicable("no writable agent in 3, 4 or 5")
    before = {a["agent-id"]: a for a in fresh.writable_now(list(AgentStatus))}
    busy = int(AgentStatus.BUSY)
    entries = [entry(fresh, a["agent-id"], busy) for a in agents]
    answer = fresh.api.bulk(method, {"agents": entries})
    verdict = expect(agents[0]["agent-status"], busy, "none", None, False)
    assert answer.status == 207 or answer.status in REFUSALS, f"{verdict.rule}: {answer.describe()}"
    planned = []
    if answer.status == 207:
        fresh.api.note(
            "bulk_shape_refusal", "each such entry refused in its own result", answer.describe()
        )
        for sent, result in zip(entries, fresh.results(entries, answer), strict=True):
            where = f"bulk entry for {sent['agent-id']}"
            planned.append((sent, verdict, fresh.judge_result(verdict, result, where)))
    assert_bulk_told_the_truth(fresh, before, planned)


def test_a_bulk_of_unknown_agents_refuses_each(target: Target, conformance: Conformance) -> None:
    method = bulk_method(conformance)
    unknown = [target.unknown_agent_id() for _ in range(2)]
    entries = [{"agent-id": a, **body(3, StatusCode(801, 1725, "Lunch"))} for a in unknown]
    answer = target.api.bulk(method, {"agents": entries})
    for agent_id, result in zip(unknown, target.results(entries, answer), strict=True):
        target.judge_result(UNKNOWN_AGENT, result, f"bulk entry for the unknown agent {agent_id}")


def test_a_bulk_with_a_refused_entry_still_applies_the_others(
    fresh: Target, conformance: Conformance
) -> None:
    method = bulk_method(conformance)
    movable = bulk_ready(fresh, conformance, JOINED)
    blocked = fresh.writable_now(STUCK)
    if not movable or not blocked:
        not_applicable("needs a writable agent in 3, 4 or 5 and one in a status it cannot leave")
    good, bad = movable[0], blocked[0]
    before = {a["agent-id"]: a for a in fresh.writable_now(list(AgentStatus))}
    wanted = other_joined(good["agent-status"])
    code = code_for(fresh, good["agent-id"])
    kind = "valid" if code else "none"
    required = conformance.value("bulk_requires_status_codes")
    allowed = expect(good["agent-status"], wanted, kind, code, required)
    refused = expect(bad["agent-status"], wanted, kind, code, required)
    good_entry = entry(fresh, good["agent-id"], wanted)
    bad_entry = {**good_entry, "agent-id": bad["agent-id"]}
    answer = fresh.api.bulk(method, {"agents": [good_entry, bad_entry]})
    first, second = fresh.results([good_entry, bad_entry], answer)
    where = f"{label(good['agent-status'])} -> {label(wanted)} beside a refused entry"
    answered = fresh.judge_result(allowed, first, f"{where} (each entry is independent)")
    refused_answer = fresh.judge_result(refused, second, f"bulk entry for {bad['agent-id']}")
    assert_bulk_told_the_truth(
        fresh, before, [(good_entry, allowed, answered), (bad_entry, refused, refused_answer)]
    )
