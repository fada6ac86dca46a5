"""Profiles: the default accepts both documents; guide and reference each follow one strictly."""

from __future__ import annotations

import pytest
import requests
from conftest import (
    DEMO_TENANT,
    DISABLED_TENANT,
    OTHER_TENANT,
    Api,
    api_path,
    basic,
    flask_api,
    http_api,
)

from mock_server import create_app
from mock_server.core.profiles import PROFILES
from mock_server.serving.threaded import start_in_thread

BULK = api_path(suffix="/bulk")
PADMA = "ag64oyEUb_Sk6bxVB9P5yaaa"
BOB = "agAQDqmvKiRbG4ekigNSmbbb"
LUNCH = {
    "status-code-list-id": 801,
    "status-code-item-id": 1725,
    "status-code-item-short-code": "Lunch",
}


def profile_api(name: str) -> Api:
    return flask_api(create_app(profile=name, validate_responses=True).test_client())


def test_unknown_profile_is_refused_by_name() -> None:
    with pytest.raises(
        ValueError, match="unknown profile 'strict'; choose one of: default, guide, reference"
    ):
        create_app(profile="strict")


def test_guide_bulk_is_put_only() -> None:
    api = profile_api("guide")
    body = {"agents": [{"agent-id": PADMA, "agent-status": 3, **LUNCH}]}
    assert api.put(BULK, body).status == 207
    refused = api.post(BULK, body)
    assert refused.status == 405
    allowed = refused.headers["Allow"].split(", ")
    assert "PUT" in allowed
    assert "POST" not in allowed


def test_reference_bulk_is_post_only() -> None:
    api = profile_api("reference")
    body = {"agents": [{"agent-id": PADMA, "agent-status": 3}]}
    assert api.post(BULK, body).status == 207
    as_single_set = api.put(BULK, body)
    assert as_single_set.status == 400
    assert as_single_set.json()["detail"] == "agent-status is required."
    put = api.put(BULK, {"agent-status": 3})
    assert put.status == 404
    assert put.json()["detail"] == "The agent does not exist: 'bulk'."


def test_guide_requires_all_four_fields_on_a_single_set() -> None:
    api = profile_api("guide")
    reply = api.put(api_path(suffix=f"/{PADMA}"), {"agent-status": 3})
    assert reply.status == 400
    assert reply.json()["detail"] == "status-code-list-id is required."
    missing_short = {k: v for k, v in LUNCH.items() if k != "status-code-item-short-code"}
    reply = api.put(api_path(suffix=f"/{PADMA}"), {"agent-status": 3, **missing_short})
    assert reply.json()["detail"] == "status-code-item-short-code is required."
    assert api.put(api_path(suffix=f"/{PADMA}"), {"agent-status": 3, **LUNCH}).status == 200


def test_guide_requires_status_codes_but_not_agent_status_in_bulk() -> None:
    api = profile_api("guide")
    reply = api.put(BULK, {"agents": [{"agent-id": PADMA, "agent-status": 3}]})
    assert reply.status == 400
    assert "agents[0].status-code-list-id is required" in reply.json()["detail"]
    reply = api.put(BULK, {"agents": [{"agent-id": PADMA, **LUNCH}]})
    assert reply.json()["data"][0]["change-status"] == 200


def test_guide_has_no_bulk_limit() -> None:
    api = profile_api("guide")
    entries = [{"agent-id": BOB, "agent-status": 4, **LUNCH}] * 150
    reply = api.put(BULK, {"agents": entries})
    assert reply.status == 207
    assert len(reply.json()["data"]) == 150


def test_guide_answers_every_403_in_xml() -> None:
    reply = profile_api("guide").get(api_path(OTHER_TENANT))
    assert reply.status == 403
    assert reply.text == "<API><Error>403 - Forbidden.</Error></API>"


def test_guide_ignores_the_group_filter() -> None:
    assert len(profile_api("guide").get(api_path() + "?groupId=300").json()["data"]) == 20


def test_reference_requires_agent_status_in_bulk() -> None:
    api = profile_api("reference")
    reply = api.post(BULK, {"agents": [{"agent-id": PADMA, **LUNCH}]})
    assert reply.status == 400
    assert reply.json()["detail"] == "agents[0].agent-status is required."


def test_reference_single_set_has_no_body_and_bulk_no_message() -> None:
    api = profile_api("reference")
    reply = api.put(api_path(suffix=f"/{PADMA}"), {"agent-status": 4})
    assert (reply.status, reply.text) == (200, "")
    bulk = api.post(BULK, {"agents": [{"agent-id": PADMA, "agent-status": 3}]}).json()
    assert bulk == {"data": [{"agent-id": PADMA, "reason": "OK", "change-status": 200}]}


