"""Every transition of the rule table, from agents placed in each of the twelve statuses.

A live tenant cannot put an agent in 7 PROCESS_TRANSACT on demand; the emulator's control
plane can, so against an emulator every row and column of the table is tried.
"""

from __future__ import annotations

import pytest

from contract_tests.model import ModelAgent, expect
from contract_tests.target import Target
from mock_server.harness.handle import Emulator
from schemas.rules import AgentStatus

# Every status, and one number that is none.
TARGETS = [int(status) for status in AgentStatus] + [max(AgentStatus) + 1]


@pytest.mark.needs_control_plane("agents in every status can only be placed by the control plane")
def test_every_status_to_every_target_follows_the_rule_table(
    fresh: Target, emulator: Emulator
) -> None:
    state = emulator.state()
    # An agent whose group has a status code, so the sets are complete for every profile.
    model_agent = next(a for a in state["agents"] if fresh.codebook(a["agent-id"]).valid)
    group, code = model_agent["group-id"], fresh.codebook(model_agent["agent-id"]).valid[0]
    placed = []
    broken = []
    try:
        for source in AgentStatus:
            for wanted in TARGETS:
                agent_id = f"agKitMatrix{int(source)}to{wanted}"
                emulator.put_agent(agent_id, int(source), group, name="Kit")
                placed.append(agent_id)
                before = fresh.api.agent_body(agent_id)
                verdict = expect(int(source), wanted, "valid", code, True)
                answer = fresh.api.set_agent(agent_id, {"agent-status": wanted, **code.fields()})
                fresh.judge(verdict, answer, f"PUT agent {agent_id}")
                after = verdict.after(ModelAgent.read(before), wanted, code)
                now = fresh.api.agent_body(agent_id)
                if answer.status != verdict.status or after.mismatch(now) is not None:
                    broken.append(
                        f"{verdict.rule}, but the target answered {answer.status} "
                        f"and the agent shows {now['agent-status']}"
                    )
    finally:
        fresh.discard(placed)
    assert not broken, "transitions that break the rule table:\n" + "\n".join(broken)
