"""Listing with the group filter, routing errors, and hostile input that must never give a 500."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import requests
from conftest import GUIDE_AUTH_HEADER, Api, api_path, basic
from hypothesis import given, settings
from hypothesis import strategies as st

from mock_server import create_app
from mock_server.core.profiles import PROFILES
from mock_server.serving.threaded import RunningServer

BOB = "agAQDqmvKiRbG4ekigNSmbbb"  # 4 WAIT_TRANSACT in the fixture


def test_list_holds_every_agent_in_fixture_order(api: Api) -> None:
    data = api.get(api_path()).json()["data"]
    assert len(data) == 20
    assert data[0]["agent-id"] == "ag0VYyLh0YTsymdbtYIaaaa"
    assert {agent["agent-status"] for agent in data} == set(range(12))


def test_absent_fields_are_omitted_never_null(api: Api) -> None:
    reply = api.get(api_path())
    assert "null" not in reply.text
    paul = next(a for a in reply.json()["data"] if a["agent-id"] == "ag1LmqEeEYRoOti9KjIi_Dng")
    assert paul == {
        "agent-id": "ag1LmqEeEYRoOti9KjIi_Dng",
        "agent-status": 0,
        "name": "Paul Neverhere",
    }


@pytest.mark.parametrize(
    ("group", "count"), [("100", 8), ("300", 3), ("400", 1), ("999", 0), ("x", 0)]
)
def test_group_filter(api: Api, group: str, count: int) -> None:
    data = api.get(api_path() + f"?groupId={group}").json()["data"]
    assert len(data) == count
    if count:
        state = api.admin("GET", "/__admin/tenants/acmecorp01").json()
        groups = {a["agent-id"]: a["group-id"] for a in state["agents"]}
        assert {groups[a["agent-id"]] for a in data} == {int(group)}


def test_pagination_parameters_are_ignored_by_default(api: Api) -> None:
    reply = api.get(api_path() + "?pageSize=2&pageIndex=1")
    assert len(reply.json()["data"]) == 20
    assert "page" not in reply.json()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v2/tenants/acmecorp01/agentstatus/agents",
        "/api/v1/tenants/acmecorp01/agentstatus",
        "/api/v1/tenants/acmecorp01/agentstatus/agents/a/b",
        "/",
        "/nowhere",
    ],
)
def test_unknown_paths_and_versions_are_problem_404(api: Api, path: str) -> None:
    reply = api.get(path)
    assert reply.status == 404
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert path in reply.json()["detail"]


@pytest.mark.parametrize(
    ("method", "suffix", "allowed"),
    [
        ("DELETE", "", "GET"),
        ("POST", "", "GET"),
        ("DELETE", "/agX", "GET, PUT"),
        ("PATCH", "/agX", "GET, PUT"),
    ],
)
def test_wrong_methods_are_problem_405(api: Api, method: str, suffix: str, allowed: str) -> None:
    reply = api.request(method, api_path(suffix=suffix))
    assert reply.status == 405
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert f"this path accepts {allowed}" in reply.json()["detail"]
    assert set(allowed.split(", ")) <= set(reply.headers["Allow"].split(", "))


@pytest.mark.parametrize(
    ("suffix", "allowed"),
    [
        ("", "GET, HEAD, OPTIONS"),
        ("/agX", "GET, HEAD, OPTIONS, PUT"),
        ("/bulk", "OPTIONS, POST, PUT"),
    ],
)
def test_options_lists_the_methods_and_sends_no_html(api: Api, suffix: str, allowed: str) -> None:
    """After authentication, like every API request; an empty answer has no media type."""
    assert api.request("OPTIONS", api_path(suffix=suffix), credentials={}).status == 401
    reply = api.request("OPTIONS", api_path(suffix=suffix))
    assert (reply.status, reply.headers["Allow"], reply.text) == (200, allowed, "")
    assert "Content-Type" not in reply.headers


def test_head_answers_the_get_headers_without_a_body(api: Api) -> None:
    got, head = api.get(api_path(suffix=f"/{BOB}")), api.request("HEAD", api_path(suffix=f"/{BOB}"))
    assert (head.status, head.text) == (200, "")
    assert head.headers["Content-Length"] == str(len(got.text.encode()))
    assert head.headers["Content-Type"] == got.headers["Content-Type"] == "application/json"


def test_oversized_bodies_are_problem_413(api: Api) -> None:
    reply = api.put(
        api_path(suffix="/agX"),
        data="[" + "1," * 600_000 + "1]",
        headers={"Content-Type": "application/json"},
    )
    assert reply.status == 413
    assert reply.json()["status"] == 413


def test_a_body_of_exactly_one_mebibyte_is_read_and_one_byte_more_is_413(api: Api) -> None:
    """The limit holds at its edge, whichever way the body reaches the view."""
    document = b'{"agent-status": 4}'
    limit = 1024 * 1024
    json_type = {"Content-Type": "application/json"}
    at_limit = api.put(
        api_path(suffix=f"/{BOB}"), data=document.ljust(limit, b" "), headers=json_type
    )
    assert at_limit.status == 200, at_limit.text
    over = api.put(
        api_path(suffix=f"/{BOB}"), data=document.ljust(limit + 1, b" "), headers=json_type
    )
    assert over.status == 413


def test_every_response_carries_a_request_id_matching_the_problem(api: Api) -> None:
    reply = api.get(api_path(suffix="/agNobody"))
    request_id = reply.headers["X-Request-Id"]
    assert reply.json()["instance"].replace("-", "") == f"urn:uuid:{request_id}"


def test_request_ids_are_fresh_version_4_uuids_on_every_kind_of_response(api: Api) -> None:
    replies = [
        api.get(api_path()),
        api.get(api_path(suffix=f"/{BOB}")),
        api.get("/nowhere"),
        api.request("DELETE", api_path()),
        api.get(api_path("initech03"), credentials=basic("initechapi", "initech-demo-token")),
        api.admin("GET", "/__admin/tenants"),
    ]
    assert [reply.status for reply in replies] == [200, 200, 404, 405, 403, 200]
    ids = [reply.headers["X-Request-Id"] for reply in replies]
    assert len(set(ids)) == len(ids)
    for request_id in ids:
        assert uuid.UUID(request_id).version == 4, request_id


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
entry_like = st.fixed_dictionaries(
    {},
    optional={
        "agent-id": st.sampled_from(["agAQDqmvKiRbG4ekigNSmbbb", "agBacU3lzDPXzaLLkPZCLk1V"])
        | json_values,
        "agent-status": st.integers(-2, 13) | json_values,
        "status-code-list-id": st.sampled_from([801, 802, -1]) | json_values,
        "status-code-item-id": st.sampled_from([1722, 1725, 1]) | json_values,
        "status-code-item-short-code": st.sampled_from(["Meet", "Lunch"]) | json_values,
    },
)


AUTH_JSON = {"Authorization": GUIDE_AUTH_HEADER, "Content-Type": "application/json"}
PROFILE_APPS = {name: create_app(profile=name, validate_responses=True) for name in PROFILES}
CONTROL_PLANE_APP = create_app(validate_responses=True)
"""Apart from the API apps: a fuzzed control-plane call may change state they rely on."""
profiles = st.sampled_from(sorted(PROFILES))
query_values = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=12),
)


@settings(max_examples=150, deadline=None)
@given(profile=profiles, body=entry_like | json_values)
def test_no_single_set_body_gives_a_500(profile: str, body: object) -> None:
    reply = (
        PROFILE_APPS[profile]
        .test_client()
        .put(api_path(suffix="/agAQDqmvKiRbG4ekigNSmbbb"), data=json.dumps(body), headers=AUTH_JSON)
    )
    assert reply.status_code in (200, 400), reply.get_data(as_text=True)


@settings(max_examples=150, deadline=None)
@given(
    profile=profiles,
    method=st.sampled_from(["POST", "PUT"]),
    body=st.fixed_dictionaries({"agents": st.lists(entry_like, max_size=5)}) | json_values,
)
def test_no_bulk_body_gives_a_500(profile: str, method: str, body: object) -> None:
    reply = (
        PROFILE_APPS[profile]
        .test_client()
        .open(api_path(suffix="/bulk"), method=method, data=json.dumps(body), headers=AUTH_JSON)
    )
    assert reply.status_code in (207, 400, 404, 405), reply.get_data(as_text=True)
    if reply.status_code == 207:
        results = reply.get_json()["data"]
        assert len(results) == len(body["agents"])  # type: ignore[index]
        assert {r["change-status"] for r in results} <= {200, 400, 404}


@settings(max_examples=150, deadline=None)
@given(
    profile=profiles,
    query=st.dictionaries(
        st.sampled_from(["groupId", "pageSize", "pageIndex", "other"]), query_values, max_size=3
    ),
)
def test_no_list_query_gives_a_500(profile: str, query: dict[str, str]) -> None:
    reply = (
        PROFILE_APPS[profile].test_client().get(api_path(), query_string=query, headers=AUTH_JSON)
    )
    assert reply.status_code in (200, 400), reply.get_data(as_text=True)


@settings(max_examples=100, deadline=None)
@given(
    raw=st.binary(max_size=64),
    header=st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=40),
)
def test_no_raw_bytes_or_header_gives_a_500(raw: bytes, header: str) -> None:
    reply = (
        PROFILE_APPS["default"]
        .test_client()
        .put(
            api_path(suffix="/agAQDqmvKiRbG4ekigNSmbbb"),
            data=raw,
            headers={
                "Authorization": "Basic " + header.encode("latin-1", "replace").decode("latin-1"),
                "Content-Type": "application/json",
            },
        )
    )
    assert reply.status_code in (200, 400, 401)


@settings(max_examples=100, deadline=None)
@given(
    path=st.sampled_from(["/__admin/requests", "/__admin/faults", "/__admin/tenants/acmecorp01"]),
    query=st.dictionaries(
        st.sampled_from(["status", "method", "agent", "tenant", "path"]), query_values, max_size=3
    ),
    body=json_values,
)
def test_no_control_plane_input_gives_a_500(path: str, query: dict[str, str], body: object) -> None:
    client = CONTROL_PLANE_APP.test_client()
    assert client.get(path, query_string=query).status_code in (200, 400)
    for method in ("POST", "PATCH", "PUT"):
        reply = client.open(path, method=method, data=json.dumps(body), headers=AUTH_JSON)
        assert reply.status_code < 500, reply.get_data(as_text=True)


def test_a_chunked_body_meets_the_same_limit(live: RunningServer) -> None:
    """Without Content-Length the limit still holds: 1 MiB is read, one byte more is 413."""
    document = b'{"agent-status": 4}'
    url = live.base_url + api_path(suffix=f"/{BOB}")

    def chunks(size: int) -> Iterator[bytes]:
        body = document.ljust(size, b" ")
        for start in range(0, size, 64 * 1024):
            yield body[start : start + 64 * 1024]

    statuses = [
        requests.put(
            url,
            data=chunks(size),
            headers={"Content-Type": "application/json", "Authorization": GUIDE_AUTH_HEADER},
            timeout=10,
        ).status_code
        for size in (1024 * 1024, 1024 * 1024 + 1, 3 * 1024 * 1024)
    ]
    assert statuses == [200, 413, 413]
