"""Schemathesis with the vendor's own API reference (``schemas/official-openapi.json``).

The ``reference`` profile claims to follow that document, so every check Schemathesis has runs
against it (all of them are on by default in Schemathesis 4 and none is switched off here), on
generated positive and negative requests, then on stateful sequences. The vendor document has
no ``links``; Schemathesis infers its own from the parameter names (list → get, list → set,
get → set, set → get), and the state machine follows those. The ``default`` profile runs the
same, but for the checks named below. Both emulators run with ``--validate-responses``.
``AGENTSTATUS_FUZZ_EXAMPLES`` raises the number of examples (``make fuzz``).

The document's ``servers`` are 8x8's, so every call goes to an emulator started here, below
its ``/api/v1``; the demo tenant and real agents are pinned as in ``test_contract_schemathesis``.

What a schema cannot say, and the emulator decides on purpose (docs/DECISIONS.md), is handled
per request, never by switching a check off:

- Which change an agent accepts now: a positive single set is aimed at an agent that can change,
  with a reason code of its group (``domain_valid``), its list and item together when either is
  sent (the emulator's single set refuses an item without its list, or a short code without
  them, with 400: "list and item go together").
- ``positive_data_acceptance`` is not asked of a positive request that carries a value the
  emulator refuses by a documented rule while the reference's loose types allow it: a paging
  parameter that is not an integer, or a pageSize outside 1-500 (the reference caps pageSize at
  500 in its PageResult) or a negative pageIndex; a JSON number in a body that is a fraction or
  beyond +-(2**53 - 1) (I-JSON); a bulk body without ``agents``; a write without a body (the
  reference does not mark its request bodies ``required``, but a set without ``agent-status``
  cannot set anything: no Content-Type is 415, an empty body 400). Every other check still
  judges those responses.
- ``allow_header_conformance`` is not asked of ``OPTIONS .../agents/bulk``: the emulator lists
  PUT there because PUT ``.../agents/bulk`` is the reference's single set of an agent named
  "bulk" (the path matches ``/agents/{agentId}``, which has PUT); the check reads only the
  concrete path's methods.

In the ``default`` profile these checks are also excluded, each for a point that profile
answers differently from the reference on purpose (docs/rules-and-profiles.md):

- ``content_type_conformance``: its errors are ``application/problem+json`` (RFC 7807's own
  type), the reference's ``default`` response says ``application/json``.
- ``allow_header_conformance`` on the bulk path: it takes the guide's bulk PUT as well as POST.
- ``negative_data_rejection`` on a list with an invalid query: it ignores ``pageSize`` and
  ``pageIndex`` (the guide has no paging, and the reference's text says it is not supported);
  and on a bulk with an entry without ``agent-status``: the guide does not require it, and the
  default profile keeps the agent's status and changes only its reason code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import DEMO_TENANT
from hypothesis import HealthCheck, settings
from schemathesis import Case, GenerationMode
from schemathesis.core import NotSet
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
)
from test_contract_schemathesis import (
    MAX_EXAMPLES,
    domain_valid,
    pinned_schema,
)

from mock_server import create_app
from mock_server.core.profiles import MAX_PAGE_SIZE
from mock_server.serving.threaded import RunningServer, start_in_thread
from schemas.wire import API_BASE, STATUS_CODE_FIELDS

VENDOR_DOCUMENT = Path(__file__).resolve().parents[2] / "schemas" / "official-openapi.json"
STATEFUL_STEPS = 6
MAX_SAFE_INTEGER = 2**53 - 1
QUERY_NUMBER = re.compile(r"[-+]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
BODY_NUMBERS = ("agent-status", "status-code-list-id", "status-code-item-id")
CheckFunction = Callable[..., Any]
WRITES = ("setagentstatus", "setagentsstatuses")


# The vendor's document as published.
schema = pinned_schema(json.loads(VENDOR_DOCUMENT.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def reference_server() -> Iterator[RunningServer]:
    with start_in_thread(create_app(profile="reference", validate_responses=True)) as server:
        yield server


@pytest.fixture(scope="module")
def default_server() -> Iterator[RunningServer]:
    with start_in_thread(create_app(profile="default", validate_responses=True)) as server:
        yield server


def api_url(server: RunningServer) -> str:
    return f"{server.base_url}{API_BASE}"


def reset(server: RunningServer) -> None:
    requests.post(f"{server.base_url}/__admin/reset", timeout=10).raise_for_status()


def operation_id(case: Case[Any]) -> str:
    return str(case.operation.definition.raw.get("operationId"))


def is_positive(case: Case[Any]) -> bool:
    return case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE


def pin_tenant(case: Case[Any]) -> None:
    """The demo tenant, also where the state machine drew one (it ignores the configuration)."""
    case.path_parameters = {**(case.path_parameters or {}), "tenantId": DEMO_TENANT}


def aim(case: Case[Any], server: RunningServer) -> None:
    """A positive single set at an agent that can change now, with its group's codes: list and
    item together when any status-code field is sent."""
    if operation_id(case) != "setagentstatus" or not is_positive(case):
        return
    if not isinstance(case.body, dict):
        return
    if set(STATUS_CODE_FIELDS) & set(case.body):
        case.body = {**case.body, "status-code-list-id": 0, "status-code-item-id": 0}
    domain_valid(case, server)


def _query_in_domain(value: object, low: int, high: int) -> bool:
    text = str(value).strip()
    if QUERY_NUMBER.fullmatch(text) is None:
        return False
    number = Decimal(text)
    return number == number.to_integral_value() and low <= number <= high


def _body_number_in_domain(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return True  # not a number: the vendor's types refuse it, so not a positive case
    if isinstance(value, float) and not value.is_integer():
        return False
    return abs(value) <= MAX_SAFE_INTEGER


def refused_by_a_documented_rule(case: Case[Any]) -> str | None:
    """Why the emulator refuses this schema-valid request on purpose, or None."""
    query = case.query or {}
    for name, low, high in (("pageSize", 1, MAX_PAGE_SIZE), ("pageIndex", 0, MAX_SAFE_INTEGER)):
        values = query.get(name)
        for value in values if isinstance(values, list) else [values]:
            if value is not None and not _query_in_domain(value, low, high):
                return f"{name}={value!r} is not an integer in {low}-{high}"
    body = case.body
    if operation_id(case) in WRITES and isinstance(body, NotSet):
        return "a write without a body"
    if operation_id(case) == "setagentsstatuses":
        if not isinstance(body, dict) or "agents" not in body:
            return "a bulk body without agents"
        changes = [entry for entry in body["agents"] if isinstance(entry, dict)]
    else:
        changes = [body] if isinstance(body, dict) else []
    for change in changes:
        for name in BODY_NUMBERS:
            if name in change and not _body_number_in_domain(change[name]):
                return f"{name} {change[name]!r} is not an integer within +-(2**53 - 1)"
    return None


def reference_exclusions(case: Case[Any]) -> list[CheckFunction]:
    """The checks this one request is not asked to pass, each for a documented choice."""
    excluded: list[CheckFunction] = []
    if is_positive(case) and refused_by_a_documented_rule(case) is not None:
        excluded.append(positive_data_acceptance)
    if case.method == "OPTIONS" and case.operation.path.endswith("/agents/bulk"):
        excluded.append(allow_header_conformance)
    return excluded


def default_exclusions(case: Case[Any]) -> list[CheckFunction]:
    """The reference's exclusions, plus the points the default profile answers differently."""
    excluded = [*reference_exclusions(case), content_type_conformance]
    if case.operation.path.endswith("/agents/bulk"):
        excluded.append(allow_header_conformance)
    if not is_positive(case) and (ignores_invalid_paging(case) or omits_bulk_status(case)):
        excluded.append(negative_data_rejection)
    return excluded


