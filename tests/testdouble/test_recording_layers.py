"""``validate-recording``: a live recording is held to the vendor contract, and only to it.

Every answered exchange is judged against ``schemas/vendor-openapi.yaml`` (a breach: exit 1)
and, separately, listed where it differs from the emulator's promise (the document the
emulator serves in ``--profile``, default ``default``), with the profiles that answer the
same: a difference is not a failure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import api_path

from mock_server.cli import main

AGENT = "ag64oyEUb_Sk6bxVB9P5ye5w"
REQUEST_ID = "0123456789abcdef" * 2
NOTE = "differs from the emulator's promise (not a failure): "


def exchange(
    method: str, suffix: str, status: int, headers: dict[str, str], body: Any, *, is_json: bool
) -> dict[str, Any]:
    """One line as ``proxy --record`` writes it."""
    return {
        "method": method,
        "path": api_path(suffix=suffix),
        "query": "",
        "request": {"headers": {"Authorization": "Basic ***"}, "body": None, "json": False},
        "response": {"headers": headers, "body": body, "json": is_json},
        "status": status,
        "duration-ms": 12.5,
        "time": "2025-01-01T00:00:00Z",
    }


def validate(
    folder: Path,
    exchanges: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    *options: str,
) -> tuple[int, list[str]]:
    recording = folder / "live.jsonl"
    recording.write_text("".join(json.dumps(line) + "\n" for line in exchanges), encoding="utf-8")
    code = main(["validate-recording", str(recording), *options])
    return code, capsys.readouterr().out.splitlines()


def vendor_problem_404() -> dict[str, Any]:
    problem = {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no agent"}
    headers = {"Content-Type": "application/json"}
    return exchange("GET", f"/{AGENT}", 404, headers, problem, is_json=True)


def test_a_json_problem_without_request_id_is_a_difference_not_a_breach(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = validate(tmp_path, [vendor_problem_404()], capsys)
    *lines, summary = out
    assert code == 0
    where = f"#1 GET {api_path(suffix=f'/{AGENT}')}: "
    assert lines
    assert all(line.startswith(where + NOTE) for line in lines)
    assert any("X-Request-Id" in line for line in lines)
    assert summary == (
        "1 exchanges checked against the vendor contract (0 unanswered skipped): 0 break it; "
        "1 differ from the emulator's promise (profile default), not a failure."
    )


def test_a_bulk_answered_200_breaks_the_vendor_contract(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {"agents": [{"agent-id": AGENT, "change-status": 200}]}
    headers = {"Content-Type": "application/json", "X-Request-Id": REQUEST_ID}
    exchanges = [
        exchange(method, "/bulk", 200, headers, body, is_json=True) for method in ("POST", "PUT")
    ]
    code, out = validate(tmp_path, exchanges, capsys)
    assert code == 1
    bulk = api_path(suffix="/bulk")
    assert out == [
        f"#1 POST {bulk}: status 200 is not declared for setagentsstatuses",
        f"#2 PUT {bulk}: status 200 is not declared for setagentsstatusesput",
        "2 exchanges checked against the vendor contract (0 unanswered skipped): 2 break it; "
        "0 differ from the emulator's promise (profile default), not a failure.",
    ]


def test_an_empty_single_set_200_is_the_reference_profiles_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No special case: the vendor contract allows any 200 body for the single set, and the
    empty one is what the reference profile promises."""
    empty = exchange("PUT", f"/{AGENT}", 200, {"X-Request-Id": REQUEST_ID}, None, is_json=False)
    code, out = validate(tmp_path, [empty], capsys)
    assert code == 0
    where = f"#1 PUT {api_path(suffix=f'/{AGENT}')}: "
    assert out[0].startswith(where + NOTE)
    assert out[-2] == where + "the emulator's reference profile answers the same"
    assert validate(tmp_path, [empty], capsys, "--profile", "reference") == (
        0,
        [
            "1 exchanges checked against the vendor contract (0 unanswered skipped): 0 break it; "
            "0 differ from the emulator's promise (profile reference), not a failure."
        ],
    )


def test_other_vendor_allowed_answers_are_differences(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    json_headers = {"Content-Type": "application/json"}
    exchanges = [
        exchange("PUT", f"/{AGENT}", 200, json_headers, {"status": "done"}, is_json=True),
        exchange("GET", "", 401, {"Content-Type": "text/html"}, "<h1>401</h1>", is_json=False),
        exchange(
            "GET",
            f"/{AGENT}",
            200,
            json_headers,
            {"agent-id": AGENT, "agent-status": 3.0, "shift": "early"},
            is_json=True,
        ),
    ]
    code, out = validate(tmp_path, exchanges, capsys)
    assert code == 0
    assert {line.split(" ")[0] for line in out[:-1]} == {"#1", "#2", "#3"}
    assert all(NOTE in line for line in out[:-1])
    assert out[-1].endswith(
        "0 break it; 3 differ from the emulator's promise (profile default), not a failure."
    )


def test_a_breach_is_reported_without_its_differences(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = {"agent-id": AGENT, "agent-status": "3"}
    headers = {"Content-Type": "application/json"}
    code, out = validate(
        tmp_path, [exchange("GET", f"/{AGENT}", 200, headers, agent, is_json=True)], capsys
    )
    assert code == 1
    *lines, summary = out
    where = f"#1 GET {api_path(suffix=f'/{AGENT}')}: getagentstatus 200: body $['agent-status']"
    assert lines and all(line.startswith(where) for line in lines)
    assert summary.endswith(
        "1 break it; 0 differ from the emulator's promise (profile default), not a failure."
    )