def test_reference_paginates() -> None:
    api = profile_api("reference")
    first = api.get(api_path() + "?pageSize=8").json()
    assert len(first["data"]) == 8
    assert first["page"] == {"pageSize": 8, "totalElements": 20, "totalPages": 3, "pageIndex": 0}
    last = api.get(api_path() + "?pageSize=8&pageIndex=2").json()
    assert [a["agent-id"] for a in last["data"]] == [
        a["agent-id"] for a in api.get(api_path() + "?pageSize=500").json()["data"][16:]
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("pageSize=0", "pageSize must be between 1 and 500, got 0"),
        ("pageSize=501", "pageSize must be between 1 and 500, got 501"),
        ("pageSize=ten", "pageSize must be an integer, got 'ten'"),
        ("pageIndex=-1", "pageIndex must be 0 or more, got -1"),
    ],
)
def test_reference_refuses_bad_paging(query: str, expected: str) -> None:
    reply = profile_api("reference").get(api_path() + f"?{query}")
    assert reply.status == 400
    assert reply.json()["detail"] == f"{expected}."


@pytest.mark.parametrize(
    ("query", "page_size", "page_index"),
    [
        ("pageIndex=1.0", 100, 1),
        ("pageSize=100.0", 100, 0),
        ("pageSize=8.0&pageIndex=2.00", 8, 2),
        ("pageSize=1e1&pageIndex=0e0", 10, 0),
    ],
)
def test_reference_takes_integral_numbers_for_paging(
    query: str, page_size: int, page_index: int
) -> None:
    """The reference types pageSize and pageIndex as ``number``: 100.0 is the number 100."""
    reply = profile_api("reference").get(api_path() + f"?{query}")
    assert reply.status == 200, reply.text
    page = reply.json()["page"]
    assert (page["pageSize"], page["pageIndex"]) == (page_size, page_index)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("pageIndex=1.5", "pageIndex must be an integer, got '1.5'"),
        ("pageSize=2.5", "pageSize must be an integer, got '2.5'"),
        ("pageSize=abc", "pageSize must be an integer, got 'abc'"),
        ("pageSize=nan", "pageSize must be an integer, got 'nan'"),
        ("pageIndex=inf", "pageIndex must be an integer, got 'inf'"),
        ("pageSize=500.5", "pageSize must be an integer, got '500.5'"),
        ("pageSize=5e2", None),
        ("pageSize=501.0", "pageSize must be between 1 and 500, got 501"),
        ("pageIndex=-1.0", "pageIndex must be 0 or more, got -1"),
    ],
)
def test_reference_refuses_fractional_or_out_of_range_paging(
    query: str, expected: str | None
) -> None:
    reply = profile_api("reference").get(api_path() + f"?{query}")
    if expected is None:
        assert reply.status == 200, reply.text
        return
    assert reply.status == 400
    assert reply.json()["detail"] == f"{expected}."


def test_default_satisfies_both_documents() -> None:
    api = profile_api("default")
    single = api.put(api_path(suffix=f"/{PADMA}"), {"agent-status": 4})
    assert single.json() == {
        "reason": "OK",
        "change-status": 200,
        "message": "Agent status change successful",
    }
    for method in ("PUT", "POST"):
        reply = api.request(
            method, BULK, json_body={"agents": [{"agent-id": PADMA, "agent-status": 3}]}
        )
        assert set(reply.json()["data"][0]) == {"agent-id", "reason", "change-status", "message"}
    assert api.get(api_path(DEMO_TENANT)).status == 200


def test_every_profile_states_its_claims() -> None:
    claims = {name: profile.claims() for name, profile in PROFILES.items()}
    assert claims["guide"]["bulk_methods"] == ("PUT",)
    assert claims["reference"]["bulk_methods"] == ("POST",)
    assert set(claims["default"]["bulk_methods"]) == {"PUT", "POST"}
    assert len({tuple(sorted(c.items())) for c in claims.values()}) == 3