def ignores_invalid_paging(case: Case[Any]) -> bool:
    query = case.meta.components.get(ParameterLocation.QUERY) if case.meta else None
    return operation_id(case) == "getagentsstatus" and query is not None and query.mode.is_negative


def omits_bulk_status(case: Case[Any]) -> bool:
    """A bulk entry without agent-status: the default profile keeps the agent's status."""
    agents = case.body.get("agents") if isinstance(case.body, dict) else None
    return (
        operation_id(case) == "setagentsstatuses"
        and isinstance(agents, list)
        and any(isinstance(entry, dict) and "agent-status" not in entry for entry in agents)
    )


def check(case: Case[Any], server: RunningServer, exclusions: Callable[..., Any]) -> None:
    reset(server)
    aim(case, server)
    case.call_and_validate(base_url=api_url(server), excluded_checks=exclusions(case))


@schema.parametrize()
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_reference_profile_passes_every_check_of_the_vendor_document(
    case: Case[Any], reference_server: RunningServer
) -> None:
    check(case, reference_server, reference_exclusions)


@schema.parametrize()
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_default_profile_passes_the_vendor_document_but_where_it_differs(
    case: Case[Any], default_server: RunningServer
) -> None:
    check(case, default_server, default_exclusions)


def run_state_machine(server: RunningServer, exclusions: Callable[..., Any]) -> None:
    machine: Any = schema.as_state_machine()

    class Workflow(machine):  # type: ignore[misc]
        def setup(self) -> None:
            reset(server)

        def before_call(self, case: Case[Any]) -> None:
            pin_tenant(case)
            aim(case, server)

        def get_call_kwargs(self, case: Case[Any]) -> dict[str, Any]:
            return {"base_url": api_url(server)}

        def validate_response(
            self,
            response: Any,
            case: Case[Any],
            additional_checks: list[CheckFunction] | None = None,
            **kwargs: Any,
        ) -> None:
            """As Schemathesis' own, with this request's exclusions."""
            case.validate_response(
                response,
                additional_checks=additional_checks,
                excluded_checks=exclusions(case),
                transport_kwargs=kwargs or None,
                recorder=self.recorder,
            )

    Workflow.run(
        settings=settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )


def test_the_vendor_document_has_no_links_so_the_state_machine_infers_them() -> None:
    document = json.loads(VENDOR_DOCUMENT.read_text())
    assert '"links"' not in VENDOR_DOCUMENT.read_text()
    assert set(document["paths"]) == {
        "/tenants/{tenantId}/agentstatus/agents",
        "/tenants/{tenantId}/agentstatus/agents/{agentId}",
        "/tenants/{tenantId}/agentstatus/agents/bulk",
    }
    transitions = [name for name in dir(schema.as_state_machine()) if "_200_" in name]
    assert transitions, "Schemathesis inferred no links: the stateful tests would test nothing"


def test_reference_profile_stateful_sequences_pass_every_check(
    reference_server: RunningServer,
) -> None:
    run_state_machine(reference_server, reference_exclusions)


def test_default_profile_stateful_sequences_pass_but_where_it_differs(
    default_server: RunningServer,
) -> None:
    run_state_machine(default_server, default_exclusions)
