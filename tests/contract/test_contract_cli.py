"""``python -m schemas validate``: a captured response judged from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from mock_server.serving.threaded import RunningServer
from schemas.__main__ import main

PADMA = "ag64oyEUb_Sk6bxVB9P5ye5w"


def capture(response: requests.Response, folder: Path) -> tuple[Path, Path]:
    """The response as ``curl -D headers -o body`` would save it."""
    lines = [f"HTTP/1.1 {response.status_code} {response.reason}"]
    lines += [f"{name}: {value}" for name, value in response.headers.items()]
    headers = folder / "headers.txt"
    headers.write_text("\r\n".join(lines) + "\r\n\r\n", encoding="utf-8")
    body = folder / "body.json"
    body.write_bytes(response.content)
    return headers, body


def test_a_live_response_with_its_headers_conforms(
    http: requests.Session, live: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"{live.base_url}/api/v1/tenants/acmecorp01/agentstatus/agents/{PADMA}"
    headers, body = capture(http.get(url), tmp_path)
    code = main(["validate", "--operation", "getagentstatus", "--headers", str(headers), str(body)])
    assert (code, capsys.readouterr().out) == (0, "getagentstatus 200: conforms\n")


def test_a_live_error_is_judged_against_its_own_status(
    live: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"{live.base_url}/api/v1/tenants/acmecorp01/agentstatus/agents"
    headers, body = capture(requests.get(url, timeout=10), tmp_path)
    code = main(
        ["validate", "--operation", "getagentsstatus", "--headers", str(headers), str(body)]
    )
    assert (code, capsys.readouterr().out) == (0, "getagentsstatus 401: conforms\n")


def test_a_body_that_breaks_the_schema_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "agent.json"
    body.write_text(json.dumps({"agent-id": PADMA, "agent-status": "5"}), encoding="utf-8")
    code = main(["validate", "--operation", "getagentstatus", "--status", "200", str(body)])
    assert code == 1
    assert "getagentstatus 200: body $['agent-status']" in capsys.readouterr().out


def test_a_missing_required_header_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "problem.json"
    problem = {"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": "x"}
    body.write_text(json.dumps(problem), encoding="utf-8")
    headers = tmp_path / "headers.txt"
    headers.write_text(
        "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/problem+json\r\n\r\n"
    )
    arguments = ["validate", "--document", "api", "--operation", "getagentstatus"]
    code = main([*arguments, "--headers", str(headers), str(body)])
    assert code == 1
    assert "the required header WWW-Authenticate is missing" in capsys.readouterr().out


def test_an_undeclared_status_and_an_unknown_operation_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "empty.json"
    body.write_text("{}", encoding="utf-8")
    assert main(["validate", "--operation", "getagentstatus", "--status", "302", str(body)]) == 1
    assert "status 302 is not declared for getagentstatus" in capsys.readouterr().out
    assert main(["validate", "--operation", "nosuch", "--status", "200", str(body)]) == 2
    assert "no operation 'nosuch'" in capsys.readouterr().err


def test_the_module_runs_as_a_command(tmp_path: Path) -> None:
    body = tmp_path / "reset.json"
    body.write_text(json.dumps({"reset": "all", "tenants": ["acmecorp01"]}), encoding="utf-8")
    command = [sys.executable, "-m", "schemas", "validate", "--document", "admin"]
    result = subprocess.run(
        [*command, "--operation", "resetall", "--status", "200", str(body)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "resetall 200: conforms\n")
