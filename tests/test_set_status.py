"""Setting one agent: body validation, status-code validation, and refusals that change nothing."""

from __future__ import annotations

import pytest
from conftest import Api, api_path

PADMA = "ag64oyEUb_Sk6bxVB9P5yaaa"  # 5 WORK_OFFLINE, group 100 (list 801), 801/1726 Train
NORA = "agrUjDeOCLTPioS3uuGXt3im"  # 4 WAIT_TRANSACT, group 400 (no status-code lists)
MEET = {
    "status-code-list-id": 801,
    "status-code-item-id": 1722,
    "status-code-item-short-code": "Meet",
}


def test_full_body_sets_status_and_code(api: Api) -> None:
    reply = api.put(api_path(suffix=f"/{PADMA}"), {"agent-status": 3, **MEET})
    assert reply.status == 200
    assert reply.json() == {
        "reason": "OK",
        "change-status": 200,
        "message": "Agent status change successful",
    }
    assert api.get(api_path(suffix=f"/{PADMA}")).json() == {
        "agent-id": PADMA,
        "agent-status": 3,
        **MEET,
        "name": "Padma Othertask",
        "agent-sub-status": "none",
    }


def test_missing_short_code_is_filled_in_from_the_item(api: Api) -> None:
    body = {"agent-status": 3, "status-code-list-id": 801, "status-code-item-id": 1725}
    assert api.put(api_path(suffix=f"/{PADMA}"), body).status == 200
    assert api.agent(PADMA)["status-code-item-short-code"] == "Lunch"


REFUSALS: dict[str, tuple[object, str]] = {
    "list not assigned to the group": (
        {"agent-status": 3, "status-code-list-id": 802, "status-code-item-id": 1801},
        "status-code-list-id 802 is not assigned to the agent's group 100 (Support)",
    ),
    "list that does not exist": (
        {"agent-status": 3, "status-code-list-id": 999, "status-code-item-id": 1},
        "status-code-list-id 999 is not assigned",
    ),
    "item not in the list": (
        {"agent-status": 3, "status-code-list-id": 801, "status-code-item-id": 1801},
        "status-code-item-id 1801 is not an item of status-code list 801",
    ),
    "short code not the item's": (
        {**MEET, "agent-status": 3, "status-code-item-short-code": "Lunch"},
        "'Lunch' is not the short code of item 1722 (it is 'Meet')",
    ),
    "short code in the wrong case": (
        {**MEET, "agent-status": 3, "status-code-item-short-code": "meet"},
        "'meet' is not the short code of item 1722",
    ),
    "list without item": (
        {"agent-status": 3, "status-code-list-id": 801},
        "status-code-item-id is required when status-code-list-id is given",
    ),
    "item without list": (
        {"agent-status": 3, "status-code-item-id": 1722},
        "status-code-list-id is required when status-code-item-id is given",
    ),
    "short code alone": (
        {"agent-status": 3, "status-code-item-short-code": "Meet"},
        "required when status-code-item-short-code is given",
    ),
    "agent-status missing": ({**MEET}, "agent-status is required"),
    "agent-status null": ({"agent-status": None}, "agent-status is required"),
    "agent-status as a string": ({"agent-status": "3"}, "agent-status must be an integer"),
    "agent-status as a boolean": ({"agent-status": True}, "agent-status must be an integer"),
    "agent-status as a fraction": ({"agent-status": 3.5}, "agent-status must be an integer"),
    "list id as a string": (
        {**MEET, "agent-status": 3, "status-code-list-id": "801"},
        "status-code-list-id must be an integer",
    ),
    "short code as a number": (
        {**MEET, "agent-status": 3, "status-code-item-short-code": 5},
        "status-code-item-short-code must be a string",
    ),
    "body is an array": ([{"agent-status": 3}], "must be a JSON object"),
    "body is a string": ("3", "must be a JSON object"),
    "body is null": (None, "must be a JSON object, got null"),
}


@pytest.mark.parametrize(("body", "expected"), REFUSALS.values(), ids=REFUSALS.keys())
def test_refusals_name_what_was_wrong_and_change_nothing(
    api: Api, body: object, expected: str
) -> None:
    before = api.tenant_state()
    reply = api.put(
        api_path(suffix=f"/{PADMA}"),
        data="null" if body is None else None,
        json_body=body,
        headers={"Content-Type": "application/json"},
    )
    assert reply.status == 400, reply.text
    assert reply.headers["Content-Type"] == "application/problem+json"
    problem = reply.json()
    assert problem["title"] == "Bad Request"
    assert expected in problem["detail"]
    assert api.tenant_state() == before


