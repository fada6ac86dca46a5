"""The command line as a user runs it, and concurrent writes over real HTTP."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from conftest import (
    DEMO_TENANT,
    DEMO_TOKEN,
    DEMO_USERNAME,
    Api,
    api_path,
    http_api,
    read_line,
)

from mock_server.serving.threaded import RunningServer

BIN = Path(sys.executable).parent


@contextmanager
def serving(command: list[str]) -> Iterator[subprocess.Popen[str]]:
    """The emulator as a child process, stopped and its pipes closed afterwards."""
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            yield process
        finally:
            process.terminate()
            process.communicate(timeout=10)


@pytest.mark.parametrize("command", [["agentstatus-mock"], [sys.executable, "-m", "mock_server"]])
def test_serve_prints_the_base_url_and_a_working_curl_line(command: list[str]) -> None:
    executable = [str(BIN / command[0])] if len(command) == 1 else command
    with serving([*executable, "serve", "--port", "0"]) as process:
        assert process.stdout is not None
        banner = read_line(process.stdout).strip()
        assert banner.startswith("Agent Status API emulator on http://127.0.0.1:")
        base = banner.rsplit(" ", 1)[1]
        curl = read_line(process.stdout)
        assert "Authorization: Basic bXljbGllbnRJZDpuZXZlcnRlbGxhbnlvbmU=" in curl
        assert f"{base}/tenants/{DEMO_TENANT}/agentstatus/agents" in curl
        reply = requests.get(
            f"{base}/tenants/{DEMO_TENANT}/agentstatus/agents",
            auth=(DEMO_USERNAME, DEMO_TOKEN),
            timeout=10,
        )
        assert reply.status_code == 200


def test_serve_refuses_a_public_host_without_an_admin_token() -> None:
    result = subprocess.run(
        [str(BIN / "agentstatus-mock"), "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0 without --admin-token" in result.stderr


def test_serve_refuses_a_bad_fixture_naming_the_path(tmp_path: Path) -> None:
    fixture = tmp_path / "bad.yaml"
    fixture.write_text("tenants:\n  - tenant-id: x\n    username: u\n")
    result = subprocess.run(
        [str(BIN / "agentstatus-mock"), "serve", "--port", "0", "--fixture", str(fixture)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert f"bad fixture: {fixture}: $.tenants[0]: 'token' is a required property" in result.stderr


def test_serve_with_a_custom_fixture_prints_no_token(tmp_path: Path) -> None:
    fixture = tmp_path / "one.yaml"
    fixture.write_text("tenants:\n  - {tenant-id: t1, username: u1, token: very-secret-token}\n")
    command = [str(BIN / "agentstatus-mock"), "serve", "--port", "0", "--fixture", str(fixture)]
    with serving([*command, "--profile", "guide"]) as process:
        assert process.stdout is not None
        lines = [read_line(process.stdout) for _ in range(3)]
        assert "very-secret-token" not in "".join(lines)
        assert "curl -u 'u1:YOUR_TOKEN'" in lines[1]
        assert lines[2].startswith("Profile: guide.")


def test_concurrent_writers_are_all_answered_and_reads_show_whole_states(
    live: RunningServer, http: requests.Session
) -> None:
    """The threaded server answers every one of many concurrent writes to one agent with 200,
    and every read in between shows one complete written state."""
    api: Api = http_api(live, http)
    agent = "agTornWriteProbe"
    api.place_agent(agent, 4)
    states = [
        {"agent-status": 3, "status-code-list-id": 801, "status-code-item-id": 1725},
        {"agent-status": 5, "status-code-list-id": 801, "status-code-item-id": 1726},
    ]
    consistent = {(3, 1725, "Lunch"), (5, 1726, "Train")}
    seen: set[tuple[int, int, str]] = set()
    failures: list[str] = []

    def writer(index: int) -> None:
        with requests.Session() as session:
            session.auth = (DEMO_USERNAME, DEMO_TOKEN)
            url = live.base_url + api_path(suffix=f"/{agent}")
            for round_number in range(25):
                reply = session.put(url, json=states[(index + round_number) % 2], timeout=10)
                if reply.status_code != 200:
                    failures.append(reply.text)
                body = session.get(url, timeout=10).json()
                seen.add(
                    (
                        body["agent-status"],
                        body["status-code-item-id"],
                        body["status-code-item-short-code"],
                    )
                )

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert seen <= consistent
    assert len(seen) == 2
