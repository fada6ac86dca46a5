"""Bulk: 207, one independent result per entry, partial failure, both methods, the limit."""

from __future__ import annotations

import pytest
from conftest import Api, api_path

BULK = api_path(suffix="/bulk")
PADMA = "ag64oyEUb_Sk6bxVB9P5yaaa"  # 5, group 100
BOB = "agAQDqmvKiRbG4ekigNSmbbb"  # 4, group 100
BEA = "agBacU3lzDPXzaLLkPZCLk1V"  # 9 BUSY
LUNCH = {
    "status-code-list-id": 801,
    "status-code-item-id": 1725,
    "status-code-item-short-code": "Lunch",
}


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_both_methods_answer_207_per_entry(api: Api, method: str) -> None:
    body = {"agents": [{"agent-id": PADMA, "agent-status": 3, **LUNCH}]}
    reply = api.request(method, BULK, json_body=body)
    assert reply.status == 207
    assert reply.json() == {
        "data": [
            {
                "agent-id": PADMA,
                "reason": "OK",
                "change-status": 200,
                "message": "Agent status change successful",
            }
        ]
    }
    assert api.agent(PADMA)["agent-status"] == 3


def test_a_bad_entry_beside_good_ones_fails_alone(api: Api) -> None:
    body = {
        "agents": [
            {"agent-id": PADMA, "agent-status": 3, **LUNCH},
            {"agent-id": BEA, "agent-status": 3},
            {"agent-id": "agNobody", "agent-status": 3},
            {
                "agent-id": BOB,
                "agent-status": 5,
                "status-code-list-id": 802,
                "status-code-item-id": 1801,
            },
            {"agent-id": BOB, "agent-status": 5},
        ]
    }
    reply = api.post(BULK, body)
    assert reply.status == 207
    results = reply.json()["data"]
    assert [r["agent-id"] for r in results] == [PADMA, BEA, "agNobody", BOB, BOB]
    assert [r["change-status"] for r in results] == [200, 400, 404, 400, 200]
    assert "9 BUSY -> 3 ON_BREAK" in results[1]["reason"]
    assert results[2]["reason"] == "The agent does not exist: 'agNobody'."
    assert "status code list id is invalid" in results[3]["reason"]
    assert all(r["message"] == "Agent status change failed" for r in results[1:4])
    assert api.agent(PADMA)["agent-status"] == 3
    assert api.agent(BEA)["agent-status"] == 9
    assert api.agent(BOB)["agent-status"] == 5


def test_entries_apply_in_order(api: Api) -> None:
    body = {
        "agents": [
            {"agent-id": BOB, "agent-status": 1},
            {"agent-id": BOB, "agent-status": 4},
        ]
    }
    results = api.post(BULK, body).json()["data"]
    assert [r["change-status"] for r in results] == [200, 400]
    assert api.agent(BOB)["agent-status"] == 1


def test_entry_without_agent_status_changes_only_the_code(api: Api) -> None:
    body = {"agents": [{"agent-id": PADMA, **LUNCH}]}
    results = api.post(BULK, body).json()["data"]
    assert results[0]["change-status"] == 200
    agent = api.agent(PADMA)
    assert (agent["agent-status"], agent["status-code-item-short-code"]) == (5, "Lunch")


def test_the_limit_is_100_entries(api: Api) -> None:
    entries = [{"agent-id": BOB, "agent-status": 4}] * 100
    assert api.post(BULK, {"agents": entries}).status == 207
    before = api.tenant_state()
    reply = api.post(BULK, {"agents": [*entries, {"agent-id": PADMA, "agent-status": 3}]})
    assert reply.status == 400
    assert "agents has 101 entries; at most 100 are allowed" in reply.json()["detail"]
    assert api.tenant_state() == before


def test_empty_bulk_is_an_empty_207(api: Api) -> None:
    reply = api.post(BULK, {"agents": []})
    assert reply.status == 207
    assert reply.json() == {"data": []}


