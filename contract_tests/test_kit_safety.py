"""The kit's own safety: the write guard, the restore, the contract hook, secrets kept out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contract_tests.answer import Answer
from contract_tests.config import report_paths
from contract_tests.conformance import POINTS
from contract_tests.findings import CHOICES, Findings, observe
from contract_tests.guard import RestoreLedger, WriteGuard, WriteRefused
from contract_tests.http import ApiTransport, Credentials
from contract_tests.report import assemble, render_markdown
from contract_tests.target import Target, code_of, not_applicable, same_state
from mock_server.live.judge import ContractJudge
from schemas.rules import REPEATABLE
from schemas.wire import agent_path, agents_path, bulk_path

JOINED = sorted(int(status) for status in REPEATABLE)


def guarded(target: Target, writable: frozenset[str], allow_logout: bool = False) -> ApiTransport:
    """A second transport on the same target, with its own guard and ledger."""
    return ApiTransport(
        target.api.base_url,
        target.api.tenant,
        target.api.credentials,
        contract=target.api.contract,
        guard=WriteGuard(writable, allow_logout),
        ledger=RestoreLedger(),
        promise_bound=target.api.promise_bound,
    )


def test_the_guard_refuses_an_agent_not_writable_and_sends_nothing(target: Target) -> None:
    listed = list(target.initial)
    if len(listed) < 2:
        not_applicable("needs a tenant with two agents")
    allowed, other = listed[0], listed[1]
    api = guarded(target, frozenset({allowed}))
    with pytest.raises(WriteRefused, match=other):
        api.set_agent(other, {"agent-status": 3})
    with pytest.raises(WriteRefused, match=other):
        api.bulk("POST", {"agents": [{"agent-id": allowed}, {"agent-id": other}]})
    with pytest.raises(WriteRefused, match="'agents' array"):
        api.bulk("POST", {"agents": "everyone"})
    with pytest.raises(WriteRefused, match="through the guard"):
        api.send("PUT", api.agents_path(other), operation="setagentstatus")
    assert api.calls == 0


@pytest.mark.parametrize("status", [1, 1.0, "1"])
def test_the_guard_never_sends_logged_out_unless_allowed(target: Target, status: object) -> None:
    agent = next(iter(target.initial))
    api = guarded(target, frozenset({agent}))
    with pytest.raises(WriteRefused, match="LOGGED_OUT"):
        api.set_agent(agent, {"agent-status": status})
    with pytest.raises(WriteRefused, match="LOGGED_OUT"):
        api.bulk("POST", {"agents": [{"agent-id": agent, "agent-status": status}]})
    assert api.calls == 0
    assert WriteGuard(frozenset({agent}), allow_logout=True).check_single(
        agent, {"agent-status": status}
    ) == [agent]


def test_the_guard_lets_through_only_ids_the_target_answered_404_for(target: Target) -> None:
    api = guarded(target, frozenset())
    invented = "agKitNeverSeenBefore0001"
    with pytest.raises(WriteRefused, match=invented):
        api.guard.check_single(invented, {"agent-status": 3})
    assert api.get_agent(invented).status == 404
    assert api.guard.check_single(invented, {"agent-status": 3}) == []
    with pytest.raises(WriteRefused, match="bulk"):
        api.guard.check_bulk("PUT", {"agents": [{"agent-id": invented}]})


def test_the_first_write_to_an_agent_records_where_it_started(target: Target) -> None:
    joined = target.writable_now(JOINED)
    if not joined:
        not_applicable("no writable agent in 3, 4 or 5")
    agent_id = joined[0]["agent-id"]
    # As the agent reads alone, which is what a restore compares with; the session puts it back.
    agent = target.api.agent_body(agent_id)
    target.ledger.remember(agent_id, agent)
    api = guarded(target, frozenset({agent_id}))
    code = target.codebook(agent_id).valid
    wanted = next(s for s in JOINED if s != agent["agent-status"])
    api.set_agent(agent_id, {"agent-status": wanted, **(code[0].fields() if code else {})})
    assert list(api.ledger.starts()) == [agent_id]
    assert same_state(api.ledger.starts()[agent_id], agent)


@pytest.mark.needs_control_plane("moves agents where the API cannot bring them back")
def test_restore_puts_agents_back_and_reports_what_the_api_cannot(fresh: Target) -> None:
    # Agents that show a code of their group, so every profile takes the sets below.
    with_codes = [
        a for a in fresh.writable_now(JOINED) if code_of(a) and fresh.codebook(a["agent-id"]).valid
    ]
    movable, leaving = with_codes[0], with_codes[1]
    started = {a["agent-id"]: a["agent-status"] for a in (movable, leaving)}
    api = guarded(fresh, frozenset(started), allow_logout=True)
    code = fresh.codebook(movable["agent-id"]).valid[-1].fields()
    other = next(s for s in JOINED if s != movable["agent-status"])
    assert api.set_agent(movable["agent-id"], {"agent-status": other, **code}).status == 200
    code = fresh.codebook(leaving["agent-id"]).valid[0].fields()
    assert api.set_agent(leaving["agent-id"], {"agent-status": 1, **code}).status == 200
    without_control = Target(fresh.config, api, None, fresh.initial, list(started))

    problems = without_control.restore()

    assert without_control.ledger.restored == [movable["agent-id"]]
    assert [problem.agent_id for problem in problems] == [leaving["agent-id"]]
    assert "cannot move an agent from 1 LOGGED_OUT" in problems[0].why
    assert same_state(fresh.api.agent_body(movable["agent-id"]), movable)
    assert fresh.api.agent_body(leaving["agent-id"])["agent-status"] == 1
    with_control = Target(
        fresh.config, api, fresh.emulator, fresh.initial, [], admin_agents=fresh.admin_agents
    )
    api.ledger.problems.clear()
    assert with_control.restore() == []
    assert same_state(fresh.api.agent_body(leaving["agent-id"]), leaving)


CALLS = {
    "getagentsstatus": ("GET", agents_path("t")),
    "getagentstatus": ("GET", agent_path("t", "ag1")),
    "setagentstatus": ("PUT", agent_path("t", "ag1")),
    "setagentsstatuses": ("POST", bulk_path("t")),
}


def answer_to(operation: str, status: int, body: bytes, **headers: str) -> Answer:
    method, path = CALLS[operation]
    lowered = {name.replace("_", "-").lower(): value for name, value in headers.items()}
    return Answer(method, path, operation, status, lowered, body)


def test_the_vendor_contract_fails_what_neither_document_allows() -> None:
    contract = ContractJudge()
    bad_agent = answer_to(
        "getagentsstatus",
        200,
        b'{"data": [{"agent-id": "a", "agent-status": 13}]}',
        content_type="application/json",
    )
    assert any("agent-status" in v for v in contract.judge(bad_agent).breaches)
    json_type = "application/json"
    renamed = answer_to(
        "getagentstatus", 200, b'{"agentId": "a", "status": 4}', content_type=json_type
    )
    assert any("'agent-id' is a required property" in v for v in contract.judge(renamed).breaches)
    as_string = answer_to(
        "getagentstatus", 200, b'{"agent-id": "a", "agent-status": "4"}', content_type=json_type
    )
    assert any("not of type 'number'" in v for v in contract.judge(as_string).breaches)
    bulk_200 = answer_to("setagentsstatuses", 200, b'{"data": []}', content_type="application/json")
    assert contract.judge(bulk_200).breaches == ["status 200 is not declared for setagentsstatuses"]


def test_what_the_vendor_allows_but_the_emulator_chose_otherwise_is_only_a_difference() -> None:
    contract = ContractJudge()
    teapot = answer_to("getagentstatus", 418, b"", x_request_id="a" * 32)
    judged = contract.judge(teapot)
    assert (judged.breaches, judged.differences) == (
        [],
        ["status 418 is not declared for getagentstatus"],
    )
    empty_success = answer_to("setagentstatus", 200, b"", x_request_id="a" * 32)
    assert contract.judge(empty_success).breaches == []
    assert contract.matching_profiles(empty_success) == ["reference"]
    spring = answer_to(
        "getagentstatus",
        401,
        b'{"timestamp": "2026-01-01T00:00:00Z", "status": 401, "error": "Unauthorized"}',
        content_type="application/json",
    )
    assert contract.judge(spring).breaches == []
    extra = answer_to(
        "getagentstatus",
        200,
        b'{"agent-id": "a", "agent-status": 4.0, "agent-group-id": 100}',
        content_type="application/json",
    )
    judged = contract.judge(extra)
    assert judged.breaches == [] and judged.differences
    assert contract.matching_profiles(extra) == []
    assert {key for key, _, _ in observe(extra)} == {
        "extra_fields",
        "integral_numbers",
        "request_id",
    }


def test_findings_keep_one_row_per_point_with_a_few_examples() -> None:
    findings = Findings()
    for number in range(5):
        findings.add("request_id", "no X-Request-Id", f"GET /x{number}")
    (row,) = findings.to_json()
    assert row["count"] == 5
    assert row["evidence"] == ["GET /x0", "GET /x1", "GET /x2"]
    assert row["title"] == CHOICES["request_id"].title


def test_a_service_that_echoes_the_credentials_has_them_scrubbed_before_any_check() -> None:
    credentials = Credentials("kit-user", "s3cr3t-token-value")
    header = credentials.header()
    encoded = header.split(" ", 1)[1]
    body = json.dumps(
        {"echo": header.lower(), "b64": encoded, "token": credentials.token, "q": f'"{header}"'}
    ).encode()
    echoed = Answer("GET", "/x", "getagentstatus", 400, {"x-debug-authorization": header}, body)
    scrubbed = credentials.scrubber().answer(echoed)
    for secret in (header, encoded, credentials.token):
        assert secret.lower().encode() not in scrubbed.body.lower()
        assert secret not in json.dumps(dict(scrubbed.headers))
    assert "s3cr3t" not in repr(echoed)


def test_secrets_never_show(target: Target) -> None:
    token = target.config.token
    assert token not in repr(target.config)
    assert token not in repr(target.api.credentials)
    header = target.api.credentials.header()
    assert target.api.redact(f"echo {token} and {header}") == "echo *** and ***"


def test_the_report_names_every_point_and_every_agent_not_restored() -> None:
    points = [
        {"title": title, "observed": None, "variant": "x", "how": "y", "evidence": "a|b"}
        for title, _, _ in POINTS.values()
    ]
    report = assemble(
        {"target": "t", "points": points, "contract_violations": []},
        "t",
        ["ag1: started 4 WAIT_TRANSACT, now 1 LOGGED_OUT: no way back"],
        [],
        [],
        [
            {
                "key": "request_id",
                "title": "X-Request-Id header",
                "emulator": "always",
                "observed": "never",
                "evidence": ["GET /x -> 200"],
                "count": 2,
                "matching_profiles": [],
                "change": "make it optional",
            }
        ],
    )
    text = render_markdown(report)
    for title, _, _ in POINTS.values():
        assert f"| {title} |" in text
    assert "**ag1: started 4 WAIT_TRANSACT" in text
    assert "a\\|b" in text
    assert (
        "| X-Request-Id header | always | never | 2x | GET /x -> 200 | make it optional |" in text
    )


def test_report_paths_accept_a_stem_or_either_suffix() -> None:
    expected = (Path("out/r.json"), Path("out/r.md"))
    for given in ("out/r", "out/r.json", "out/r.md"):
        assert report_paths(Path(given)) == expected
