"""The JSON Schemas: valid, linked by $id, in step with the rule table, strict where the vendor
is precise, and accepting every example body of the vendor's guide."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator
from support_contract import guide_example

from schemas import load_schema
from schemas.documents import SCHEMA_BASE_URI, schema_files, schema_registry
from schemas.rules import SETTABLE, AgentStatus

WIRE_SCHEMAS = {
    "agent.schema.json",
    "agent-list.schema.json",
    "agent-status.schema.json",
    "settable-status.schema.json",
    "set-status-request.schema.json",
    "set-status-response.schema.json",
    "bulk-request.schema.json",
    "bulk-entry.schema.json",
    "bulk-response.schema.json",
    "bulk-result.schema.json",
    "problem.schema.json",
    "page.schema.json",
}


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": SCHEMA_BASE_URI + name},
        registry=schema_registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def errors(name: str, instance: Any) -> list[str]:
    return [error.message for error in validator(name).iter_errors(instance)]


def test_every_wire_body_has_a_schema() -> None:
    assert set(schema_files()) >= WIRE_SCHEMAS | {"fixture.schema.json"}


@pytest.mark.parametrize("name", schema_files())
def test_each_schema_is_draft_2020_12_and_named_by_its_id(name: str) -> None:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == SCHEMA_BASE_URI + name


def test_status_enum_names_every_status_of_the_rule_table() -> None:
    schema = load_schema("agent-status.schema.json")
    assert {entry["const"]: entry["title"] for entry in schema["oneOf"]} == {
        status.value: status.name for status in AgentStatus
    }


def test_settable_enum_is_the_rule_tables_settable_set() -> None:
    schema = load_schema("settable-status.schema.json")
    assert {entry["const"]: entry["title"] for entry in schema["oneOf"]} == {
        status.value: status.name for status in SETTABLE
    }


def test_fixture_statuses_span_the_rule_table() -> None:
    status = load_schema("fixture.schema.json")["$defs"]["agent"]["properties"]["agent-status"]
    assert (status["minimum"], status["maximum"]) == (min(AgentStatus), max(AgentStatus))


@pytest.mark.parametrize(
    ("heading", "name"),
    [
        ("All Agent Status Response", "agent-list.schema.json"),
        ("Single Agent Status Response", "agent.schema.json"),
        ("Set Single Agent Status Request", "set-status-request.schema.json"),
        ("Set Single Agent Status Response", "set-status-response.schema.json"),
        ("Set Bulk Status Request", "bulk-request.schema.json"),
        ("Set Bulk Status Response", "bulk-response.schema.json"),
    ],
)
def test_every_guide_example_body_is_valid(heading: str, name: str) -> None:
    assert errors(name, guide_example(heading)) == []


AGENT = {"agent-id": "ag1", "agent-status": 4}


@pytest.mark.parametrize(
    ("name", "instance"),
    [
        ("agent.schema.json", {**AGENT, "agent-status": 12}),
        ("agent.schema.json", {**AGENT, "agent-status": "4"}),
        ("agent.schema.json", {**AGENT, "agent_status": 4}),
        ("agent.schema.json", {**AGENT, "name": None}),
        ("agent.schema.json", {**AGENT, "status-code-list-id": 801}),
        ("agent.schema.json", {**AGENT, "agent-sub-status": "away"}),
        ("agent-list.schema.json", {"data": [AGENT], "total": 1}),
        ("set-status-request.schema.json", {"agent-status": 2}),
        ("set-status-request.schema.json", {"agent-status": 4.5}),
        ("set-status-request.schema.json", {"status-code-list-id": 801}),
        ("set-status-request.schema.json", {"agent-status": 3, "status-code-list-id": 801}),
        ("set-status-request.schema.json", {"agent-status": 3, "status-code-list-id": None}),
        ("bulk-request.schema.json", {"agents": [{"agent-id": "a"}] * 101}),
        ("bulk-request.schema.json", {"agents": [{"agent-status": 3}]}),
        ("bulk-response.schema.json", {"data": [{"agent-id": "a", "change-status": 200}]}),
        ("set-status-response.schema.json", {"reason": "OK", "change-status": "200"}),
        ("problem.schema.json", {"title": "Bad Request", "status": 400, "detail": "x"}),
    ],
)
def test_schemas_refuse_what_the_vendor_rules_out(name: str, instance: Any) -> None:
    assert errors(name, instance) != []


def test_bulk_limit_is_the_references_100() -> None:
    assert errors("bulk-request.schema.json", {"agents": [{"agent-id": "a"}] * 100}) == []
    entries = load_schema("bulk-request.schema.json")["properties"]["agents"]
    assert entries["maxItems"] == 100
    assert "reference" in load_schema("bulk-request.schema.json")["description"]


@pytest.mark.parametrize(
    "fields",
    [
        {"status-code-item-id": 1725},
        {"status-code-list-id": 801},
        {"status-code-item-short-code": "Lunch"},
    ],
    ids=["item without list", "list without item", "short code alone"],
)
def test_a_bulk_entry_may_pair_codes_wrongly_but_a_single_set_may_not(
    fields: dict[str, Any],
) -> None:
    """A bulk request with such an entry is accepted and answered per entry (a 400 result);
    the same fields in a single set are the whole request's 400."""
    entry = {"agent-id": "a", "agent-status": 3, **fields}
    assert errors("bulk-request.schema.json", {"agents": [entry]}) == []
    assert errors("set-status-request.schema.json", {"agent-status": 3, **fields}) != []


def test_a_loaded_schema_is_the_callers_own_copy() -> None:
    """Changing what ``load_schema`` returned never changes what the next caller reads."""
    first = load_schema("platforms.json")
    first["platforms"]["NA12"] = "https://changed.invalid"
    first.clear()
    assert load_schema("platforms.json")["platforms"]["NA12"] != "https://changed.invalid"
