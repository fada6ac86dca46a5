"""Fault injection through /__admin/faults: matching, actions, schedules and bad definitions."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from conftest import DEMO_TENANT, GUIDE_AUTH_HEADER, OTHER_TENANT, api_path, basic
from flask import Flask
from flask.testing import FlaskClient

from mock_server import create_app
from mock_server.serving.threaded import RunningServer, start_in_thread

AGENT = "agAQDqmvKiRbG4ekigNSmbbb"
OTHER_AGENT = "agys64KT2rumOT-zNtTKjCSF"
AUTH = {"Authorization": GUIDE_AUTH_HEADER}


@pytest.fixture
def server(app: Flask) -> Iterator[RunningServer]:
    with start_in_thread(app) as running:
        yield running


def add_fault(client: FlaskClient, definition: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/__admin/faults", json=definition)
    fault = response.get_json()
    assert response.status_code == 201, fault
    assert response.headers["Location"] == f"/__admin/faults/{fault['id']}"
    assert isinstance(fault, dict)
    return fault


def list_status(client: FlaskClient, path: str | None = None) -> int:
    return client.get(path or api_path(), headers=AUTH).status_code


def test_a_call_fails_twice_then_succeeds(client: FlaskClient) -> None:
    fault = add_fault(client, {"action": {"type": "respond", "status": 503}, "times": 2})
    assert [list_status(client) for _ in range(3)] == [503, 503, 200]
    shown = client.get(f"/__admin/faults/{fault['id']}").json
    assert shown is not None
    assert (shown["hits"], shown["remaining"], shown["active"]) == (2, 0, False)


def test_default_error_body_is_problem_json_and_429_carries_retry_after(
    client: FlaskClient,
) -> None:
    add_fault(client, {"action": {"type": "respond", "status": 429}})
    response = client.get(api_path(), headers=AUTH)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert response.mimetype == "application/problem+json"
    assert response.json is not None
    assert response.json["status"] == 429
    assert len(response.headers["X-Request-Id"]) == 32


def test_chosen_body_headers_and_content_type_are_sent_as_given(client: FlaskClient) -> None:
    add_fault(
        client,
        {
            "match": {"method": "GET"},
            "action": {
                "type": "respond",
                "status": 502,
                "body": "<html>Bad gateway</html>",
                "content-type": "text/html",
                "headers": {"Retry-After": "7", "X-Upstream": "lb-3"},
            },
        },
    )
    response = client.get(api_path(), headers=AUTH)
    assert (response.status_code, response.mimetype) == (502, "text/html")
    assert response.get_data(as_text=True) == "<html>Bad gateway</html>"
    assert (response.headers["Retry-After"], response.headers["X-Upstream"]) == ("7", "lb-3")


def test_json_body_is_sent_as_json(client: FlaskClient) -> None:
    add_fault(client, {"action": {"type": "respond", "status": 500, "body": {"error": "boom"}}})
    response = client.get(api_path(), headers=AUTH)
    assert (response.status_code, response.mimetype, response.json) == (
        500,
        "application/json",
        {"error": "boom"},
    )


def test_forbidden_xml_is_the_guides_403(client: FlaskClient) -> None:
    add_fault(client, {"action": {"type": "forbidden-xml"}})
    response = client.get(api_path(), headers=AUTH)
    assert (response.status_code, response.mimetype) == (403, "application/xml")
    assert response.get_data(as_text=True) == "<API><Error>403 - Forbidden.</Error></API>"


def test_malformed_truncates_the_real_answer_after_applying_it(client: FlaskClient) -> None:
    add_fault(client, {"match": {"method": "PUT"}, "action": {"type": "malformed"}, "times": 1})
    response = client.put(api_path(suffix=f"/{AGENT}"), headers=AUTH, json={"agent-status": 3})
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(text.encode())
    assert '{"reason":"OK"'.startswith(text[:14])
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    agent = client.get(api_path(suffix=f"/{AGENT}"), headers=AUTH).json
    assert agent is not None
    assert agent["agent-status"] == 3


def test_drop_closes_the_connection_without_a_response(
    client: FlaskClient, server: RunningServer
) -> None:
    add_fault(client, {"action": {"type": "drop"}, "times": 1})
    with requests.Session() as session:
        session.headers.update(AUTH)
        with pytest.raises(requests.ConnectionError):
            session.get(server.base_url + api_path(), timeout=5)
        assert session.get(server.base_url + api_path(), timeout=5).status_code == 200
    entries = client.get("/__admin/requests").json
    assert entries is not None
    assert [e["outcome"] for e in entries["requests"]] == ["dropped", "answered"]
    assert entries["requests"][0]["status"] is None


def test_latency_delays_the_normal_answer(client: FlaskClient) -> None:
    add_fault(client, {"latency-ms": 150})
    started = time.monotonic()
    assert list_status(client) == 200
    assert time.monotonic() - started >= 0.15


@pytest.mark.parametrize(
    ("match", "hit", "missed"),
    [
        ({"agent": AGENT}, api_path(suffix=f"/{AGENT}"), api_path(suffix=f"/{OTHER_AGENT}")),
        (
            {"path": "/api/v1/tenants/*/agentstatus/agents/ag*"},
            api_path(suffix=f"/{AGENT}"),
            api_path(),
        ),
        ({"path": api_path()}, api_path(), api_path(suffix=f"/{AGENT}")),
        ({"path-regex": r".*/agents/agAQ[^/]+"}, api_path(suffix=f"/{AGENT}"), api_path()),
    ],
)
def test_match_narrows_which_requests_fail(
    client: FlaskClient, match: dict[str, str], hit: str, missed: str
) -> None:
    add_fault(client, {"match": match, "action": {"type": "respond", "status": 500}})
    assert list_status(client, hit) == 500
    assert list_status(client, missed) == 200


def test_method_match_ignores_case(client: FlaskClient) -> None:
    add_fault(client, {"match": {"method": "put"}, "action": {"type": "respond", "status": 500}})
    put = client.put(api_path(suffix=f"/{AGENT}"), headers=AUTH, json={"agent-status": 3})
    assert put.status_code == 500
    assert list_status(client) == 200


def test_tenant_match_leaves_other_tenants_alone(client: FlaskClient) -> None:
    add_fault(
        client, {"match": {"tenant": DEMO_TENANT}, "action": {"type": "respond", "status": 500}}
    )
    assert list_status(client) == 500
    other = client.get(api_path(OTHER_TENANT), headers=basic("globexapi", "globex-demo-token"))
    assert other.status_code == 200


def test_first_matching_fault_wins(client: FlaskClient) -> None:
    add_fault(client, {"action": {"type": "respond", "status": 502}, "times": 1})
    add_fault(client, {"action": {"type": "respond", "status": 503}, "times": 1})
    assert [list_status(client) for _ in range(3)] == [502, 503, 200]


def test_fault_numbers_are_read_as_the_api_reads_them(client: FlaskClient) -> None:
    """``2.0`` is the integer 2 here as in the API (``schemas.wire.integral``)."""
    add_fault(client, {"action": {"type": "respond", "status": 502.0}, "times": 2.0})
    assert [list_status(client) for _ in range(3)] == [502, 502, 200]


@pytest.mark.parametrize("field", ["times", "latency-ms", "seed"])
@pytest.mark.parametrize("value", [1e300, 10**23, -(10**23)])
def test_fault_numbers_beyond_json_range_are_refused(
    client: FlaskClient, field: str, value: float
) -> None:
    """A number no JSON parser holds exactly is a 400 naming it, and nothing is registered."""
    definition = {"action": {"type": "respond", "status": 503}, field: value}
    answer = client.post("/__admin/faults", json=definition)
    assert answer.status_code == 400
    assert field in answer.json["detail"]
    assert client.get("/__admin/faults").json == {"faults": []}


def test_a_fault_is_listed_with_the_numbers_it_was_read_as(client: FlaskClient) -> None:
    definition = {"action": {"type": "respond", "status": 503.0}, "times": 2.0, "seed": 7.0}
    created = client.post("/__admin/faults", json=definition).json
    assert (created["times"], created["seed"], created["action"]["status"]) == (2, 7, 503)
    assert all(isinstance(created[name], int) for name in ("times", "seed"))


def run_with_probability(seed: int) -> list[int]:
    client = create_app(validate_responses=True).test_client()
    add_fault(
        client,
        {"action": {"type": "respond", "status": 503}, "probability": 0.5, "seed": seed},
    )
    return [list_status(client) for _ in range(24)]


def test_probability_is_repeatable_for_a_seed() -> None:
    first = run_with_probability(seed=7)
    assert first == run_with_probability(seed=7)
    assert {200, 503} == set(first)
    assert first != run_with_probability(seed=8)


def test_faults_never_touch_the_control_plane(client: FlaskClient) -> None:
    add_fault(client, {"action": {"type": "respond", "status": 500}})
    assert client.get(f"/__admin/tenants/{DEMO_TENANT}").status_code == 200
    assert client.get("/__admin/faults").status_code == 200


def test_list_get_delete_and_clear(client: FlaskClient) -> None:
    first = add_fault(client, {"action": {"type": "drop"}})
    second = add_fault(client, {"latency-ms": 5, "match": {"method": "GET"}})
    listed = client.get("/__admin/faults").json
    assert listed is not None
    assert [fault["id"] for fault in listed["faults"]] == [first["id"], second["id"]]
    assert client.get(f"/__admin/faults/{second['id']}").json == second
    assert client.delete(f"/__admin/faults/{first['id']}").status_code == 204
    missing = client.get(f"/__admin/faults/{first['id']}")
    assert missing.status_code == 404
    assert missing.mimetype == "application/problem+json"
    assert client.delete(f"/__admin/faults/{first['id']}").status_code == 404
    assert client.delete("/__admin/faults").status_code == 204
    assert client.get("/__admin/faults").json == {"faults": []}


@pytest.mark.parametrize(
    ("definition", "named"),
    [
        ([], "The fault must be a JSON object"),
        ({"action": {"type": "drop"}, "colour": "red"}, "colour is not a fault field"),
        ({}, "action is required unless latency-ms"),
        ({"action": {"type": "explode"}}, "action.type must be one of"),
        ({"action": {"type": "respond"}}, "action.status must be an integer"),
        ({"action": {"type": "respond", "status": 600}}, "action.status must be at most 599"),
        ({"action": {"type": "respond", "status": 500, "headers": {"A": 1}}}, "action.headers"),
        ({"action": {"type": "drop", "status": 500}}, "action.status is not a fault field"),
        ({"action": {"type": "drop"}, "times": 0}, "times must be an integer of at least 1"),
        ({"action": {"type": "drop"}, "probability": 1.5}, "probability must be a number"),
        ({"action": {"type": "drop"}, "seed": "x"}, "seed must be an integer"),
        ({"latency-ms": -1}, "latency-ms must be an integer"),
        ({"latency-ms": 60_001}, "latency-ms must be at most 60000"),
        ({"latency-ms": 5, "match": "GET"}, "match must be an object"),
        ({"latency-ms": 5, "match": {"verb": "GET"}}, "match.verb is not a fault field"),
        ({"latency-ms": 5, "match": {"method": ""}}, "match.method must be a non-empty string"),
        ({"latency-ms": 5, "match": {"path-regex": "("}}, "match.path-regex is not a regular"),
        ({"latency-ms": 5, "match": {"path": "/a", "path-regex": "/a"}}, "exclude each other"),
        (
            {"action": {"type": "respond", "status": 200, "headers": {"X-A": "b\r\nx"}}},
            "action.headers.X-A must not contain control characters",
        ),
        (
            {"action": {"type": "respond", "status": 200, "headers": {"X A": "b"}}},
            "'X A' is not a valid header name",
        ),
        (
            {"action": {"type": "respond", "status": 200, "content-type": "a\nb"}},
            "action.content-type must not contain control characters",
        ),
    ],
)
def test_bad_definitions_are_refused_naming_the_field(
    client: FlaskClient, definition: object, named: str
) -> None:
    response = client.post("/__admin/faults", json=definition)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.json is not None
    assert named in response.json["detail"]
    assert client.get("/__admin/faults").json == {"faults": []}


def test_fault_routes_need_the_admin_token_when_one_is_set() -> None:
    client = create_app(admin_token="s3cret", validate_responses=True).test_client()
    assert client.get("/__admin/faults").status_code == 403
    assert client.get("/__admin/requests").status_code == 403
    allowed = client.get("/__admin/faults", headers={"X-Admin-Token": "s3cret"})
    assert allowed.status_code == 200


def test_reset_clears_faults_and_the_journal_as_well_as_the_state(client: FlaskClient) -> None:
    """``POST /__admin/reset`` is a clean slate (as WireMock's reset is)."""
    add_fault(client, {"action": {"type": "respond", "status": 503}, "times": 1})
    add_fault(client, {"latency-ms": 1})
    reset = client.post("/__admin/reset")
    assert reset.status_code == 200 and reset.json["reset"] == "all"
    assert client.get("/__admin/faults").json == {"faults": []}
    assert client.get("/__admin/requests").json["requests"] == []
    assert list_status(client) == 200


def test_reset_of_the_state_only_keeps_faults_and_the_journal(client: FlaskClient) -> None:
    add_fault(client, {"action": {"type": "respond", "status": 503}, "times": 1})
    list_status(client, api_path(OTHER_TENANT))
    reset = client.post("/__admin/reset?only=state")
    assert reset.status_code == 200 and reset.json["reset"] == "state"
    assert len(client.get("/__admin/faults").json["faults"]) == 1
    assert len(client.get("/__admin/requests").json["requests"]) == 1


def test_reset_names_an_unknown_scope(client: FlaskClient) -> None:
    add_fault(client, {"latency-ms": 1})
    refused = client.post("/__admin/reset?only=faults")
    assert refused.status_code == 400 and "only" in refused.json["detail"]
    assert len(client.get("/__admin/faults").json["faults"]) == 1
