"""The fast agent check never passes an agent that jsonschema refuses, and passes real ones."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from mock_server.core.fixture_check import agent_check
from mock_server.core.fixtures import load_fixture
from schemas import load_schema

SCHEMA = load_schema("fixture.schema.json")
AGENT_SCHEMA = Draft202012Validator({"$defs": SCHEMA["$defs"], "$ref": "#/$defs/agent"})
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 14),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-2, max_value=13),
    st.sampled_from(["", "none", "stopnew", "ag ok", "agValid_1", "ag\n", "x" * 65, "Lunch"]),
    st.lists(st.integers(), max_size=2),
)
FIELDS = [
    "agent-id",
    "name",
    "group-id",
    "agent-status",
    "agent-sub-status",
    "status-code-list-id",
    "status-code-item-id",
    "status-code-item-short-code",
    "colour",
]
AGENTS = st.dictionaries(st.sampled_from(FIELDS), ODD_VALUES, max_size=len(FIELDS))


@settings(max_examples=400, deadline=None)
@given(AGENTS)
def test_the_fast_check_is_never_more_lenient_than_jsonschema(agent: dict[str, Any]) -> None:
    check = agent_check()
    assert check is not None
    if check(agent):
        assert AGENT_SCHEMA.is_valid(agent), agent


def test_the_fast_check_passes_the_demo_and_generated_agents() -> None:
    check = agent_check()
    assert check is not None
    agents = [agent for tenant in load_fixture()["tenants"] for agent in tenant.get("agents", [])]
    agents += [
        {"agent-id": f"ag{n}", "group-id": n, "agent-status": n % 12, "name": f"A {n}"}
        for n in range(200)
    ]
    assert all(AGENT_SCHEMA.is_valid(agent) for agent in agents)
    assert all(check(agent) for agent in agents)
    assert not check({**agents[0], "agent-status": 12})
    assert not check({**agents[0], "agent-id": "has space"})
