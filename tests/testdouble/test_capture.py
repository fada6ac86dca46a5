"""``agentstatus-mock import --from-live``, with an emulator standing in for the live tenant."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask, request

from mock_server import create_app
from mock_server.cli import main
from mock_server.core.fixtures import load_fixture
from mock_server.live.capture import TOKEN_PLACEHOLDER
from mock_server.serving.threaded import RunningServer, start_in_thread

TOKEN = "nevertellanyone"
LIVE_ARGS = ["--tenant", "acmecorp01", "--username", "myclientId"]


@pytest.fixture(scope="module")
def live_tenant() -> Iterator[RunningServer]:
    """The "live" service: an emulator of the demo tenants, only ever read."""
    with start_in_thread(create_app()) as server:
        yield server


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTSTATUS_TOKEN", TOKEN)


def live_agents(server: RunningServer) -> list[dict[str, object]]:
    url = f"{server.base_url}/api/v1/tenants/acmecorp01/agentstatus/agents"
    agents: list[dict[str, object]] = requests.get(
        url, auth=("myclientId", TOKEN), timeout=5
    ).json()["data"]
    return agents


def capture(live: RunningServer, output: Path, *options: str) -> int:
    """``import --from-live`` of ``live``'s API into ``output``: the exit status."""
    api = f"{live.base_url}/api/v1"
    return main(
        ["import", "--from-live", "--base-url", api, *LIVE_ARGS, *options, "--output", str(output)]
    )


@pytest.mark.usefixtures("token")
@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_capture_writes_a_fixture_that_serves_the_same_agents(
    live_tenant: RunningServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    suffix: str,
) -> None:
    output = tmp_path / f"captured{suffix}"
    assert capture(live_tenant, output, "--group-id", "100", "--group-id", "200") == 0
    assert "placeholder" in capsys.readouterr().out
    text = output.read_text(encoding="utf-8")
    assert TOKEN not in text
    [tenant] = load_fixture(output)["tenants"]
    assert tenant["token"] == TOKEN_PLACEHOLDER
    membership = {agent["agent-id"]: agent["group-id"] for agent in tenant["agents"]}
    assert membership["agAQDqmvKiRbG4ekigNSmbbb"] == 100
    assert membership["agDVWqyfkrFAZd6_6X-yZl_D"] == 200
    assert membership["agBacU3lzDPXzaLLkPZCLk1V"] == 0
    lists = {code_list["id"]: code_list["items"] for code_list in tenant["status-code-lists"]}
    assert lists[801] == [
        {"id": 1722, "short-code": "Meet"},
        {"id": 1725, "short-code": "Lunch"},
        {"id": 1726, "short-code": "Train"},
    ]

    tenant["token"] = TOKEN
    replay = create_app({"tenants": [tenant]}).test_client()
    served = replay.get(
        "/api/v1/tenants/acmecorp01/agentstatus/agents",
        headers={"Authorization": "Basic bXljbGllbnRJZDpuZXZlcnRlbGxhbnlvbmU="},
    ).get_json()["data"]
    assert served == live_agents(live_tenant)


def test_capture_reads_only(live_tenant: RunningServer, tmp_path: Path, token: None) -> None:
    before = live_agents(live_tenant)
    capture(live_tenant, tmp_path / "f.yaml")
    assert live_agents(live_tenant) == before


def test_the_token_comes_only_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AGENTSTATUS_TOKEN", raising=False)
    output = tmp_path / "f.yaml"
    code = main(
        ["import", "--from-live", "--platform", "NA12", *LIVE_ARGS, "--output", str(output)]
    )
    assert code == 2
    assert "AGENTSTATUS_TOKEN" in capsys.readouterr().err
    assert not output.exists()


def test_refused_credentials_are_reported_without_the_token(
    live_tenant: RunningServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTSTATUS_TOKEN", "wrong-secret-token")
    output = tmp_path / "f.yaml"
    assert capture(live_tenant, output) == 1
    error = capsys.readouterr().err
    assert "401" in error
    assert "wrong-secret-token" not in error
    assert not output.exists()


def zero_fraction_tenant() -> Flask:
    """A live tenant writing every number with a zero fraction (``3.0``), as the reference's
    ``number`` allows, and answering in two pages of one agent."""
    pages = [
        {
            "agent-id": "agBreakBreakBreakBreak00",
            "name": "On Break",
            "agent-status": 3.0,
            "status-code-list-id": 801.0,
            "status-code-item-id": 1722.0,
            "status-code-item-short-code": "Meet",
        },
        {"agent-id": "agReadyReadyReadyReady00", "name": "Ready", "agent-status": 4.0},
    ]
    app = Flask(__name__)

    @app.get("/api/v1/tenants/acmecorp01/agentstatus/agents")
    def agents() -> dict[str, object]:
        index = int(request.args.get("pageIndex", "0"))
        page = {"pageSize": 1.0, "totalElements": 2.0, "totalPages": 2.0, "pageIndex": index}
        return {"data": [pages[index]], "page": page}

    return app


@pytest.mark.usefixtures("token")
def test_numbers_with_a_zero_fraction_are_read_as_integers(tmp_path: Path) -> None:
    output = tmp_path / "captured.json"
    with start_in_thread(zero_fraction_tenant()) as live:
        assert capture(live, output) == 0
    [tenant] = json.loads(output.read_text(encoding="utf-8"))["tenants"]
    statuses = {agent["agent-id"]: agent["agent-status"] for agent in tenant["agents"]}
    assert statuses == {"agBreakBreakBreakBreak00": 3, "agReadyReadyReadyReady00": 4}
    assert all(isinstance(status, int) for status in statuses.values())
    assert tenant["status-code-lists"] == [
        {"id": 801, "items": [{"id": 1722, "short-code": "Meet"}]}
    ]


@pytest.mark.usefixtures("token")
def test_an_unknown_platform_is_named_with_the_known_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "f.yaml"
    code = main(["import", "--from-live", "--platform", "XX9", *LIVE_ARGS, "--output", str(output)])
    assert code == 1
    error = capsys.readouterr().err
    assert "unknown platform 'XX9'" in error
    assert "NA12" in error
    assert not output.exists()
