"""The reference client against a running emulator in each profile, as a Hypothesis state machine.

Random sequences of ``set_agent_status``, ``set_agents_statuses`` (several chunks per call),
``get_agent`` and ``list_agents`` on the demo tenant, with a model of every agent's status and
status code. Whether a change is allowed, and the words of its refusal, come from the rule
table (``schemas.rules``): an allowed change must succeed and read back, a refused one must raise
``ChangeRejectedError`` (or be a refused bulk outcome) with the API's reason and change nothing.
The model starts from the control plane's view of the tenant, not the client's, so a misread
field cannot hide on both sides. ``AGENTSTATUS_FUZZ_EXAMPLES`` sets the examples (default 15).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import pytest
from conftest import DEMO_TENANT
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from support_client import admin, make_client

from client import (
    Agent,
    AgentNotFoundError,
    AgentStatusClient,
    ChangeOutcome,
    ChangeRejectedError,
    StatusChange,
    StatusCode,
    TransitionNotAllowedError,
    check_transition,
)
from mock_server import create_app
from mock_server.core.profiles import PROFILES, Profile
from mock_server.serving.threaded import RunningServer, start_in_thread
from schemas.rules import (
    LOGGED_OUT_STATUS_CODE_ITEM_ID,
    LOGGED_OUT_STATUS_CODE_LIST_ID,
    REPEATABLE,
    RULES,
    SETTABLE,
    AgentStatus,
    transition_refusal,
    unknown_status_refusal,
)
from schemas.wire import STATUS_CODE_FIELDS

EXAMPLES = int(os.environ.get("AGENTSTATUS_FUZZ_EXAMPLES", "15"))
STEPS = min(max(EXAMPLES, 10), 50)
CHUNK = 3
"""The client's chunk size here: a bulk of up to ``BULK_MAX`` changes is sent in several parts."""
BULK_MAX = 7
UNKNOWN_AGENT = "agNoSuchAgentInThisTenant0"
JOINED = sorted(int(status) for status in REPEATABLE)
STATUSES = [int(status) for status in AgentStatus]
NO_STATUSES = [-1, 12, 99]
"""Numbers that are no status at all."""
LOGGED_OUT_CODE = (LOGGED_OUT_STATUS_CODE_LIST_ID, LOGGED_OUT_STATUS_CODE_ITEM_ID, None)

Code = tuple[Any, ...]
"""list id, item id, short code, as a read shows them."""
Listed = tuple[int, int, str]
"""A status code of a group's lists: list id, item id, short code."""


class Shown(NamedTuple):
    """One agent as a read must show it: its status and its status code (None: no code)."""

    status: int
    code: Code | None

    @classmethod
    def of_wire(cls, body: Mapping[str, Any]) -> Shown:
        """From the control plane's JSON, the model's independent source."""
        code = tuple(body.get(name) for name in STATUS_CODE_FIELDS)
        return cls(int(body["agent-status"]), None if code == (None,) * 3 else code)

    @classmethod
    def of_agent(cls, agent: Agent) -> Shown:
        """From what the client returned."""
        code = (agent.status_code_list_id, agent.status_code_item_id, agent.status_code_short_code)
        return cls(int(agent.status), None if code == (None,) * 3 else code)


@dataclass(frozen=True)
class Platform:
    """One emulator in one profile, and the client the machine drives it with."""

    profile: Profile
    server: RunningServer

    def client(self) -> AgentStatusClient:
        return make_client(
            f"{self.server.base_url}/api/v1",
            bulk_method=self.profile.bulk_methods[0],
            bulk_chunk_size=CHUNK,
        )


@pytest.fixture(scope="module", params=sorted(PROFILES))
def platform(request: pytest.FixtureRequest) -> Iterator[Platform]:
    with start_in_thread(create_app(profile=request.param, validate_responses=True)) as server:
        yield Platform(PROFILES[request.param], server)


class Drawn(NamedTuple):
    """One drawn change: agent, status (None: keep it, bulk only), which code, with short code."""

    agent_id: str
    status: int | None
    code_pick: int | None
    with_short: bool


def shape_refusal(status: int) -> str | None:
    """Why a status number is refused whatever the agent (no status, or not settable)."""
    if status not in STATUSES:
        return unknown_status_refusal(status)
    if AgentStatus(status) not in SETTABLE:
        return transition_refusal(status, status)
    return None