JSON_BODY = {"Content-Type": "application/json"}
DISABLED_CREDENTIALS = basic("initechapi", "initech-demo-token")
NO_CREDENTIALS: dict[str, str] = {}
# One request for every kind of Problem JSON error the API answers.
ERRORS: dict[str, tuple[str, str, dict[str, object]]] = {
    "400 bad body": ("PUT", api_path(suffix=f"/{PADMA}"), {"json_body": {"agent-status": 2}}),
    "401 no credentials": ("GET", api_path(), {"credentials": NO_CREDENTIALS}),
    "403 another tenant": ("GET", api_path(OTHER_TENANT), {}),
    "404 unknown agent": ("GET", api_path(suffix="/agNobody"), {}),
    "404 unknown version": ("GET", f"/api/v2/tenants/{DEMO_TENANT}/agentstatus/agents", {}),
    "404 unknown path": ("GET", api_path(suffix=f"/{PADMA}/status"), {}),
    "405 wrong method": ("DELETE", api_path(), {}),
    "413 body too large": (
        "PUT",
        api_path(suffix=f"/{PADMA}"),
        {"data": "x" * (1024 * 1024 + 1), "headers": JSON_BODY},
    ),
    "415 not json": (
        "PUT",
        api_path(suffix=f"/{PADMA}"),
        {"data": "{}", "headers": {"Content-Type": "text/plain"}},
    ),
}
ERROR_MEDIA_TYPES = {
    "default": "application/problem+json",
    "guide": "application/problem+json",
    "reference": "application/json",
}


# Every Problem JSON error of every profile; the guide answers another tenant's path with its
# XML 403 instead (test_guide_answers_another_tenants_path_with_the_xml_403).
PROBLEM_ERRORS = [
    (profile, error)
    for profile in ERROR_MEDIA_TYPES
    for error in ERRORS
    if (profile, error) != ("guide", "403 another tenant")
]


@pytest.mark.parametrize(("profile", "error"), PROBLEM_ERRORS)
def test_errors_use_the_profiles_media_type(profile: str, error: str) -> None:
    """The reference declares its Problem as the ``default`` response in application/json."""
    method, path, options = ERRORS[error]
    reply = profile_api(profile).request(method, path, **options)  # type: ignore[arg-type]
    assert reply.status >= 400, reply.text
    assert reply.headers["Content-Type"] == ERROR_MEDIA_TYPES[profile]
    problem = reply.json()
    assert problem["status"] == reply.status
    assert problem["type"] == "about:blank"


def test_guide_answers_another_tenants_path_with_the_xml_403() -> None:
    reply = profile_api("guide").get(api_path(OTHER_TENANT))
    assert reply.status == 403
    assert reply.headers["Content-Type"].startswith("application/xml")
    assert reply.text == "<API><Error>403 - Forbidden.</Error></API>"


@pytest.mark.parametrize("profile", ERROR_MEDIA_TYPES)
def test_an_injected_error_uses_the_profiles_media_type(profile: str) -> None:
    api = profile_api(profile)
    fault = api.admin("POST", "/__admin/faults", {"action": {"type": "respond", "status": 500}})
    assert fault.status == 201, fault.text
    reply = api.get(api_path())
    assert reply.status == 500
    assert reply.headers["Content-Type"] == ERROR_MEDIA_TYPES[profile]
    assert reply.json()["status"] == 500


@pytest.mark.parametrize("profile", ERROR_MEDIA_TYPES)
def test_the_xml_403_stays_xml_in_every_profile(profile: str) -> None:
    reply = profile_api(profile).get(api_path(DISABLED_TENANT), credentials=DISABLED_CREDENTIALS)
    assert (reply.status, reply.headers["Content-Type"]) == (403, "application/xml; charset=utf-8")


def test_the_reference_documents_its_errors_as_application_json() -> None:
    document = profile_api("reference").get("/openapi.json", credentials=NO_CREDENTIALS).json()
    responses = [
        response
        for path_item in document["paths"].values()
        for method, operation in path_item.items()
        if method != "parameters"
        for status, response in operation["responses"].items()
        if not status.startswith(("1", "2", "3"))
    ]
    responses += document["components"]["responses"].values()
    media_types = {
        media_type for response in responses for media_type in response.get("content", {})
    }
    assert media_types == {"application/json", "application/xml"}


def test_reference_single_set_200_declares_no_content_type() -> None:
    """No body, so no media type: not Flask's default ``text/html``, over real HTTP too."""
    app = create_app(profile="reference", validate_responses=True)
    reply = flask_api(app.test_client()).put(api_path(suffix=f"/{PADMA}"), {"agent-status": 4})
    assert (reply.status, reply.text) == (200, "")
    assert "Content-Type" not in reply.headers
    with start_in_thread(app) as server, requests.Session() as session:
        reply = http_api(server, session).put(api_path(suffix=f"/{PADMA}"), {"agent-status": 3})
    assert (reply.status, reply.text) == (200, "")
    assert "content-type" not in {name.lower() for name in reply.headers}
