"""Fixture files (JSON and YAML, refused with the offending path) and the control plane."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DEMO_TENANT, Api, api_path, basic, flask_api

from mock_server import create_app
from mock_server.core.fixtures import FixtureError, load_fixture
from schemas import project_version

SMALL: dict[str, Any] = {
    "tenants": [
        {
            "tenant-id": "tiny01",
            "username": "tinyuser",
            "token": "tiny-token",
            "status-code-lists": [{"id": 5, "items": [{"id": 51, "short-code": "Lunch"}]}],
            "groups": [{"id": 1, "status-code-lists": [5]}],
            "agents": [{"agent-id": "agTiny", "group-id": 1, "agent-status": 4}],
        }
    ]
}


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_fixture_file_loads_in_either_format(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"tenants{suffix}"
    path.write_text(json.dumps(SMALL) if suffix == ".json" else yaml.safe_dump(SMALL))
    api = flask_api(create_app(path).test_client())
    reply = api.get(api_path("tiny01"), credentials=basic("tinyuser", "tiny-token"))
    assert reply.json() == {"data": [{"agent-id": "agTiny", "agent-status": 4}]}


def broken(change: str) -> dict[str, Any]:
    document = json.loads(json.dumps(SMALL))
    tenant = document["tenants"][0]
    if change == "status out of range":
        tenant["agents"][0]["agent-status"] = 12
    elif change == "unknown group":
        tenant["agents"][0]["group-id"] = 9
    elif change == "list not assigned":
        tenant["agents"][0].update({"status-code-list-id": 6, "status-code-item-id": 51})
    elif change == "wrong short code":
        tenant["agents"][0].update(
            {
                "status-code-list-id": 5,
                "status-code-item-id": 51,
                "status-code-item-short-code": "X",
            }
        )
    elif change == "duplicate agent":
        tenant["agents"].append(dict(tenant["agents"][0]))
    elif change == "unknown field":
        tenant["agents"][0]["colour"] = "blue"
    elif change == "group names a missing list":
        tenant["groups"][0]["status-code-lists"] = [5, 7]
    elif change == "missing token":
        del tenant["token"]
    return document


BROKEN = {
    "status out of range": "$.tenants[0].agents[0].agent-status: 12 is greater than the maximum",
    "unknown group": "$.tenants[0].agents[0].group-id: group 9 is not defined in this tenant.",
    "list not assigned": "$.tenants[0].agents[0].status-code-list-id: list 6 is not assigned",
    "wrong short code": "$.tenants[0].agents[0].status-code-item-short-code: 'X' is not the",
    "duplicate agent": "$.tenants[0].agents[1].agent-id: 'agTiny' is defined twice.",
    "unknown field": "$.tenants[0].agents[0]: Additional properties are not allowed ('colour'",
    "group names a missing list": "$.tenants[0].groups[0].status-code-lists[1]: status-code list 7",
    "missing token": "$.tenants[0]: 'token' is a required property",
}


@pytest.mark.parametrize(("change", "expected"), BROKEN.items(), ids=BROKEN.keys())
def test_a_bad_fixture_is_refused_naming_the_path(
    tmp_path: Path, change: str, expected: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(broken(change)))
    with pytest.raises(FixtureError) as refused:
        load_fixture(path)
    assert refused.value.detail.startswith(f"{path}: {expected}")


def test_unparseable_and_missing_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("tenants: [\n")
    with pytest.raises(FixtureError, match="not valid YAML"):
        load_fixture(path)
    with pytest.raises(FixtureError, match="cannot be read"):
        load_fixture(tmp_path / "absent.yaml")


def test_admin_put_agent_creates_any_status_and_replaces(api: Api) -> None:
    path = f"/__admin/tenants/{DEMO_TENANT}/agents/agNew"
    created = api.admin("PUT", path, {"agent-status": 7, "group-id": 200, "name": "New One"})
    assert created.status == 201
    assert created.json() == {
        "agent-id": "agNew",
        "agent-status": 7,
        "name": "New One",
        "group-id": 200,
    }
    assert api.get(api_path(suffix="/agNew")).json() == {
        "agent-id": "agNew",
        "agent-status": 7,
        "name": "New One",
    }
    replaced = api.admin("PUT", path, {"agent-status": 9, "group-id": 200})
    assert replaced.status == 200
    assert api.get(api_path(suffix="/agNew")).json() == {"agent-id": "agNew", "agent-status": 9}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"agent-status": 4}, "$: 'group-id' is a required property"),
        ({"agent-status": 4, "group-id": 9}, "$.group-id: group 9 is not defined"),
        ({"agent-status": 12, "group-id": 100}, "$.agent-status: 12 is greater than the maximum"),
        ({"agent-id": "other", "agent-status": 4, "group-id": 100}, "does not match 'agNew'"),
        ([1], "must be a JSON object"),
    ],
)
def test_admin_put_agent_refuses_bad_bodies(api: Api, body: object, expected: str) -> None:
    reply = api.admin("PUT", f"/__admin/tenants/{DEMO_TENANT}/agents/agNew", body)
    assert reply.status == 400
    assert expected in reply.json()["detail"]
    assert api.get(api_path(suffix="/agNew")).status == 404


def test_admin_tenant_state_has_everything_but_the_token(api: Api) -> None:
    state = api.tenant_state()
    assert state["tenant-id"] == DEMO_TENANT
    assert state["username"] == "myclientId"
    assert "token" not in state
    assert [g["id"] for g in state["groups"]] == [100, 200, 300, 400]
    assert len(state["agents"]) == 20
    assert "nevertellanyone" not in json.dumps(state)


def test_reset_returns_to_the_fixture(api: Api) -> None:
    before = api.tenant_state()
    api.put(api_path(suffix="/agAQDqmvKiRbG4ekigNSmbbb"), {"agent-status": 1})
    api.admin(
        "PUT",
        f"/__admin/tenants/{DEMO_TENANT}/agents/agExtra",
        {"agent-status": 4, "group-id": 100},
    )
    assert api.admin("POST", "/__admin/reset").status == 200
    assert api.tenant_state() == before


def test_tenant_scoped_reset_leaves_other_tenants_alone(api: Api) -> None:
    api.put(api_path(suffix="/agAQDqmvKiRbG4ekigNSmbbb"), {"agent-status": 1})
    globex = basic("globexapi", "globex-demo-token")
    api.put(
        api_path("globex02", "/agYr_8pLYeeVLSWdsbkx5q2n"), {"agent-status": 5}, credentials=globex
    )
    assert api.admin("POST", "/__admin/tenants/globex02/reset").status == 200
    assert api.agent("agYr_8pLYeeVLSWdsbkx5q2n", "globex02")["agent-status"] == 4
    assert api.agent("agAQDqmvKiRbG4ekigNSmbbb")["agent-status"] == 1


def test_admin_creates_and_deletes_tenants(api: Api) -> None:
    tenant = dict(SMALL["tenants"][0], **{"tenant-id": "fresh01", "username": "freshuser"})
    assert api.admin("PUT", "/__admin/tenants/fresh01", tenant).status == 201
    assert api.get(api_path("fresh01"), credentials=basic("freshuser", "tiny-token")).status == 200
    assert "fresh01" in api.admin("GET", "/__admin/tenants").json()["tenants"]
    assert api.admin("DELETE", "/__admin/tenants/fresh01").status == 204
    assert api.admin("GET", "/__admin/tenants/fresh01").status == 404


@pytest.mark.parametrize("body", [{"api-enabled": "no"}, {"enabled": False}, {}, [True]])
def test_admin_patch_tenant_refuses_anything_but_the_flag(api: Api, body: object) -> None:
    reply = api.admin("PATCH", f"/__admin/tenants/{DEMO_TENANT}", body)
    assert reply.status == 400
    assert "api-enabled" in reply.json()["detail"]


def test_admin_unknown_tenant_is_404(api: Api) -> None:
    reply = api.admin("POST", "/__admin/tenants/nobody/token")
    assert reply.status == 404
    assert reply.json()["detail"] == "The tenant does not exist: 'nobody'."


def test_admin_token_guards_the_control_plane() -> None:
    client = create_app(admin_token="s3cret").test_client()
    assert client.post("/__admin/reset").status_code == 403
    assert client.post("/__admin/reset", headers={"X-Admin-Token": "wrong"}).status_code == 403
    assert client.post("/__admin/reset", headers={"X-Admin-Token": "s3cret"}).status_code == 200


def test_health_answers_without_the_admin_token_and_names_the_version() -> None:
    client = create_app(admin_token="s3cret", validate_responses=True).test_client()
    health = client.get("/__admin/health")
    assert health.status_code == 200
    demo_tenants = len(load_fixture(None)["tenants"])
    assert health.json == {
        "status": "ok",
        "version": project_version(),
        "tenants": demo_tenants,
        "workers": {"ready": 1, "expected": 1},
    }
    assert client.get("/__admin/faults").status_code == 403
    assert client.get("/__admin/tenants/" + DEMO_TENANT).status_code == 403
