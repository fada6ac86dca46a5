"""Authentication and gating: 401 with a challenge, 403 across tenants, the XML 403, rotation."""

from __future__ import annotations

import base64

import pytest
from conftest import (
    DEMO_TENANT,
    DEMO_TOKEN,
    DEMO_USERNAME,
    DISABLED_TENANT,
    OTHER_TENANT,
    Api,
    api_path,
    basic,
)

XML_403 = "<API><Error>403 - Forbidden.</Error></API>"
BAD_CREDENTIALS = {
    "missing header": {},
    "wrong token": basic(DEMO_USERNAME, "not-the-token"),
    "unknown user": basic("nobody", DEMO_TOKEN),
    "empty token": basic(DEMO_USERNAME, ""),
    "bearer scheme": {"Authorization": f"Bearer {DEMO_TOKEN}"},
    "not base64": {"Authorization": "Basic %%%not-base64%%%"},
    "no colon": {"Authorization": "Basic " + base64.b64encode(b"myclientId").decode()},
    "not utf-8": {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()},
    "token of another tenant": basic(DEMO_USERNAME, "globex-demo-token"),
}


@pytest.mark.parametrize("credentials", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
def test_bad_credentials_get_401_with_a_basic_challenge(
    api: Api, credentials: dict[str, str]
) -> None:
    reply = api.get(api_path(), credentials=credentials)
    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"].startswith('Basic realm="8x8 Agent Status API"')
    assert reply.headers["Content-Type"] == "application/problem+json"
    problem = reply.json()
    assert problem["status"] == 401
    assert DEMO_TOKEN not in reply.text


def test_401_on_writes_changes_nothing(api: Api) -> None:
    agent = "agys64KT2rumOT-zNtTKjCSF"
    reply = api.put(
        api_path(suffix=f"/{agent}"),
        {"agent-status": 3},
        credentials=basic(DEMO_USERNAME, "wrong"),
    )
    assert reply.status == 401
    assert api.agent(agent)["agent-status"] == 4


@pytest.mark.parametrize("tenant", [OTHER_TENANT, "no-such-tenant"])
def test_valid_credentials_on_another_tenants_path_get_403(api: Api, tenant: str) -> None:
    reply = api.get(api_path(tenant))
    assert reply.status == 403
    assert reply.json()["detail"] == "You are not authorized to access this tenant."


def test_tenants_are_isolated(api: Api) -> None:
    globex = basic("globexapi", "globex-demo-token")
    agent = "agYr_8pLYeeVLSWdsbkx5q2n"
    assert api.put(api_path(OTHER_TENANT, f"/{agent}"), {"agent-status": 3}).status == 403
    assert api.get(api_path(DEMO_TENANT, f"/{agent}")).status == 404
    reply = api.put(api_path(OTHER_TENANT, f"/{agent}"), {"agent-status": 5}, credentials=globex)
    assert reply.status == 200
    assert api.agent(agent, OTHER_TENANT)["agent-status"] == 5
    acme = {a["agent-id"] for a in api.get(api_path()).json()["data"]}
    assert agent not in acme


def test_disabled_api_answers_the_guides_xml_403(api: Api) -> None:
    credentials = basic("initechapi", "initech-demo-token")
    for reply in (
        api.get(api_path(DISABLED_TENANT), credentials=credentials),
        api.put(
            api_path(DISABLED_TENANT, "/agU9U8wMrIc4KH6LLZ-5l-4R"),
            {"agent-status": 3},
            credentials=credentials,
        ),
    ):
        assert reply.status == 403
        assert reply.headers["Content-Type"].startswith("application/xml")
        assert reply.text == XML_403
    assert api.agent("agU9U8wMrIc4KH6LLZ-5l-4R", DISABLED_TENANT)["agent-status"] == 4


def test_the_gate_is_switched_through_the_control_plane(api: Api) -> None:
    switched = api.admin("PATCH", f"/__admin/tenants/{DEMO_TENANT}", {"api-enabled": False})
    assert switched.status == 200
    assert switched.json()["api-enabled"] is False
    assert api.get(api_path()).text == XML_403
    api.admin("PATCH", f"/__admin/tenants/{DEMO_TENANT}", {"api-enabled": True})
    assert api.get(api_path()).status == 200


def test_wrong_credentials_on_a_disabled_tenant_are_still_401(api: Api) -> None:
    reply = api.get(api_path(DISABLED_TENANT), credentials=basic("initechapi", "wrong"))
    assert reply.status == 401


def test_token_rotation_refuses_the_old_token_at_once(api: Api) -> None:
    rotated = api.admin("POST", f"/__admin/tenants/{DEMO_TENANT}/token")
    assert rotated.status == 200
    new_token = rotated.json()["token"]
    assert new_token != DEMO_TOKEN
    assert api.get(api_path()).status == 401
    assert api.get(api_path(), credentials=basic(DEMO_USERNAME, new_token)).status == 200
    state = api.admin("GET", f"/__admin/tenants/{DEMO_TENANT}").text
    assert new_token not in state


def test_reset_restores_the_fixture_token(api: Api) -> None:
    api.admin("POST", f"/__admin/tenants/{DEMO_TENANT}/token")
    assert api.admin("POST", "/__admin/reset").status == 200
    assert api.get(api_path()).status == 200
