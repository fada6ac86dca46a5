"""Schemathesis against the running emulator, driven from the served OpenAPI document.

Every built-in check runs (Schemathesis 4 enables all of them by default; none is switched off
or loosened here) on generated positive and negative requests, and on stateful sequences that
follow the document's links (list → get → set → get, bulk → get). The emulator runs with
``--validate-responses`` as well. ``AGENTSTATUS_FUZZ_EXAMPLES`` raises the number of examples
(``make fuzz``).

One thing a schema cannot say is which change an agent accepts *now*: that depends on its
current status and its group's status-code lists, and a refused change is a 400. So a positive
single set is aimed, before it is sent, at an agent whose status can change, with a reason code
of its group (``domain_valid``); the check that such a request is accepted stays on, and
negative requests are sent as generated.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from conftest import DEMO_TENANT, DEMO_TOKEN, DEMO_USERNAME
from hypothesis import HealthCheck, settings
from schemathesis import Case, GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.schemas import OpenApiSchema

from mock_server import create_app
from mock_server.core.profiles import DEFAULT
from mock_server.http.profile_document import profile_document
from mock_server.serving.threaded import RunningServer, start_in_thread
from schemas.rules import SETTABLE
from schemas.wire import API_BASE, STATUS_CODE_FIELDS

MAX_EXAMPLES = int(os.environ.get("AGENTSTATUS_FUZZ_EXAMPLES", "20"))
STATEFUL_STEPS = 6
TENANT_PATTERN = re.compile(r"[A-Za-z0-9_.-]+")
# The guide's Padma Othertask, with every field an agent can show.
FULL_AGENT = "ag64oyEUb_Sk6bxVB9P5ye5w"
# An agent the demo fixture has in 4 WAIT_TRANSACT, in a group with status-code list 801.
SETTABLE_AGENT = "agAQDqmvKiRbG4ekigNSmbbb"


@pytest.fixture(scope="module")
def fuzzed_server() -> Iterator[RunningServer]:
    """An emulator of its own, since Schemathesis changes its state."""
    with start_in_thread(create_app(validate_responses=True)) as server:
        yield server


def api_url(server: RunningServer) -> str:
    return f"{server.base_url}{API_BASE}"


def reset(server: RunningServer) -> None:
    requests.post(f"{server.base_url}/__admin/reset", timeout=10).raise_for_status()


def pinned_schema(document: dict[str, Any]) -> OpenApiSchema:
    """An OpenAPI document for Schemathesis, with the demo tenant's credentials and real agents
    pinned where an operation needs one."""
    config = SchemathesisConfig.from_dict(
        {
            "auth": {"basic": {"username": DEMO_USERNAME, "password": DEMO_TOKEN}},
            "parameters": {"path.tenantId": DEMO_TENANT},
            "generation": {"max-examples": MAX_EXAMPLES},
            "operations": [
                {
                    "include-operation-id": "getagentstatus",
                    "parameters": {"path.agentId": FULL_AGENT},
                },
                {
                    "include-operation-id": "setagentstatus",
                    "parameters": {"path.agentId": SETTABLE_AGENT},
                },
            ],
        }
    )
    return schemathesis.openapi.from_dict(document, config=config)


# The document the emulator serves at /openapi.json (default profile).
schema = pinned_schema(profile_document(DEFAULT))


def pin_tenant(case: Case[Any]) -> None:
    """The demo tenant instead of a generated one that matches the pattern (the state machine
    does not apply the configured parameters); a pattern-breaking one is left to be refused."""
    tenant = (case.path_parameters or {}).get("tenantId")
    if isinstance(tenant, str) and TENANT_PATTERN.fullmatch(tenant):
        case.path_parameters = {**(case.path_parameters or {}), "tenantId": DEMO_TENANT}


def is_positive_single_set(case: Case[Any]) -> bool:
    return (
        case.operation.definition.raw.get("operationId") == "setagentstatus"
        and case.meta is not None
        and case.meta.generation.mode == GenerationMode.POSITIVE
        and isinstance(case.body, dict)
    )


def domain_valid(case: Case[Any], server: RunningServer) -> None:
    """Aim a positive single set at an agent that can change now, with its group's codes."""
    tenant = requests.get(f"{server.base_url}/__admin/tenants/{DEMO_TENANT}", timeout=10).json()
    settable = {int(status) for status in SETTABLE}
    lists_of = {group["id"]: group["status-code-lists"] for group in tenant["groups"]}
    agent = next(
        agent
        for agent in tenant["agents"]
        if agent["agent-status"] in settable - {1} and lists_of[agent["group-id"]]
    )
    code_list = next(
        c for c in tenant["status-code-lists"] if c["id"] == lists_of[agent["group-id"]][0]
    )
    item = code_list["items"][0]
    valid = dict(
        zip(STATUS_CODE_FIELDS, (code_list["id"], item["id"], item["short-code"]), strict=True)
    )
    assert isinstance(case.body, dict)
    case.body = {
        **case.body,
        **{name: value for name, value in valid.items() if name in case.body},
    }
    case.path_parameters = {**(case.path_parameters or {}), "agentId": agent["agent-id"]}


@schema.parametrize()
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_operation_passes_every_check(case: Case[Any], fuzzed_server: RunningServer) -> None:
    reset(fuzzed_server)
    if is_positive_single_set(case):
        domain_valid(case, fuzzed_server)
    case.call_and_validate(base_url=api_url(fuzzed_server))


def test_stateful_sequences_pass_every_check(fuzzed_server: RunningServer) -> None:
    machine: Any = schema.as_state_machine()

    class Workflow(machine):  # type: ignore[misc]
        def setup(self) -> None:
            reset(fuzzed_server)

        def before_call(self, case: Case[Any]) -> None:
            pin_tenant(case)
            if is_positive_single_set(case):
                domain_valid(case, fuzzed_server)

        def get_call_kwargs(self, case: Case[Any]) -> dict[str, Any]:
            return {"base_url": api_url(fuzzed_server)}

    Workflow.run(
        settings=settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
