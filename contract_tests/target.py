"""The target the checks run against, whichever kind it is, and putting its agents back.

``open_target`` builds one from a ``KitConfig``: it starts the emulator in this process, or
connects to an emulator's URL, or to a live tenant. Every check sees the same ``Target``: the
public API through ``ApiTransport``, the agents it may change, the reason codes it may use for
each, and the harness's handle on the emulator's control plane only when it is an emulator.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import pytest

from contract_tests.answer import Answer, CheckFailed
from contract_tests.config import KitConfig
from contract_tests.guard import RestoreLedger, RestoreProblem, WriteGuard, describe_agent
from contract_tests.http import ApiTransport, Credentials
from contract_tests.model import STATE_FIELDS, Expectation, StatusCode
from mock_server.core.profiles import DEFAULT
from mock_server.harness.handle import Emulator
from mock_server.live.judge import ContractJudge
from schemas.rules import (
    LOGGED_OUT_STATUS_CODE_LIST_ID,
    REPEATABLE,
    SETTABLE,
    AgentStatus,
    can_transition,
)
from schemas.wire import STATUS_CODE_FIELDS, integral

UNKNOWN_LIST_ID = 987_654_321
UNKNOWN_ITEM_ID = 987_654_322
WRONG_SHORT_SUFFIX = "-not-this-item"
PLACED_FIELDS = frozenset({"agent-id", "agent-status", "group-id"})
"""The control plane's agent members ``Emulator.put_agent`` takes as arguments."""


@dataclass(frozen=True)
class CodeBook:
    """The reason codes the kit can use for one agent, and three it knows to be wrong."""

    valid: tuple[StatusCode, ...]
    bad_list: StatusCode | None
    """A list not assigned to the agent's group."""
    bad_item: StatusCode | None
    """An item that is not in the (assigned) list named."""
    bad_short: StatusCode | None
    """An assigned list and its item, with a short code that is not the item's."""
    source: str


def code_of(agent: Mapping[str, Any]) -> StatusCode | None:
    """The reason code an agent shows, if it shows a usable one (not the logged-out -1 pair)."""
    list_field, item_field, short_field = STATUS_CODE_FIELDS
    list_id, item_id = integral(agent.get(list_field)), integral(agent.get(item_field))
    if list_id is None or item_id is None:
        return None
    if list_id == LOGGED_OUT_STATUS_CODE_LIST_ID:
        return None
    short = agent.get(short_field)
    return StatusCode(list_id, item_id, short if isinstance(short, str) else None)


def codes_seen(agent: Mapping[str, Any]) -> CodeBook:
    """On a live target: only the code the agent itself shows is known to suit its group."""
    seen = code_of(agent)
    if seen is None or seen.short_code is None:
        return CodeBook((), StatusCode(UNKNOWN_LIST_ID, 1, None), None, None, "none seen")
    return CodeBook(
        valid=(seen,),
        bad_list=StatusCode(UNKNOWN_LIST_ID, seen.item_id, None),
        bad_item=StatusCode(seen.list_id, UNKNOWN_ITEM_ID, None),
        bad_short=StatusCode(seen.list_id, seen.item_id, seen.short_code + WRONG_SHORT_SUFFIX),
        source="seen on the agent",
    )


def codes_from_control_plane(state: Mapping[str, Any], agent_id: str) -> CodeBook:
    """On an emulator: the group's lists and items, and a list of the tenant it lacks."""
    agent = next(a for a in state["agents"] if a["agent-id"] == agent_id)
    group = next(g for g in state["groups"] if g["id"] == agent["group-id"])
    assigned = list(group.get("status-code-lists", []))
    lists = {code_list["id"]: code_list for code_list in state.get("status-code-lists", [])}
    valid = tuple(
        StatusCode(list_id, item["id"], item["short-code"])
        for list_id in assigned
        for item in lists[list_id]["items"]
    )
    foreign = [code_list for list_id, code_list in lists.items() if list_id not in assigned]
    bad_list = (
        StatusCode(foreign[0]["id"], foreign[0]["items"][0]["id"], None)
        if foreign and foreign[0]["items"]
        else StatusCode(UNKNOWN_LIST_ID, 1, None)
    )
    first = valid[0] if valid else None
    return CodeBook(
        valid=valid,
        bad_list=bad_list,
        bad_item=None if first is None else StatusCode(first.list_id, UNKNOWN_ITEM_ID, None),
        bad_short=None
        if first is None
        else StatusCode(first.list_id, first.item_id, f"{first.short_code}{WRONG_SHORT_SUFFIX}"),
        source="control plane",
    )


