"""The ``agentstatus`` command line against the running emulator: output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DEMO_TENANT, DEMO_TOKEN, DEMO_USERNAME
from support_client import make_client

from client import AgentStatus
from client.cli import main
from mock_server.serving.threaded import RunningServer

BOB = "agAQDqmvKiRbG4ekigNSmbbb"
PADMA = "ag64oyEUb_Sk6bxVB9P5yaaa"
PAUL_NEVER_LOGGED_IN = "ag1LmqEeEYRoOti9KjIi_Dng"
CSV_HEADER = (
    "agent-id,agent-status,status-code-list-id,status-code-item-id,status-code-item-short-code"
)


@pytest.fixture
def env(live: RunningServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Connection settings in the environment, as a user would export them."""
    settings = {
        "AGENTSTATUS_BASE_URL": f"{live.base_url}/api/v1",
        "AGENTSTATUS_TENANT": DEMO_TENANT,
        "AGENTSTATUS_USERNAME": DEMO_USERNAME,
        "AGENTSTATUS_TOKEN": DEMO_TOKEN,
    }
    monkeypatch.delenv("AGENTSTATUS_PLATFORM", raising=False)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return settings


def status_of(live: RunningServer, agent_id: str) -> int:
    with make_client(f"{live.base_url}/api/v1") as api:
        return int(api.get_agent(agent_id).status)


def test_list_prints_a_table(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["AGENT", "ID", "STATUS", "NAME", "STATUS", "CODE", "SUB-STATUS"]
    padma = next(line for line in lines if line.startswith(PADMA))
    assert "5 WORK_OFFLINE" in padma and "801/1726 Train" in padma
    assert len(lines) == 21


def test_list_group_as_json(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", "list", "--group", "300"]) == 0
    agents = json.loads(capsys.readouterr().out)
    assert {agent["agent-id"] for agent in agents} == {
        "agBacU3lzDPXzaLLkPZCLk1V",
        "agi-I1oJLJIJ0FUFF6FDzV-n",
        "agoXkv2frcyHlm76KlqTiOek",
    }


def test_get_as_json_is_the_wire_form(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["get", PADMA, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "agent-id": PADMA,
        "agent-status": 5,
        "status-code-list-id": 801,
        "status-code-item-id": 1726,
        "status-code-item-short-code": "Train",
        "name": "Padma Othertask",
        "agent-sub-status": "none",
    }


def test_set_by_name_with_a_reason_code(
    live: RunningServer, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["set", BOB, "on_break", "--list-id", "801", "--item-id", "1725"])
    assert code == 0
    assert capsys.readouterr().out.strip() == (
        f"{BOB} set to 3 ON_BREAK (OK: Agent status change successful)"
    )
    assert status_of(live, BOB) == AgentStatus.ON_BREAK


def test_a_refused_set_exits_1_with_the_reason(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["set", PAUL_NEVER_LOGGED_IN, "3"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "agentstatus: refused:" in captured.err
    assert "0 UNKNOWN -> 3 ON_BREAK" in captured.err


def test_a_json_error_is_machine_readable(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--json", "get", "agNobody"]) == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert (error["type"], error["status"]) == ("AgentNotFoundError", 404)
    assert len(error["request-id"]) == 32


@pytest.mark.parametrize(
    "argv",
    [
        ["set", BOB, "SLEEPING"],
        ["set", BOB, "3", "--list-id", "801"],
        ["set", BOB, "3", "--short-code", "Lunch"],
        ["frobnicate"],
        ["list", "--base-url", "http://x", "--platform", "na12"],
        ["--platform", "mars1", "list"],
        ["--token", DEMO_TOKEN, "list"],
    ],
    ids=[
        "status-name",
        "list-without-item",
        "short-code-alone",
        "command",
        "both",
        "platform",
        "no-token-option",
    ],
)
def test_usage_errors_exit_2(
    env: dict[str, str], argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error" in err
    assert DEMO_TOKEN not in err


def test_missing_settings_exit_2_naming_them(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AGENTSTATUS_TENANT")
    assert main(["list"]) == 2
    assert "AGENTSTATUS_TENANT" in capsys.readouterr().err
    monkeypatch.delenv("AGENTSTATUS_TOKEN")
    assert main(["list", "--tenant", DEMO_TENANT]) == 2
    assert "AGENTSTATUS_TOKEN" in capsys.readouterr().err


def test_token_from_a_file_and_options_after_the_command(
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in list(env):
        monkeypatch.delenv(name)
    token_file = tmp_path / "token"
    token_file.write_text(DEMO_TOKEN + "\n", encoding="utf-8")
    argv = ["get", BOB, "--base-url", env["AGENTSTATUS_BASE_URL"], "--tenant", DEMO_TENANT]
    argv += ["--username", DEMO_USERNAME, "--token-file", str(token_file)]
    assert main(argv) == 0
    assert BOB in capsys.readouterr().out


def test_bulk_csv_partial_failure_exits_3(
    live: RunningServer, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bulk = tmp_path / "changes.csv"
    bulk.write_text(
        f"{CSV_HEADER}\n{BOB},ON_BREAK,801,1725,Lunch\n{PAUL_NEVER_LOGGED_IN},4,,,\n",
        encoding="utf-8",
    )
    assert main(["bulk", str(bulk)]) == 3
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:3] == [BOB, "200", "OK"]
    assert out[2].split()[:2] == [PAUL_NEVER_LOGGED_IN, "400"]
    assert out[-1] == "2 changes: 1 succeeded, 1 failed"
    assert status_of(live, BOB) == AgentStatus.ON_BREAK


def test_bulk_json_all_ok_exits_0_with_a_progress_bar(
    env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bulk = tmp_path / "changes.json"
    entries = [{"agent-id": BOB, "agent-status": 5}, {"agent-id": PADMA, "agent-status": "4"}]
    bulk.write_text(json.dumps({"agents": entries}), encoding="utf-8")
    assert main(["--json", "bulk", str(bulk), "--progress", "always"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert (report["ok"], report["succeeded"], report["failed"]) == (True, 2, 0)
    assert "] 2/2 agents" in captured.err


def test_bulk_where_every_entry_fails_exits_1(
    env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bulk = tmp_path / "changes.json"
    bulk.write_text(json.dumps([{"agent-id": "agNobody", "agent-status": 3}]), encoding="utf-8")
    assert main(["bulk", str(bulk)]) == 1
    assert "0 succeeded, 1 failed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content",
    [
        "agent,status\nx,3\n",
        f"{CSV_HEADER}\nagA,3,801,,\n",
        '{"agents": 3}',
        "[1, 2]",
        "{broken",
    ],
    ids=["header", "half-code", "not-a-list", "not-objects", "bad-json"],
)
def test_unreadable_bulk_files_exit_2(
    env: dict[str, str], tmp_path: Path, content: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bulk = tmp_path / "changes"
    bulk.write_text(content, encoding="utf-8")
    assert main(["bulk", str(bulk)]) == 2
    assert str(bulk) in capsys.readouterr().err


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    help_text = capsys.readouterr().out
    assert "exit codes:" in help_text
    assert "3  partial failure" in help_text


def test_the_console_script(live: RunningServer, env: dict[str, str]) -> None:
    script = Path(sys.executable).with_name("agentstatus")
    done = subprocess.run(
        [str(script), "--json", "get", BOB],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["agent-status"] == 4
