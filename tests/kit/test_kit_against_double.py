"""The contract kit against an independent double written from the vendor documents alone.

``tests/kit/vendor_double.py`` shares none of the emulator's code or choices: every point the
two vendor documents leave open is a switch of its ``Variant``, and every rule a real service
could get wrong is one of its ``broken`` names. Each case serves one variant on 127.0.0.1 (a
thread of this process) and runs the kit against it as a live tenant, in a subprocess, with
the double's writable agents named. The kit must:

- pass every variant the documents allow, with no vendor-contract violation, every agent put
  back, and exactly the findings (differences from the emulator's choices) that variant earns;
- fail every broken variant, with a message naming the broken rule.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from tests.kit.kit_process import run_kit
from tests.kit.vendor_double import TENANT, TOKEN, USERNAME, WRITABLE, Variant, serve


@dataclass(frozen=True)
class KitRun:
    returncode: int
    output: str
    report: dict[str, Any]

    @property
    def findings(self) -> set[str]:
        return {finding["key"] for finding in self.report.get("findings", [])}


def run_kit_on(variant: Variant, report: Path, *options: str) -> KitRun:
    """The kit, as a live tenant's user runs it, against the double serving ``variant``."""
    with serve(variant) as api_root:
        run = run_kit(
            "--report",
            str(report),
            *options,
            variables={
                "AGENTSTATUS_BASE_URL": api_root,
                "AGENTSTATUS_TENANT": TENANT,
                "AGENTSTATUS_USERNAME": USERNAME,
                "AGENTSTATUS_TOKEN": TOKEN,
                "AGENTSTATUS_WRITE_AGENTS": ",".join(WRITABLE),
                "AGENTSTATUS_PAUSE": "0",
            },
        )
    written = report.with_name(report.name + ".json")
    data = json.loads(written.read_text(encoding="utf-8")) if written.exists() else {}
    return KitRun(run.returncode, run.stdout + run.stderr, data)


# -- every variant the documents allow ----------------------------------------------------

REFERENCE_LETTER = Variant()
GUIDE_LETTER = Variant(
    bulk_methods=frozenset({"PUT"}),
    single_requires_status_codes=True,
    bulk_requires_agent_status=False,
    bulk_requires_status_codes=True,
    bulk_limit=None,
    single_success_body="guide",
    bulk_result_message="guide",
    group_filter=False,
    tenant_forbidden="xml",
)
LIKE_THE_EMULATOR = Variant(
    error_media_type="application/problem+json",
    unauthorized_body="problem",
    www_authenticate=True,
    request_id=True,
    bulk_methods=frozenset({"PUT", "POST"}),
    bulk_requires_agent_status=False,
    single_success_body="guide",
    bulk_result_message="guide",
)
# Every open point away from both the letter and the emulator at once (a large paged tenant).
EVERYTHING_ELSE = Variant(
    error_body="spring",
    unauthorized_body="spring",
    extra_fields=True,
    integral_floats=True,
    result_order="reversed",
    same_status="refused",
    bulk_result_message="other",
    reason_texts="other",
    single_success_body="text",
    pagination="honoured",
    filler_agents=600,
    unknown_agent_in_bulk=400,
)
ALLOWED = {
    "the reference to the letter": REFERENCE_LETTER,
    "the guide to the letter": GUIDE_LETTER,
    "as close to the emulator as the double goes": LIKE_THE_EMULATOR,
    "every open point otherwise": EVERYTHING_ELSE,
    "HTML errors, PUT and POST": replace(
        REFERENCE_LETTER, error_body="html", bulk_methods=frozenset({"PUT", "POST"})
    ),
    "empty errors, Problem JSON 401": replace(
        GUIDE_LETTER, error_body="empty", unauthorized_body="problem", www_authenticate=True
    ),
    "422 refusals, short codes ignored, no code shown when available": replace(
        REFERENCE_LETTER,
        refusal_status=422,
        short_code="ignored",
        codes_shown="not-when-available",
        unknown_agent_in_bulk=400,
    ),
}

# The default profile's answer on each disputed point, as the variant's switch spells it.
EMULATOR_DEFAULT = {
    "bulk_methods": frozenset({"PUT", "POST"}),
    "single_requires_status_codes": False,
    "bulk_requires_agent_status": False,
    "bulk_requires_status_codes": False,
    "bulk_limit": 100,
    "group_filter": True,
}