class ClientMachine(RuleBasedStateMachine):
    """The client's four operations against the model of the demo tenant's agents."""

    agent_ids = st.runner().flatmap(
        lambda machine: st.sampled_from(machine.movable) | st.sampled_from(machine.candidates)
    )
    """Agents that can be changed half of the time, so sequences get somewhere."""
    any_agent = agent_ids | st.runner().flatmap(
        lambda machine: st.sampled_from([UNKNOWN_AGENT, *machine.movable])
    )
    """Now and then an agent the tenant does not have."""
    settable = st.sampled_from(JOINED) | st.sampled_from(sorted(int(s) for s in SETTABLE))
    statuses = settable | st.sampled_from(STATUSES) | st.sampled_from(NO_STATUSES)
    unsendable = st.sampled_from(sorted(set(STATUSES) - SETTABLE) + NO_STATUSES)
    """What a bulk refuses as a whole: one such entry is spliced into half of the bulks."""
    codes = st.none() | st.integers(0, 9)
    changes = st.builds(Drawn, any_agent, statuses, codes, st.booleans())
    bulk_changes = st.builds(
        Drawn, any_agent, st.sampled_from([*JOINED, *sorted(SETTABLE), None]), codes, st.booleans()
    )
    spoilers = st.none() | st.tuples(
        st.integers(0, BULK_MAX), st.builds(Drawn, any_agent, unsendable, codes, st.booleans())
    )

    def __init__(self, platform: Platform) -> None:
        super().__init__()
        self.platform = platform
        self.profile = platform.profile
        self.api = platform.client()
        self.model: dict[str, Shown] = {}
        self.codebook: dict[str, list[Listed]] = {}
        self.candidates: list[str] = []
        self.movable: list[str] = []

    def teardown(self) -> None:
        self.api.close()

    @initialize()
    def start_from_the_fixture(self) -> None:
        root = self.platform.server.base_url
        admin(root, "POST", "/reset")
        tenant = admin(root, "GET", f"/tenants/{DEMO_TENANT}")
        items = {
            code_list["id"]: [
                (code_list["id"], i["id"], i["short-code"]) for i in code_list["items"]
            ]
            for code_list in tenant["status-code-lists"]
        }
        groups = {
            group["id"]: [code for ids in group["status-code-lists"] for code in items[ids]]
            for group in tenant["groups"]
        }
        self.model = {a["agent-id"]: Shown.of_wire(a) for a in tenant["agents"]}
        self.codebook = {a["agent-id"]: groups[a["group-id"]] for a in tenant["agents"]}
        self.codebook[UNKNOWN_AGENT] = next(codes for codes in groups.values() if codes)
        # An agent whose group has no status code cannot be set where a code is required.
        self.candidates = sorted(agent_id for agent_id, codes in self.codebook.items() if codes)
        self.candidates.remove(UNKNOWN_AGENT)
        self.movable = [a for a in self.candidates if self.model[a].status in RULES.changeable]

    # -- what a change sends and what the model expects of it ------------------------------

    def change_of(self, drawn: Drawn, *, codes_required: bool) -> StatusChange:
        """The change to send: a code of the agent's group when drawn or the profile needs one
        (then with its short code, which the guide requires too)."""
        pick = 0 if drawn.code_pick is None and codes_required else drawn.code_pick
        if pick is None:
            return StatusChange(drawn.agent_id, drawn.status)
        codes = self.codebook[drawn.agent_id]
        list_id, item_id, short = codes[pick % len(codes)]
        short_sent = short if drawn.with_short or codes_required else None
        return StatusChange(drawn.agent_id, drawn.status, StatusCode(list_id, item_id, short_sent))

    def after(self, change: StatusChange, target: int) -> Shown:
        """The agent once ``change`` (to ``target``) is applied: the code sent, its short code
        filled in; without one, none (LOGGED_OUT: the service's logged-out pair)."""
        code = change.status_code
        if code is not None:
            short = next(
                s
                for lst, item, s in self.codebook[change.agent_id]
                if (lst, item) == (code.list_id, code.item_id)
            )
            return Shown(target, (code.list_id, code.item_id, short))
        return Shown(target, LOGGED_OUT_CODE if target == AgentStatus.LOGGED_OUT else None)

    # -- the rules ---------------------------------------------------------------------------

    @rule(drawn=changes)
    def set_one(self, drawn: Drawn) -> None:
        assert drawn.status is not None
        change = self.change_of(drawn, codes_required=self.profile.single_requires_status_codes)
        status = drawn.status
        current = self.model.get(drawn.agent_id)
        refusal = shape_refusal(status)
        if refusal is None and current is not None:
            refusal = transition_refusal(current.status, status)
        if refusal is None and current is None:
            with pytest.raises(AgentNotFoundError) as missing:
                self.api.set_agent_status(drawn.agent_id, status, change.status_code)
            assert missing.value.agent_id == drawn.agent_id
            return
        if refusal is not None:
            with pytest.raises(ChangeRejectedError) as refused:
                self.api.set_agent_status(drawn.agent_id, status, change.status_code)
            assert refused.value.status == 400
            assert refused.value.reason == refusal
            return
        outcome = self.api.set_agent_status(drawn.agent_id, status, change.status_code)
        assert outcome.ok, outcome
        assert (outcome.agent_id, outcome.change) == (drawn.agent_id, change)
        self.model[drawn.agent_id] = self.after(change, status)

    @rule(drawn=st.lists(bulk_changes, min_size=1, max_size=BULK_MAX), spoiler=spoilers)
    def set_many(self, drawn: list[Drawn], spoiler: tuple[int, Drawn] | None) -> None:
        if spoiler is not None:
            drawn = [*drawn]
            drawn.insert(spoiler[0] % (len(drawn) + 1), spoiler[1])
        codes_required = self.profile.bulk_requires_status_codes
        changes = [self.change_of(d, codes_required=codes_required) for d in drawn]
        planned = dict(self.model)
        expected: list[tuple[int, str]] = []
        whole: str | None = None
        for start in range(0, len(changes), CHUNK):
            chunk = changes[start : start + CHUNK]
            whole = self.chunk_refusal(chunk)
            if whole is not None:
                break
            for change in chunk:
                expected.append(self.entry(planned, change))
        if whole is not None:
            with pytest.raises(ChangeRejectedError) as refused:
                self.api.set_agents_statuses(changes)
            assert refused.value.reason == whole
            partial = refused.value.partial
            assert partial is not None
            self.check_outcomes(changes[: len(expected)], list(partial), expected)
        else:
            result = self.api.set_agents_statuses(changes)
            self.check_outcomes(changes, list(result), expected)
        self.model = planned

    def chunk_refusal(self, chunk: list[StatusChange]) -> str | None:
        """Why one bulk request is refused as a whole (an entry the reference's request schema
        refuses), naming the first such entry; None when each entry is decided on its own."""
        for index, change in enumerate(chunk):
            if change.status is None:
                piece = (
                    "agent-status is required." if self.profile.bulk_requires_agent_status else None
                )
            else:
                piece = shape_refusal(change.status)
            if piece is not None:
                return f"agents[{index}].{piece}"
        return None

    def entry(self, planned: dict[str, Shown], change: StatusChange) -> tuple[int, str]:
        """One bulk entry's expected (change-status, reason), applied to ``planned``."""
        current = planned.get(change.agent_id)
        if current is None:
            return 404, ""
        target = current.status if change.status is None else change.status
        refusal = transition_refusal(current.status, target)
        if refusal is not None:
            return 400, refusal
        planned[change.agent_id] = self.after(change, target)
        return 200, "OK"

    @staticmethod
    def check_outcomes(
        changes: list[StatusChange], outcomes: list[ChangeOutcome], expected: list[tuple[int, str]]
    ) -> None:
        """Each outcome paired with its own change, with the status and reason expected."""
        assert len(outcomes) == len(changes) == len(expected)
        for change, outcome, (status, reason) in zip(changes, outcomes, expected, strict=True):
            assert (outcome.agent_id, outcome.change) == (change.agent_id, change)
            assert outcome.change_status == status, (change, outcome)
            assert outcome.ok == (status == 200)
            if status != 404:
                assert outcome.reason is not None and outcome.reason.endswith(reason), outcome

    @rule(agent_id=st.one_of(agent_ids, st.just(UNKNOWN_AGENT)))
    def get_one(self, agent_id: str) -> None:
        expected = self.model.get(agent_id)
        if expected is None:
            with pytest.raises(AgentNotFoundError):
                self.api.get_agent(agent_id)
            return
        agent = self.api.get_agent(agent_id)
        assert agent.agent_id == agent_id
        assert Shown.of_agent(agent) == expected

    @rule(agent_id=agent_ids, status=statuses)
    def local_check_agrees(self, agent_id: str, status: int) -> None:
        """The client's own pre-check refuses exactly what the table refuses, sending nothing."""
        current = self.model[agent_id].status
        if transition_refusal(current, status) is None:
            check_transition(current, status)
        else:
            with pytest.raises(TransitionNotAllowedError):
                check_transition(current, status)

    @invariant()
    def the_list_matches_the_model(self) -> None:
        if not self.model:
            return  # before the initialize step
        listed = {agent.agent_id: Shown.of_agent(agent) for agent in self.api.list_agents()}
        assert listed == self.model


def test_the_client_follows_the_rule_table(platform: Platform) -> None:
    run_state_machine_as_test(
        # Documented to take "anything which returns an instance", annotated as a class only.
        lambda: ClientMachine(platform),  # type: ignore[arg-type]
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            report_multiple_bugs=False,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
