"""The guide's examples, sent verbatim (host swapped), answer the guide's documented bodies."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import DEMO_TENANT

from mock_server.serving.threaded import RunningServer

GUIDE = Path(__file__).resolve().parent / "reference" / "cc-managing-agent-status.md"
"""A byte copy of ``../shared/reference/``'s (tests/contract/test_reference_copies.py)."""


def guide_blocks(language: str) -> list[str]:
    text = GUIDE.read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def documented(index: int) -> Any:
    return json.loads(guide_blocks("json")[index])


def run_guide_curl(command: str, base_url: str, agent_id: str | None = None) -> requests.Response:
    """Execute one of the guide's curl commands with the host, tenant and header filled in."""
    filled = (
        command.replace("https://{ccPlatform}.8x8.com/api/v{version}", f"{base_url}/api/v1")
        .replace("https://<<ccPlatform>>.8x8.com/api/v1", f"{base_url}/api/v1")
        .replace("{tenantId}", DEMO_TENANT)
        .replace("<<tenantId>>", DEMO_TENANT)
        .replace("{encodedValue}", "bXljbGllbnRJZDpuZXZlcnRlbGxhbnlvbmU=")
        .replace("<<encodedValue>>", "bXljbGllbnRJZDpuZXZlcnRlbGxhbnlvbmU=")
    )
    if agent_id is not None:
        filled = filled.replace("{agentId}", agent_id)
    words = shlex.split(filled.replace("\\\n", " ").replace("\n", " "))
    method, url, headers, data = "GET", "", {}, None
    position = 1
    while position < len(words):
        word = words[position]
        if word == "--request":
            method, url = words[position + 1], words[position + 2]
            position += 3
        elif word == "--header":
            name, _, value = words[position + 1].partition(":")
            headers[name.strip()] = value.strip()
            position += 2
        elif word == "--data-raw":
            data = words[position + 1]
            position += 2
        else:
            position += 1
    return requests.request(method, url, headers=headers, data=data, timeout=10)


@pytest.fixture
def curls(live: RunningServer) -> list[str]:
    blocks = guide_blocks("curl")
    assert len(blocks) == 4, "the guide has four curl examples: list, get, set, bulk"
    return blocks


def test_list_example_shows_every_documented_agent_verbatim(
    live: RunningServer, curls: list[str]
) -> None:
    response = run_guide_curl(curls[0], live.base_url)
    assert response.status_code == 200
    listed = {agent["agent-id"]: agent for agent in response.json()["data"]}
    for agent in documented(0)["data"]:
        assert listed[agent["agent-id"]] == agent


def test_single_get_example_answers_the_documented_body(
    live: RunningServer, curls: list[str]
) -> None:
    expected = documented(1)
    response = run_guide_curl(curls[1], live.base_url, expected["agent-id"])
    assert response.status_code == 200
    assert response.json() == expected


def test_single_set_example_answers_the_documented_body(
    live: RunningServer, curls: list[str]
) -> None:
    agent_id = documented(1)["agent-id"]
    response = run_guide_curl(curls[2], live.base_url, agent_id)
    assert response.status_code == 200
    assert response.json() == documented(2)
    after = run_guide_curl(curls[1], live.base_url, agent_id).json()
    assert (after["agent-status"], after["status-code-item-short-code"]) == (5, "Meet")


def test_bulk_example_answers_207_with_the_documented_body(
    live: RunningServer, curls: list[str]
) -> None:
    response = run_guide_curl(curls[3], live.base_url)
    assert response.status_code == 207
    assert response.json() == documented(3)