def expected_findings(variant: Variant) -> set[str]:
    """What the kit must report as differing from the emulator, worked out from the switches.

    The double's Problem bodies never carry the emulator's ``instance``, so ``error_body``
    and ``unauthorized_body`` are always found, and it refuses an unsettable status inside
    the 207 where the emulator refuses the whole bulk.
    """
    found = {"error_body", "unauthorized_body", "bulk_shape_refusal"}
    found |= {key for key, value in EMULATOR_DEFAULT.items() if getattr(variant, key) != value}
    if variant.unknown_agent_in_bulk == 400 and variant.refusal_status == 400:
        # The probes name unknown agents only: an entry refused for what it lacks looks like
        # one refused for its agent, so neither point is determined (nor a finding).
        found -= {"bulk_requires_agent_status", "bulk_requires_status_codes"}
    probed_media_type = {"problem": variant.error_media_type, "spring": variant.error_media_type}
    if probed_media_type.get(variant.error_body) != "application/problem+json":
        found.add("error_media_type")
    switches = {
        "www_authenticate": not variant.www_authenticate,
        "request_id": not variant.request_id,
        "extra_fields": variant.extra_fields,
        "integral_numbers": variant.integral_floats,
        "bulk_result_order": variant.result_order == "reversed",
        "same_status": variant.same_status == "refused",
        "unknown_agent_in_bulk": variant.unknown_agent_in_bulk != 404,
        "single_success_body": variant.single_success_body == "empty",
        "success_body_format": variant.single_success_body == "text",
        "bulk_result_message": variant.bulk_result_message == "absent",
        "message_texts": variant.bulk_result_message == "other",
        "tenant_forbidden_xml": variant.tenant_forbidden == "xml",
        "pagination": variant.pagination == "honoured",
        "refusal_status": variant.refusal_status != 400,
        "short_code_check": variant.short_code == "ignored",
        "code_not_shown": variant.codes_shown == "not-when-available",
    }
    return found | {key for key, differs in switches.items() if differs}


def assert_the_kit_passes_with_exactly_its_findings(variant: Variant, tmp_path: Path) -> None:
    run = run_kit_on(variant, tmp_path / "report")
    assert run.returncode == 0, run.output[-6000:]
    assert run.report["contract_violations"] == []
    assert run.report["not_restored"] == []
    assert run.findings == expected_findings(variant), json.dumps(run.report["findings"], indent=1)[
        -6000:
    ]


@pytest.mark.parametrize("variant", ALLOWED.values(), ids=ALLOWED.keys())
def test_the_kit_passes_every_variant_the_documents_allow_and_finds_each_difference(
    variant: Variant, tmp_path: Path
) -> None:
    assert_the_kit_passes_with_exactly_its_findings(variant, tmp_path)


# -- every broken variant ----------------------------------------------------------------

# Not needed to catch a broken rule, and slow to shrink: the state machine repeats what the
# deterministic checks name.
NO_STATE_MACHINE = ("--deselect", "contract_tests/test_state_machine.py")

BROKEN = {
    "logged-out-revived": "1 LOGGED_OUT -> 3 ON_BREAK with no status code: the rule table "
    "refuses this transition, but the target answered 200",
    "busy-settable": "9 BUSY -> 3 ON_BREAK with no status code: the rule table refuses this "
    "transition, but the target answered 200",
    "unsettable-accepted-single": "cannot be set through the API, but the target answered 200",
    "unsettable-accepted-bulk": "9 BUSY cannot be set through the API, but the target answered 200",
    "bulk-200": "status 200 is not declared for setagentsstatuses",
    "bulk-all-or-nothing": "beside a refused entry (each entry is independent): 3 ON_BREAK -> 4 "
    "WAIT_TRANSACT with a status code of the agent's group: the rule table allows this "
    "transition, but the target answered 400",
    "bulk-result-missing": "one result per entry: no result for the entry of agent",
    "bulk-result-lying": "an entry naming an unknown agent must be refused (and changes no one), "
    "but the target answered 200",
    "put-noop": "a read must show the last acknowledged write",
    "stale-read": "a read must show the last acknowledged write",
    "wrong-password-accepted": "a wrong token must be refused with 401, the target answered 200",
    "other-tenant-served": "valid credentials on another tenant's path must be refused",
    "renamed-fields": "'agent-id' is a required property",
    "status-as-string": "is not of type 'number'",
    "status-codes-unchecked": "a status-code list not assigned to the agent's group must be "
    "refused, but the target answered 200",
    "unknown-agent-200": "an invented agent id exists",
    "transition-refused": "4 WAIT_TRANSACT -> 3 ON_BREAK with a status code of the agent's "
    "group: the rule table allows this transition, but the target answered 400",
    "bulk-wrong-agent": "a result must tell what happened to its agent, and no other agent",
    "short-code-unchecked": "accepted, and the agent now shows the wrong short code",
    "refusal-applies-status": "a refused change must change nothing",
    "no-auth-accepted": "a call without credentials must be refused with 401, the target "
    "answered 200",
    "bad-credentials-403": "a wrong token must be refused with 401, the target answered 403",
    "bulk-unknown-agent-404": "the target answered 207 to neither POST nor PUT",
    "absent-as-null": "None is not of type",
    "list-truncated-100": "AGENTSTATUS_WRITE_AGENTS names agents the tenant does not list",
    "page-index-one-based": "lists agents an earlier page listed",
    "page-total-wrong": "is not totalElements 100 / pageSize 100",
}
# Broken variants that only show on a tenant large or paged enough.
NEEDS = {
    "list-truncated-100": Variant(filler_agents=150),
    "page-index-one-based": Variant(pagination="honoured", filler_agents=600),
    "page-total-wrong": Variant(pagination="honoured", filler_agents=600),
}


@pytest.mark.parametrize(("name", "message"), BROKEN.items(), ids=BROKEN.keys())
def test_the_kit_fails_every_broken_variant_naming_the_rule(
    name: str, message: str, tmp_path: Path
) -> None:
    variant = replace(NEEDS.get(name, REFERENCE_LETTER), broken=frozenset({name}))
    run = run_kit_on(variant, tmp_path / "report", *NO_STATE_MACHINE)
    assert run.returncode == 1, run.output[-6000:]
    assert message in run.output, run.output[-8000:]