INTEGER_REFUSALS = {
    "a string": ({"agent-status": "3"}, "agent-status must be an integer, got a string '3'."),
    "a boolean": ({"agent-status": True}, "agent-status must be an integer, got a boolean True."),
    "a fraction": ({"agent-status": 3.5}, "agent-status must be an integer, got 3.5."),
    "an array": (
        {"agent-status": 3, "status-code-list-id": [801]},
        "status-code-list-id must be an integer, got an array [801].",
    ),
    "beyond 2**53 - 1": (
        {"agent-status": 3, "status-code-list-id": 801, "status-code-item-id": 2**53},
        f"status-code-item-id must be an integer within +-(2**53 - 1), got {2**53}.",
    ),
    "an integral float beyond it": (
        {"agent-status": -1e16},
        "agent-status must be an integer within +-(2**53 - 1), got -10000000000000000.",
    ),
    "no status": (
        {"agent-status": 12},
        "agent-status 12 is not a known status; statuses are 0-11 "
        "and only 1, 3, 4 and 5 can be set.",
    ),
}


@pytest.mark.parametrize(
    ("body", "expected"), INTEGER_REFUSALS.values(), ids=INTEGER_REFUSALS.keys()
)
def test_integer_refusals_word_for_word(api: Api, body: object, expected: str) -> None:
    reply = api.put(api_path(suffix=f"/{PADMA}"), body)
    assert (reply.status, reply.json()["detail"]) == (400, expected)


def test_integral_floats_are_accepted_as_integers(api: Api) -> None:
    body = {"agent-status": 3.0, "status-code-list-id": 801.0, "status-code-item-id": 1722}
    assert api.put(api_path(suffix=f"/{PADMA}"), body).status == 200
    assert api.agent(PADMA)["agent-status"] == 3


def test_unknown_fields_are_ignored(api: Api) -> None:
    reply = api.put(api_path(suffix=f"/{PADMA}"), {"agent-status": 4, "colour": "blue"})
    assert reply.status == 200


def test_codes_on_an_agent_whose_group_has_no_list(api: Api) -> None:
    reply = api.put(api_path(suffix=f"/{NORA}"), {"agent-status": 3, **MEET})
    assert reply.status == 400
    assert "(assigned lists: none)" in reply.json()["detail"]
    assert api.put(api_path(suffix=f"/{NORA}"), {"agent-status": 3}).status == 200


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("{not json", "not valid JSON"),
        ('{"agent-status": 3', "not valid JSON"),
        ("", "is empty"),
        ("   ", "is empty"),
        ('{"agent-status": NaN}', "not valid JSON"),
    ],
)
def test_malformed_json_is_400(api: Api, data: str, expected: str) -> None:
    reply = api.put(
        api_path(suffix=f"/{PADMA}"), data=data, headers={"Content-Type": "application/json"}
    )
    assert reply.status == 400
    assert expected in reply.json()["detail"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_bodies_not_declared_json_are_415(api: Api, content_type: str) -> None:
    reply = api.put(
        api_path(suffix=f"/{PADMA}"),
        data='{"agent-status": 3}',
        headers={"Content-Type": content_type},
    )
    assert reply.status == 415
    assert content_type in reply.json()["detail"]
    assert api.agent(PADMA)["agent-status"] == 5


def test_unknown_agent_is_404_with_the_reference_wording(api: Api) -> None:
    reply = api.put(api_path(suffix="/agNoSuchAgent"), {"agent-status": 3})
    assert reply.status == 404
    assert reply.json()["detail"] == "The agent does not exist: 'agNoSuchAgent'."
    get = api.get(api_path(suffix="/agNoSuchAgent"))
    assert get.status == 404
    assert get.json()["title"] == "Not Found"


def test_type_errors_win_over_unknown_agent(api: Api) -> None:
    reply = api.put(api_path(suffix="/agNoSuchAgent"), {"agent-status": "x"})
    assert reply.status == 400