MALFORMED: dict[str, tuple[object, str]] = {
    "not an object": ([{"agent-id": BOB}], "must be a JSON object"),
    "agents missing": ({}, "agents is required"),
    "agents not an array": ({"agents": {"agent-id": BOB}}, "agents must be an array"),
    "entry not an object": ({"agents": [{"agent-id": PADMA, "agent-status": 3}, 7]}, "agents[1]"),
    "entry without agent-id": ({"agents": [{"agent-status": 3}]}, "agents[0].agent-id is required"),
    "agent-id not a string": ({"agents": [{"agent-id": 5}]}, "agents[0].agent-id must be a string"),
    "wrong type in an entry": (
        {
            "agents": [
                {"agent-id": PADMA, "agent-status": 3},
                {"agent-id": BOB, "agent-status": "3"},
            ]
        },
        "agents[1].agent-status must be an integer",
    ),
    "unsettable status in an entry": (
        {"agents": [{"agent-id": BOB, "agent-status": 9}]},
        "agents[0].agent-status 9 BUSY cannot be set",
    ),
}


@pytest.mark.parametrize(("body", "expected"), MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_request_is_refused_whole(api: Api, body: object, expected: str) -> None:
    before = api.tenant_state()
    reply = api.post(BULK, body)
    assert reply.status == 400
    assert expected in reply.json()["detail"]
    assert api.tenant_state() == before


def test_bulk_needs_credentials_like_everything_else(api: Api) -> None:
    reply = api.post(BULK, {"agents": [{"agent-id": BOB, "agent-status": 3}]}, credentials={})
    assert reply.status == 401
    assert api.agent(BOB)["agent-status"] == 4


def test_get_on_bulk_is_405_naming_the_bulk_methods(api: Api) -> None:
    reply = api.get(BULK)
    assert reply.status == 405
    assert {"POST", "PUT"} <= set(reply.headers["Allow"].split(", "))
    assert "GET" not in reply.headers["Allow"]


PAIRINGS: dict[str, tuple[dict[str, object], str]] = {
    "item without list": (
        {"agent-status": 3, "status-code-item-id": 1725},
        "status-code-list-id is required when status-code-item-id is given.",
    ),
    "list without item": (
        {"agent-status": 3, "status-code-list-id": 801},
        "status-code-item-id is required when status-code-list-id is given.",
    ),
    "short code alone": (
        {"agent-status": 3, "status-code-item-short-code": "Lunch"},
        "status-code-list-id and status-code-item-id are required "
        "when status-code-item-short-code is given.",
    ),
}


@pytest.mark.parametrize(("fields", "reason"), PAIRINGS.values(), ids=PAIRINGS.keys())
def test_a_mismatched_status_code_pairing_fails_its_entry_alone(
    api: Api, fields: dict[str, object], reason: str
) -> None:
    """Each entry is independent (both documents): a list/item pairing the single set refuses
    is that entry's 400 with the single set's reason; the other entries are still applied."""
    single = api.put(api_path(suffix=f"/{BOB}"), fields)
    assert (single.status, single.json()["detail"]) == (400, reason)
    body = {
        "agents": [
            {"agent-id": PADMA, "agent-status": 3, **LUNCH},
            {"agent-id": BOB, **fields},
            {"agent-id": "agNobody", **fields},
        ]
    }
    reply = api.post(BULK, body)
    assert reply.status == 207, reply.text
    results = reply.json()["data"]
    assert [(r["agent-id"], r["change-status"]) for r in results] == [
        (PADMA, 200),
        (BOB, 400),
        ("agNobody", 400),
    ]
    assert results[1]["reason"] == reason
    assert results[1]["message"] == "Agent status change failed"
    assert api.agent(PADMA)["agent-status"] == 3
    assert api.agent(BOB)["agent-status"] == 4
