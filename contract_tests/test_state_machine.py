"""The transition rules as a Hypothesis state machine whose model is the rule table.

Random sequences of single and bulk changes on the writable agents, to any status (settable
or not) with a valid, missing or wrong status code; after every step the target's agents
are compared with the model. Allowed changes must take effect and read back; refused ones
must be 400 and change nothing; an agent in a status the API cannot leave stays there.
Each example starts from the agents put back where the run found them (``Target.put_back``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from contract_tests.conformance import Conformance
from contract_tests.model import (
    CODE_KINDS,
    REFUSALS,
    UNKNOWN_AGENT,
    Expectation,
    ModelAgent,
    StatusCode,
    expect,
)
from contract_tests.target import Target, not_applicable
from schemas.rules import ALLOWED_TRANSITIONS, REPEATABLE, AgentStatus

MACHINE_AGENTS = 6
BULK_ENTRIES = 4
JOINED = sorted(int(status) for status in REPEATABLE)
UNKNOWN_ENTRY = {
    "agent-status": int(AgentStatus.ON_BREAK),
    "status-code-list-id": 1,
    "status-code-item-id": 1,
    "status-code-item-short-code": "Kit",
}
"""A bulk entry for the agent the target answered 404 for (its ``agent-id`` added)."""


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


@dataclass(frozen=True)
class Bench:
    """What every example of one run shares: the target, the agents and statuses it may
    send, what the probes found, and an agent id the target answered 404 for."""

    target: Target
    agents: list[str]
    statuses: list[int]
    single_codes: bool | None
    bulk_codes: bool | None
    bulk_method: str | None
    in_request_order: bool
    """Results are paired by agent id, and by position only among entries for the same agent:
    that needs results in request order, which only an emulator promises. Elsewhere a bulk
    names each agent once."""
    unknown: str

    @classmethod
    def of(cls, target: Target, conformance: Conformance) -> Bench:
        allow_logout = target.config.allow_logout
        return cls(
            target=target,
            agents=pick_agents(target),
            statuses=[int(s) for s in AgentStatus if s != AgentStatus.LOGGED_OUT or allow_logout],
            single_codes=conformance.value("single_requires_status_codes"),
            bulk_codes=conformance.value("bulk_requires_status_codes"),
            bulk_method=conformance.bulk_method,
            in_request_order=not target.config.live,
            unknown=target.unknown_agent_id(),
        )

    def code(self, change: Change) -> tuple[str, StatusCode | None]:
        """The code a change names, by kind; ``none`` when the agent has no code of that kind."""
        book = self.target.codebook(change.agent_id)
        options = {
            "none": None,
            "valid": book.valid[change.pick % len(book.valid)] if book.valid else None,
            "bad_list": book.bad_list,
            "bad_item": book.bad_item,
            "bad_short": book.bad_short,
        }
        code = options[change.kind]
        return ("none", None) if code is None else (change.kind, code)


class Change(NamedTuple):
    """One drawn change: an agent, the status to send, the kind of code, which valid code."""

    agent_id: str
    status: int
    kind: str
    pick: int


def body(status: int, code: StatusCode | None) -> dict[str, Any]:
    return {"agent-status": status, **(code.fields() if code else {})}


def once_per_agent(changes: list[Change]) -> list[Change]:
    """The first change drawn for each agent, in order."""
    first: dict[str, Change] = {}
    for change in changes:
        first.setdefault(change.agent_id, change)
    return list(first.values())


class Transitions(RuleBasedStateMachine):
    """The target's agents against the rule table's model, one change or bulk at a time."""

    agents = Bundle("agents")
    """The agents this run may change (only writable ones on a live target)."""
    statuses = st.runner().flatmap(lambda machine: st.sampled_from(machine.bench.statuses))
    """Every status this run may send (LOGGED_OUT only where allowed)."""
    changes = st.builds(
        Change,
        agents,
        st.one_of(st.sampled_from(JOINED), statuses),
        st.sampled_from(CODE_KINDS),
        st.integers(0, 9),
    )

    def __init__(self, bench: Bench) -> None:
        super().__init__()
        self.bench = bench
        self.model: dict[str, ModelAgent] = {}

    @initialize(target=agents)
    def start_where_the_run_found_them(self) -> MultipleResults[str]:
        target = self.bench.target
        target.put_back()
        listed = {a["agent-id"]: a for a in target.api.agents()}
        self.model = {agent_id: ModelAgent.read(listed[agent_id]) for agent_id in self.bench.agents}
        return multiple(*self.bench.agents)

    @rule(change=changes)
    def set_one(self, change: Change) -> None:
        bench, agent_id = self.bench, change.agent_id
        kind, code = bench.code(change)
        verdict = expect(self.model[agent_id].status, change.status, kind, code, bench.single_codes)
        answer = bench.target.api.set_agent(agent_id, body(change.status, code))
        bench.target.judge(verdict, answer, f"PUT agent {agent_id}")
        self.model[agent_id] = verdict.after(
            self.model[agent_id], change.status, code, answer.status
        )

    @precondition(lambda self: self.bench.bulk_method is not None)
    @rule(
        drawn=st.lists(changes, min_size=1, max_size=BULK_ENTRIES),
        with_unknown=st.booleans(),
    )
    def set_many(self, drawn: list[Change], with_unknown: bool) -> None:
        bench, target = self.bench, self.bench.target
        method = bench.bulk_method
        assert method is not None  # the precondition
        entries, verdicts = [], []
        planned = dict(self.model)
        for change in drawn if bench.in_request_order else once_per_agent(drawn):
            agent_id = change.agent_id
            kind, code = bench.code(change)
            verdict = expect(planned[agent_id].status, change.status, kind, code, bench.bulk_codes)
            planned[agent_id] = verdict.after(planned[agent_id], change.status, code)
            entries.append({"agent-id": agent_id, **body(change.status, code)})
            verdicts.append((verdict, code))
        if with_unknown:
            entries.append({"agent-id": bench.unknown, **UNKNOWN_ENTRY})
            verdicts.append((UNKNOWN_AGENT, None))
        answer = target.api.bulk(method, {"agents": entries})
        if answer.status in REFUSALS and any(v.shape for v, _ in verdicts):
            return  # refused whole for an entry's shape; the invariant checks nothing moved
        self.model = self._after_bulk(entries, verdicts, target.results(entries, answer))

    def _after_bulk(
        self,
        entries: list[dict[str, Any]],
        verdicts: list[tuple[Expectation, StatusCode | None]],
        results: list[dict[str, Any]],
    ) -> dict[str, ModelAgent]:
        """The model after a 207, each result judged. Entries apply in order, so a same-status
        entry the target answers otherwise than the emulator changes what the next entries
        for that agent start from."""
        model = dict(self.model)
        for sent, (verdict, code), result in zip(entries, verdicts, results, strict=True):
            agent_id = sent["agent-id"]
            answered = self.bench.target.judge_result(verdict, result, f"bulk entry for {agent_id}")
            if agent_id in model:
                model[agent_id] = verdict.after(
                    model[agent_id], sent["agent-status"], code, answered
                )
        return model

    @invariant()
    def the_target_matches_the_model(self) -> None:
        target = self.bench.target
        listed = {a["agent-id"]: a for a in target.api.agents()}
        for agent_id, expected in self.model.items():
            differs = expected.mismatch(listed[agent_id], code_may_be_hidden=True)
            assert differs is None, f"agent {agent_id} differs from the model: {differs}"
            if expected.code_hidden(listed[agent_id]):
                target.api.note("code_not_shown", "no status code", f"agent {agent_id}")


def test_random_changes_follow_the_rule_table(
    target: Target, conformance: Conformance, hypothesis_profile: settings
) -> None:
    if not target.writable:
        not_applicable("no writable agents (AGENTSTATUS_WRITE_AGENTS)")
    bench = Bench.of(target, conformance)
    # The @initialize rule is one of an example's steps: as many changes as the profile says.
    steps = hypothesis_profile.stateful_step_count + 1
    run_state_machine_as_test(
        # Documented to take "anything which returns an instance", annotated as a class only.
        lambda: Transitions(bench),  # type: ignore[arg-type]
        settings=settings(hypothesis_profile, stateful_step_count=steps),
    )
