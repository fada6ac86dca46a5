"""The request journal at /__admin/requests, and the sent-changes helpers built on it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import (
    DEMO_TENANT,
    DEMO_TOKEN,
    GUIDE_AUTH_HEADER,
    OTHER_TENANT,
    api_path,
    basic,
)
from flask.testing import FlaskClient

from mock_server import create_app
from mock_server.harness.handle import SentChange, sent_changes

AGENT = "agAQDqmvKiRbG4ekigNSmbbb"
SECOND = "ag64oyEUb_Sk6bxVB9P5yaaa"
AUTH = {"Authorization": GUIDE_AUTH_HEADER}
LUNCH = {"status-code-list-id": 801, "status-code-item-id": 1725}


def journal(client: FlaskClient, query: str = "") -> list[dict[str, Any]]:
    response = client.get(f"/__admin/requests{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    entries: list[dict[str, Any]] = response.get_json()["requests"]
    return entries


def test_an_exchange_is_recorded_with_both_bodies(client: FlaskClient) -> None:
    client.put(api_path(suffix=f"/{AGENT}?trace=1"), headers=AUTH, json={"agent-status": 3})
    [entry] = journal(client)
    assert entry["method"] == "PUT"
    assert entry["path"] == api_path(suffix=f"/{AGENT}")
    assert entry["query"] == {"trace": ["1"]}
    assert (entry["tenant"], entry["agent"], entry["agents"]) == (DEMO_TENANT, AGENT, [AGENT])
    assert (entry["status"], entry["outcome"], entry["fault"]) == (200, "answered", None)
    assert entry["request"]["body"] == {"agent-status": 3}
    assert entry["response"]["body"]["reason"] == "OK"
    assert entry["response"]["headers"]["Content-Type"] == "application/json"
    assert entry["duration-ms"] >= 0
    assert entry["time"].endswith("+00:00")


def test_credentials_never_reach_the_journal(client: FlaskClient) -> None:
    client.get(api_path(), headers=AUTH)
    client.get(api_path(), headers={"Authorization": "Bearer abc.def", "X-Admin-Token": "adm1n"})
    entries = journal(client)
    assert entries[0]["request"]["headers"]["Authorization"] == "Basic ***"
    assert entries[1]["request"]["headers"]["Authorization"] == "Bearer ***"
    assert entries[1]["request"]["headers"]["X-Admin-Token"] == "***"
    text = json.dumps(entries)
    for secret in (DEMO_TOKEN, GUIDE_AUTH_HEADER.split()[1], "abc.def", "adm1n"):
        assert secret not in text


@pytest.mark.parametrize(
    ("gap", "in_answer"),
    [("\t", True), ("\xa0", True), ("\u2003", True), ("\x1f", False)],
    ids=["tab", "no-break space", "em space", "unit separator (no fault header takes it)"],
)
def test_credentials_after_any_whitespace_are_masked_in_either_direction(
    client: FlaskClient, gap: str, in_answer: bool
) -> None:
    """A scheme and its credentials apart by a tab or a Unicode space, in a header whose name
    says nothing, are still credentials: in the request, and in a faulted answer's headers."""
    secret = GUIDE_AUTH_HEADER.split()[1]
    if in_answer:
        echo = {"X-Echo": f"Basic{gap}{secret}"}
        fault = {"action": {"type": "respond", "status": 503, "headers": echo}, "times": 1}
        assert client.post("/__admin/faults", json=fault).status_code == 201
    client.get(api_path(), headers={**AUTH, "X-Forwarded-Thing": f"Basic{gap}{secret}"})
    text = json.dumps(journal(client))
    assert secret not in text


def test_injected_faults_are_recorded_as_the_client_saw_them(client: FlaskClient) -> None:
    fault = client.post(
        "/__admin/faults", json={"action": {"type": "respond", "status": 503}, "times": 1}
    ).get_json()
    client.get(api_path(), headers=AUTH)
    [entry] = journal(client)
    assert (entry["status"], entry["fault"]) == (503, fault["id"])
    assert entry["response"]["body"]["status"] == 503


def test_only_api_requests_are_recorded(client: FlaskClient) -> None:
    client.get(f"/__admin/tenants/{DEMO_TENANT}")
    client.get("/not-the-api")
    assert journal(client) == []


def bulk(client: FlaskClient, *agent_ids: str) -> None:
    entries = [{"agent-id": agent_id, "agent-status": 3, **LUNCH} for agent_id in agent_ids]
    client.put(api_path(suffix="/bulk"), headers=AUTH, json={"agents": entries})


def test_filters_combine(client: FlaskClient) -> None:
    client.get(api_path(), headers=AUTH)
    client.get(api_path(suffix=f"/{AGENT}"), headers=AUTH)
    bulk(client, SECOND)
    client.get(api_path(OTHER_TENANT), headers=basic("globexapi", "globex-demo-token"))
    client.get(api_path(suffix="/nobody"), headers=AUTH)

    def paths(query: str) -> list[str]:
        return [entry["path"] for entry in journal(client, query)]

    assert paths("?method=put") == [api_path(suffix="/bulk")]
    assert paths(f"?tenant={OTHER_TENANT}") == [api_path(OTHER_TENANT)]
    assert paths(f"?agent={SECOND}") == [api_path(suffix="/bulk")]
    assert paths("?status=404") == [api_path(suffix="/nobody")]
    assert paths(f"?path={api_path(suffix='/')}&method=GET") == [
        api_path(suffix=f"/{AGENT}"),
        api_path(suffix="/nobody"),
    ]
    assert client.get("/__admin/requests?status=abc").status_code == 400


def test_the_journal_is_a_ring_buffer_of_the_configured_size() -> None:
    client = create_app(journal_size=3, validate_responses=True).test_client()
    for _ in range(5):
        client.get(api_path(), headers=AUTH)
    response = client.get("/__admin/requests").get_json()
    assert response["capacity"] == 3
    assert [entry["id"] for entry in response["requests"]] == [3, 4, 5]


def test_delete_clears_all_or_only_what_matches(client: FlaskClient) -> None:
    client.get(api_path(), headers=AUTH)
    client.get(api_path(OTHER_TENANT), headers=basic("globexapi", "globex-demo-token"))
    cleared = client.delete(f"/__admin/requests?tenant={DEMO_TENANT}")
    assert cleared.get_json() == {"deleted": 1}
    assert [entry["tenant"] for entry in journal(client)] == [OTHER_TENANT]
    assert client.delete("/__admin/requests").get_json() == {"deleted": 1}
    assert journal(client) == []


def test_sent_changes_lists_single_and_bulk_sets_in_order(client: FlaskClient) -> None:
    client.put(api_path(suffix=f"/{AGENT}"), headers=AUTH, json={"agent-status": 5})
    client.get(api_path(), headers=AUTH)
    bulk(client, SECOND, "nobody")
    client.put(api_path(suffix="/agXnotthere"), headers=AUTH, json={"agent-status": 3})
    lunch = (801, 1725, None)
    assert sent_changes(journal(client)) == [
        SentChange(AGENT, 5),
        SentChange(SECOND, 3, lunch),
        SentChange("nobody", 3, lunch),
        SentChange("agXnotthere", 3),
    ]
    assert sent_changes(journal(client), accepted_only=True) == [
        SentChange(AGENT, 5),
        SentChange(SECOND, 3, lunch),
    ]