def same_state(first: Mapping[str, Any], second: Mapping[str, Any]) -> bool:
    """Equal status and reason code (absent fields count: omitted is not the same as shown)."""
    return all(first.get(name) == second.get(name) for name in STATE_FIELDS)


@dataclass
class Target:
    """One target, ready to be checked."""

    config: KitConfig
    api: ApiTransport
    emulator: Emulator | None
    """The emulator's control plane, through the harness's handle; None on a live target."""
    initial: dict[str, dict[str, Any]]
    """Every agent as listed when the session started, by id."""
    writable: list[str]
    codebooks: dict[str, CodeBook] = field(default_factory=dict)
    admin_agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    """On an emulator: each agent in the control plane's format (with group-id)."""
    restored: bool = False
    bulk_method: str | None = None
    """The bulk method the target answers 207 to, once the probes found it (for restoring)."""

    @property
    def ledger(self) -> RestoreLedger:
        return self.api.ledger

    def codebook(self, agent_id: str) -> CodeBook:
        if agent_id not in self.codebooks:
            if self.emulator is not None:
                state = self.emulator.state()
                self.codebooks[agent_id] = codes_from_control_plane(state, agent_id)
            else:
                self.codebooks[agent_id] = codes_seen(self.initial.get(agent_id, {}))
        return self.codebooks[agent_id]

    def judge(self, verdict: Expectation, answer: Answer, where: str) -> None:
        """Fail when the answer breaks the rule; note a finding when the vendor allows it but
        the emulator answers otherwise."""
        failure = verdict.failure(answer.status)
        if failure is not None:
            raise CheckFailed(f"{where}: {failure}: {answer.describe()}")
        self._note_answer(verdict, answer.status, where)

    def judge_result(self, verdict: Expectation, result: Mapping[str, Any], where: str) -> int:
        """The same for one bulk result; returns its change-status."""
        answered = integral(result.get("change-status"))
        if answered is None:
            raise CheckFailed(f"{where}: no change-status in {result}")
        failure = verdict.failure(answered)
        if failure is not None:
            raise CheckFailed(f"{where}: {failure}: {result}")
        self._note_answer(verdict, answered, where)
        return answered

    def _note_answer(self, verdict: Expectation, answered: int, where: str) -> None:
        key = verdict.finding(answered)
        if key is not None:
            self.api.note(key, f"{verdict.rule}: answered {answered}", where)

    def results(self, entries: list[dict[str, Any]], answer: Answer) -> list[dict[str, Any]]:
        """The 207's results, one per entry, in the entries' order.

        Neither vendor document promises an order: results are paired with entries by
        ``agent-id`` (by position only among entries naming the same agent). A result missing
        or one too many fails; another order is a finding.
        """
        if answer.status != 207:
            raise CheckFailed(f"a bulk must answer 207: {answer.describe()}")
        results = answer.json().get("data")
        if not isinstance(results, list):
            raise CheckFailed(f"a 207 without a data array: {answer.describe()}")
        by_agent: dict[object, list[dict[str, Any]]] = {}
        for result in results:
            by_agent.setdefault(result.get("agent-id"), []).append(result)
        paired = []
        for entry in entries:
            same = by_agent.get(entry["agent-id"], [])
            if not same:
                raise CheckFailed(
                    f"one result per entry: no result for the entry of agent "
                    f"{entry['agent-id']} in {answer.describe()}"
                )
            paired.append(same.pop(0))
        left = [result for remaining in by_agent.values() for result in remaining]
        if left:
            raise CheckFailed(f"one result per entry: results no entry asked for: {left}")
        if [r.get("agent-id") for r in results] != [e["agent-id"] for e in entries]:
            self.api.note(
                "bulk_result_order",
                "results in another order than the entries",
                answer.describe(),
            )
        return paired

    def unknown_agent_id(self) -> str:
        """A fresh id the target answers 404 for, so writes naming it are safe."""
        agent_id = f"agKitNoSuchAgent{secrets.token_hex(6)}"
        answer = self.api.get_agent(agent_id)
        if answer.status != 404:
            raise CheckFailed(f"an invented agent id exists: {answer.describe()}")
        return agent_id

    def other_tenant(self) -> str:
        return f"{self.config.tenant}-kit-not-yours"

    def settable_targets(self) -> list[int]:
        """The statuses the kit may send: LOGGED_OUT only when allowed."""
        joined = [int(status) for status in sorted(SETTABLE - {AgentStatus.LOGGED_OUT})]
        return joined + ([int(AgentStatus.LOGGED_OUT)] if self.config.allow_logout else [])

    def writable_now(self, statuses: Iterable[int]) -> list[dict[str, Any]]:
        """The writable agents whose current status is one of ``statuses``, as read now."""
        wanted = {int(status) for status in statuses}
        return [
            agent
            for agent in self.api.agents()
            if agent["agent-id"] in self.writable and agent["agent-status"] in wanted
        ]

    def discard(self, agent_ids: list[str]) -> None:
        """Remove agents a check created through the control plane; nothing to restore."""
        if self.emulator is None:
            raise RuntimeError("only a check on an emulator creates agents to discard")
        for agent_id in agent_ids:
            self.emulator.delete_agent(agent_id)
        self.ledger.forget(agent_ids)

    def restore(self) -> list[RestoreProblem]:
        """Put every agent the kit changed back to its starting status and code; once."""
        if self.restored:
            return self.ledger.problems
        self.restored = True
        with self.api.recording():
            for agent_id, start in self.ledger.starts().items():
                try:
                    problem = self._restore_one(agent_id, start)
                except Exception as error:  # every agent gets its try, and a line if it fails
                    problem = RestoreProblem(
                        agent_id,
                        describe_agent(start),
                        describe_agent(None),
                        self.api.redact(f"putting it back raised {type(error).__name__}: {error}"),
                    )
                if problem is None:
                    self.ledger.restored.append(agent_id)
                else:
                    self.ledger.problems.append(problem)
        return self.ledger.problems

    def put_back(self) -> None:
        """Every agent changed so far back where it started, now (the run goes on): so that
        each example of a state machine on a live target starts from the same state."""
        if self.emulator is not None:
            self.emulator.reset_state()
            return
        for agent_id, start in self.ledger.starts().items():
            problem = self._restore_one(agent_id, start)
            if problem is not None:
                raise CheckFailed(f"AGENT NOT RESTORED between examples: {problem.line()}")

    def _read(self, agent_id: str) -> dict[str, Any] | None:
        answer = self.api.get_agent(agent_id)
        if answer.status != 200:
            return None
        body: dict[str, Any] = answer.json()
        return body

    def _restore_one(self, agent_id: str, start: dict[str, Any]) -> RestoreProblem | None:
        now = self._read(agent_id)
        if now is not None and same_state(now, start):
            return None
        why = "it could not be read back"
        if now is not None:
            why = self._restore_through_api(agent_id, start, now)
            now = self._read(agent_id)
            if now is not None and same_state(now, start):
                return None
        if self.emulator is not None and agent_id in self.admin_agents:
            self._place(self.emulator, self.admin_agents[agent_id])
            now = self._read(agent_id)
            if now is not None and same_state(now, start):
                return None
        return RestoreProblem(agent_id, describe_agent(start), describe_agent(now), why)

    @staticmethod
    def _place(emulator: Emulator, document: Mapping[str, Any]) -> None:
        """An agent back as the control plane showed it, whatever its status."""
        fields = {k: v for k, v in document.items() if k not in PLACED_FIELDS}
        emulator.put_agent(
            document["agent-id"], document["agent-status"], document["group-id"], **fields
        )

    def _restore_through_api(
        self, agent_id: str, start: dict[str, Any], now: dict[str, Any]
    ) -> str:
        """Try the sets that would put the agent back; why it may not have worked.

        A target may refuse setting the status an agent already has (the vendor leaves it
        open): then only the reason code differs, and it is put back through another joined
        status.
        """
        current, wanted = int(now["agent-status"]), int(start["agent-status"])
        if current != wanted and not can_transition(current, wanted):
            return (
                f"the API cannot move an agent from {describe_agent(now)} "
                f"to {describe_agent(start)}"
            )
        if wanted == AgentStatus.LOGGED_OUT and not self.config.allow_logout:
            return "putting it back means LOGGED_OUT, which is not allowed in this run"
        body: dict[str, Any] = {"agent-status": wanted}
        code = code_of(start)
        if code is not None:
            body.update(code.fields())
        answer = self.api.set_agent(agent_id, body)
        if answer.status != 200 and current == wanted and current in REPEATABLE:
            via = next(int(s) for s in sorted(REPEATABLE) if s != current)
            if self.api.set_agent(agent_id, {**body, "agent-status": via}).status == 200:
                answer = self.api.set_agent(agent_id, body)
        if answer.status != 200 and self.bulk_method is not None:
            # A target may take in a bulk what it refuses alone (the guide requires every
            # status-code field of a single set; an agent that started without one shows none).
            entry = [{"agent-id": agent_id, **body}]
            bulk_answer = self.api.bulk(self.bulk_method, {"agents": entry})
            if bulk_answer.status == 207 and self._one_result(entry, bulk_answer) == 200:
                return "the restoring bulk was accepted but the agent does not read back as before"
        if answer.status != 200:
            return f"the restoring set was refused: {answer.describe()}"
        return "the restoring set was accepted but the agent does not read back as it started"

    def _one_result(self, entry: list[dict[str, Any]], answer: Answer) -> int | None:
        results = answer.parsed()
        data = results.get("data") if isinstance(results, dict) else None
        if not isinstance(data, list) or len(data) != 1 or not isinstance(data[0], dict):
            return None
        return integral(data[0].get("change-status"))


