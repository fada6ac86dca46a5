"""``--validate-responses``: a response that breaks the documents becomes a loud, logged 500.

A response is broken on purpose by an ``after_answer`` hook of the API added after
``create_app`` (the API runs its hooks before the contract check, as Flask runs
``after_request``), so the emulator itself stays untouched.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import orjson
import pytest
from conftest import DISABLED_TENANT, GUIDE_AUTH_HEADER, api_path, basic
from flask import Flask

from mock_server import create_app
from mock_server.app import api_of
from mock_server.cli import build_parser
from mock_server.http.api import Answer
from mock_server.live.judge import vendor_validator
from schemas.wire import API_BASE

PADMA = "ag64oyEUb_Sk6bxVB9P5ye5w"
AUTH = {"Authorization": GUIDE_AUTH_HEADER}


def breaking(change: Callable[[Answer], None], validate: bool = True) -> Flask:
    app = create_app(validate_responses=validate)

    def corrupt(answer: Answer) -> Answer:
        change(answer)
        return answer

    api_of(app).after_answer.append(corrupt)
    return app


def replace_header(answer: Answer, name: str, value: str | None) -> None:
    answer.headers[:] = [(k, v) for k, v in answer.headers if k != name]
    if value is not None:
        answer.headers.append((name, value))


def status_twelve(answer: Answer) -> None:
    if answer.status == 200 and ("Content-Type", "application/json") in answer.headers:
        answer.body = orjson.dumps({**orjson.loads(answer.body), "agent-status": 12})


def test_a_body_that_breaks_its_schema_becomes_a_500_naming_the_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = breaking(status_twelve).test_client()
    with caplog.at_level(logging.ERROR):
        response = client.get(api_path(suffix=f"/{PADMA}"), headers=AUTH)
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["title"] == "Internal Server Error"
    assert "getagentstatus 200" in problem["detail"]
    assert "$['agent-status']: 12 is not valid" in problem["detail"]
    assert problem["instance"] == f"urn:uuid:{uuid.UUID(response.headers['X-Request-Id'])}"
    assert "12 is not valid" in caplog.text


def test_without_the_mode_the_broken_body_goes_out() -> None:
    client = breaking(status_twelve, validate=False).test_client()
    response = client.get(api_path(suffix=f"/{PADMA}"), headers=AUTH)
    assert response.status_code == 200
    assert response.get_json()["agent-status"] == 12


def test_an_undeclared_status_becomes_a_500() -> None:
    def teapot(answer: Answer) -> None:
        answer.status = 418

    response = breaking(teapot).test_client().get(api_path(), headers=AUTH)
    assert response.status_code == 500
    assert "status 418 is not declared for getagentsstatus" in response.get_json()["detail"]


def test_an_undeclared_content_type_becomes_a_500() -> None:
    def as_text(answer: Answer) -> None:
        replace_header(answer, "Content-Type", "text/plain")

    response = breaking(as_text).test_client().get(api_path(), headers=AUTH)
    assert response.status_code == 500
    assert (
        "Content-Type 'text/plain' is not one of application/json"
        in (response.get_json()["detail"])
    )


def test_a_missing_required_header_becomes_a_500() -> None:
    def no_challenge(answer: Answer) -> None:
        replace_header(answer, "WWW-Authenticate", None)

    response = breaking(no_challenge).test_client().get(api_path())
    assert response.status_code == 500
    assert "the required header WWW-Authenticate is missing" in response.get_json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", api_path(DISABLED_TENANT), basic("initechapi", "initech-demo-token"), 403),
        ("GET", api_path(suffix="/bulk"), AUTH, 405),
        ("DELETE", api_path(), AUTH, 405),
        ("GET", "/api/v2/tenants/acmecorp01/agentstatus/agents", AUTH, 404),
        ("PUT", api_path(suffix=f"/{PADMA}"), AUTH, 415),
        ("GET", "/__admin/tenants/nosuch", {}, 404),
    ],
)
def test_conforming_error_responses_pass_untouched(
    method: str, path: str, headers: dict[str, str], status: int
) -> None:
    response = (
        create_app(validate_responses=True)
        .test_client()
        .open(path, method=method, headers=headers, data="x")
    )
    assert response.status_code == status


def test_the_cli_flag_turns_the_mode_on() -> None:
    parser = build_parser()
    assert parser.parse_args(["serve", "--validate-responses"]).validate_responses is True
    assert parser.parse_args(["serve"]).validate_responses is False


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nests too deep"),
        (b'{"data": [' + b"1" * 5000 + b"]}", "digits"),
    ],
    ids=["nested 100k deep", "a 5000-digit integer"],
)
def test_a_body_no_check_can_read_is_one_bounded_violation(body: bytes, said: str) -> None:
    """The contract kit and validate-recording judge any answer: one a parser cannot take
    whole is a violation in one short line, not a RecursionError or Python's advice."""
    validator = vendor_validator()
    operation = validator.route("GET", api_path().removeprefix(API_BASE))
    problems = validator.answer_violations(
        operation, 200, body, {"Content-Type": "application/json"}
    )
    assert len(problems) == 1 and said in problems[0], problems
    assert len(problems[0]) < 300 and "set_int_max_str_digits" not in problems[0]
