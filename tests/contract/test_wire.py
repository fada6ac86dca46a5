"""The API's paths are written once (``schemas.wire``): every OpenAPI document declares each
vendor operation at the path the module names, and the helpers escape and parse them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import load_schema
from schemas.wire import (
    OPERATION_PATHS,
    agent_path,
    agents_path,
    bulk_path,
    integral,
    path_ids,
    route_rule,
)

DOCUMENTS = ["openapi.yaml", "vendor-openapi.yaml", "official-openapi.json"]
METHODS = {"get", "put", "post", "patch", "delete"}


def operation_paths(document: dict[str, Any]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                found.setdefault(operation["operationId"], set()).add(path)
    return found


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_document_puts_each_operation_at_the_wire_path(name: str) -> None:
    declared = operation_paths(load_schema(name))
    assert {operation: {OPERATION_PATHS.get(operation)} for operation in declared} == declared
    assert set(operation_paths(load_schema("official-openapi.json"))) <= set(declared)


@given(st.text(min_size=1), st.text(min_size=1))
def test_ids_are_one_escaped_segment_each_and_parse_back(tenant: str, agent: str) -> None:
    path = "/api/v1" + agent_path(tenant, agent)
    head, tail = path.split("/agentstatus/agents/")
    assert "/" not in tail and "?" not in tail and "#" not in tail and " " not in tail
    assert head.count("/") == 4
    assert agents_path(tenant) + "/bulk" == bulk_path(tenant)


def test_path_ids_name_the_tenant_and_the_agent_but_not_bulk() -> None:
    assert path_ids("/api/v1/tenants/acme/agentstatus/agents/ag1") == ("acme", "ag1")
    assert path_ids("/api/v1/tenants/acme/agentstatus/agents/bulk") == ("acme", None)
    assert path_ids("/api/v2/tenants/acme/agentstatus/agents") == ("acme", None)
    assert path_ids("/api/v1/tenants/acme") == ("acme", None)
    assert path_ids("/__admin/tenants/acme") == (None, None)


def test_route_rules_are_werkzeug_placeholders() -> None:
    assert route_rule(OPERATION_PATHS["getagentstatus"]) == (
        "/tenants/<tenantId>/agentstatus/agents/<agentId>"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, 5),
        (5.0, 5),
        (-0.0, 0),
        (True, None),
        (5.5, None),
        ("5", None),
        (None, None),
        (float("nan"), None),
        (float("inf"), None),
        (2**64, 2**64),
    ],
)
def test_integral_reads_numbers_with_no_fraction(value: object, expected: int | None) -> None:
    assert integral(value) == expected