def open_target(config: KitConfig, api_root: str, emulator: Emulator | None) -> Target:
    """Connect to the API at ``api_root``; read the agents; decide which may be changed."""
    guard = WriteGuard(config.write_agents, config.allow_logout)
    api = ApiTransport(
        api_root,
        config.tenant,
        Credentials(config.username, config.token),
        contract=ContractJudge(DEFAULT.name if config.live else config.emulator_profile),
        guard=guard,
        ledger=RestoreLedger(),
        pause=config.pause,
        promise_bound=not config.live,
    )
    admin_agents: dict[str, dict[str, Any]] = {}
    if emulator is not None:
        emulator.reset_state()
        admin_agents = {a["agent-id"]: a for a in emulator.state()["agents"]}
    initial = {agent["agent-id"]: agent for agent in api.agents()}
    if config.write_agents is None:
        writable = list(initial)
    else:
        writable = [agent_id for agent_id in initial if agent_id in config.write_agents]
    return Target(
        config=config,
        api=api,
        emulator=emulator,
        initial=initial,
        writable=writable,
        admin_agents=admin_agents,
    )


def not_applicable(reason: str) -> NoReturn:
    """Report a check as not applicable to this target: shown in the summary and the report."""
    pytest.skip(f"not applicable to this target: {reason}")
