"""The transition rules as a Hypothesis state machine whose model is the rule table.

Random sequences of single and bulk changes on the writable agents, to any status (settable
or not) with a valid, missing or wrong status code; after every step the target's agents
are compared with the model. Allowed changes must take effect and read back; refused ones
must be 400 and change nothing; an agent in a status the API cannot leave stays there.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from contract_tests.conformance import Conformance
from contract_tests.model import (
    CODE_KINDS,
    REFUSALS,
    UNKNOWN_AGENT,
    ModelAgent,
    StatusCode,
    expect,
)
from contract_tests.target import Target, not_applicable
from schemas.rules import ALLOWED_TRANSITIONS, REPEATABLE, AgentStatus

MACHINE_AGENTS = 6
BULK_ENTRIES = 4


def pick_agents(target: Target) -> list[str]:
    """Against an emulator a few agents (movable first), so sequences revisit them."""
    if target.config.live:
        return list(target.writable)
    current = target.api.agents()
    movable = [
        a["agent-id"] for a in current if AgentStatus(a["agent-status"]) in ALLOWED_TRANSITIONS
    ]
    stuck = [a["agent-id"] for a in current if a["agent-id"] not in movable]
    return (movable[: MACHINE_AGENTS - 2] + stuck[:2])[:MACHINE_AGENTS]


def machine(target: Target, conformance: Conformance) -> type[RuleBasedStateMachine]:
    """A machine class bound to this target: its agents, statuses, codes and bulk method."""
    agents = pick_agents(target)
    statuses = [
        int(s) for s in AgentStatus if s != AgentStatus.LOGGED_OUT or target.config.allow_logout
    ]
    single_codes = conformance.value("single_requires_status_codes")
    bulk_codes = conformance.value("bulk_requires_status_codes")
    bulk_method = conformance.bulk_method
    # Results are paired by agent id, and by position only among entries for the same agent:
    # that needs results in request order, which only an emulator promises. Elsewhere a bulk
    # names each agent once.
    in_request_order = not target.config.live
    unknown = target.unknown_agent_id()
    change = st.tuples(
        st.sampled_from(agents),
        st.one_of(st.sampled_from(sorted(int(s) for s in REPEATABLE)), st.sampled_from(statuses)),
        st.sampled_from(CODE_KINDS),
        st.integers(0, 9),
    )

    def resolve(agent_id: str, kind: str, pick: int) -> tuple[str, StatusCode | None]:
        book = target.codebook(agent_id)
        options = {
            "none": None,
            "valid": book.valid[pick % len(book.valid)] if book.valid else None,
            "bad_list": book.bad_list,
            "bad_item": book.bad_item,
            "bad_short": book.bad_short,
        }
        code = options[kind]
        return ("none", None) if code is None else (kind, code)

    def body(status: int, code: StatusCode | None) -> dict[str, Any]:
        return {"agent-status": status, **(code.fields() if code else {})}

    class Transitions(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            target.put_back()
            listed = {a["agent-id"]: a for a in target.api.agents()}
            self.model = {agent_id: ModelAgent.read(listed[agent_id]) for agent_id in agents}

        @rule(change=change)
        def set_one(self, change: tuple[str, int, str, int]) -> None:
            agent_id, status, kind, pick = change
            kind, code = resolve(agent_id, kind, pick)
            verdict = expect(self.model[agent_id].status, status, kind, code, single_codes)
            exchange = target.api.set_agent(agent_id, body(status, code))
            target.judge(verdict, exchange, f"PUT agent {agent_id}")
            self.model[agent_id] = verdict.after(
                self.model[agent_id], status, code, exchange.status
            )

        @precondition(lambda self: bulk_method is not None)
        @rule(
            changes=st.lists(
                change,
                min_size=1,
                max_size=BULK_ENTRIES,
                unique_by=None if in_request_order else (lambda change: change[0]),
            ),
            with_unknown=st.booleans(),
        )
        def set_many(self, changes: list[tuple[str, int, str, int]], with_unknown: bool) -> None:
            assert bulk_method is not None
            entries, verdicts = [], []
            planned = dict(self.model)
            for agent_id, status, kind, pick in changes:
                kind, code = resolve(agent_id, kind, pick)
                verdict = expect(planned[agent_id].status, status, kind, code, bulk_codes)
                planned[agent_id] = verdict.after(planned[agent_id], status, code)
                entries.append({"agent-id": agent_id, **body(status, code)})
                verdicts.append((verdict, code))
            if with_unknown:
                entries.append(
                    {
                        "agent-id": unknown,
                        "agent-status": 3,
                        "status-code-list-id": 1,
                        "status-code-item-id": 1,
                        "status-code-item-short-code": "Kit",
                    }
                )
                verdicts.append((UNKNOWN_AGENT, None))
            exchange = target.api.bulk(bulk_method, {"agents": entries})
            if exchange.status in REFUSALS and any(v.shape for v, _ in verdicts):
                return  # refused whole for an entry's shape; the invariant checks nothing moved
            results = target.results(entries, exchange)
            # Entries apply in order, so a same-status entry the target answers otherwise
            # than the emulator changes what the next entries for that agent start from.
            model = dict(self.model)
            for sent, (verdict, code), result in zip(entries, verdicts, results, strict=True):
                where = f"bulk entry for {sent['agent-id']}"
                answered = target.judge_result(verdict, result, where)
                if sent["agent-id"] in model:
                    model[sent["agent-id"]] = verdict.after(
                        model[sent["agent-id"]], sent["agent-status"], code, answered
                    )
            self.model = model

        @invariant()
        def the_target_matches_the_model(self) -> None:
            listed = {a["agent-id"]: a for a in target.api.agents()}
            for agent_id, expected in self.model.items():
                differs = expected.mismatch(listed[agent_id], code_may_be_hidden=True)
                assert differs is None, f"agent {agent_id} differs from the model: {differs}"
                if expected.code_hidden(listed[agent_id]):
                    target.api.note("code_not_shown", "no status code", f"agent {agent_id}")

    return Transitions


def test_random_changes_follow_the_rule_table(
    target: Target, conformance: Conformance, hypothesis_profile: settings
) -> None:
    if not target.writable:
        not_applicable("no writable agents (AGENTSTATUS_WRITE_AGENTS)")
    transitions = machine(target, conformance)
    run_state_machine_as_test(transitions, settings=hypothesis_profile)
