"""The dashboard's routes without a browser: the page and its files, the token's way in, and the
status change sent through the public API with the tenant's credentials."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import DEMO_TENANT, DEMO_TOKEN, api_path
from flask.testing import FlaskClient

from mock_server.app import create_app
from schemas.wire import FORBIDDEN_XML

BOB = "agAQDqmvKiRbG4ekigNSmbbb"  # 4 WAIT_TRANSACT
RITA = "agRv3Dr0501kiKmeknUt_tiy"  # 6 TRANSACT_OFFERED
SET = f"/__admin/dashboard/tenants/{DEMO_TENANT}/agents/{{agent}}/status"
ADMIN = "routes-admin-secret"


@pytest.fixture
def client() -> FlaskClient:
    return create_app(validate_responses=True).test_client()


def settings_of(page: str) -> dict[str, Any]:
    start = page.index('id="settings">') + len('id="settings">')
    found: dict[str, Any] = json.loads(page[start : page.index("</script>", start)])
    return found


def test_the_page_names_every_status_from_the_rules_and_allows_only_its_own_script(
    client: FlaskClient,
) -> None:
    page = client.get("/__admin/dashboard")
    assert page.status_code == 200 and page.mimetype == "text/html"
    settings = settings_of(page.get_data(as_text=True))
    assert settings["statuses"]["4"] == "WAIT_TRANSACT" and len(settings["statuses"]) == 12
    assert settings["adminToken"] is None
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    for name, media_type in [("app.js", "text/javascript"), ("style.css", "text/css")]:
        asset = client.get(f"/__admin/dashboard/assets/{name}")
        assert (asset.status_code, asset.mimetype) == (200, media_type)


def test_an_unknown_file_is_a_problem_404(client: FlaskClient) -> None:
    answer = client.get("/__admin/dashboard/assets/../app.py")
    assert answer.status_code == 404 and answer.mimetype == "application/problem+json"
    answer = client.get("/__admin/dashboard/assets/index.html")
    assert answer.status_code == 404 and "app.js, style.css" in answer.get_json()["detail"]


def test_a_change_goes_through_the_api_and_comes_back_as_the_api_answered(
    client: FlaskClient,
) -> None:
    applied = client.post(SET.format(agent=BOB), json={"agent-status": 5}).get_json()
    assert applied["status"] == 200 and applied["content-type"] == "application/json"
    refused = client.post(SET.format(agent=RITA), json={"agent-status": 3}).get_json()
    assert refused["status"] == 400
    assert "6 TRANSACT_OFFERED -> 3 ON_BREAK" in json.loads(refused["body"])["detail"]
    journal = client.get("/__admin/requests?method=PUT").get_json()["requests"]
    assert [entry["status"] for entry in journal] == [200, 400]
    assert all(DEMO_TOKEN not in json.dumps(entry) for entry in journal)
    client.patch(f"/__admin/tenants/{DEMO_TENANT}", json={"api-enabled": False})
    gated = client.post(SET.format(agent=BOB), json={"agent-status": 4}).get_json()
    assert (gated["status"], gated["body"]) == (403, FORBIDDEN_XML)


def test_a_dropped_connection_is_status_0(client: FlaskClient) -> None:
    fault = {"match": {"path": api_path(suffix=f"/{BOB}")}, "action": {"type": "drop"}}
    assert client.post("/__admin/faults", json=fault).status_code == 201
    dropped = client.post(SET.format(agent=BOB), json={"agent-status": 5}).get_json()
    assert dropped["status"] == 0 and "dropped" in dropped["body"]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        (SET.format(agent=BOB), [1], 400),
        (SET.format(agent=BOB), "5", 400),
        ("/__admin/dashboard/tenants/nosuch/agents/x/status", {"agent-status": 5}, 404),
    ],
)
def test_a_bad_call_is_a_problem_and_changes_nothing(
    client: FlaskClient, path: str, body: Any, status: int
) -> None:
    answer = client.post(path, json=body)
    assert answer.status_code == status and answer.mimetype == "application/problem+json"
    assert client.get("/__admin/requests").get_json()["requests"] == []


def test_with_an_admin_token_the_query_becomes_a_cookie_for_the_page_alone() -> None:
    client = create_app(admin_token=ADMIN, validate_responses=True).test_client()
    assert client.get("/__admin/dashboard").status_code == 403
    assert client.get(f"/__admin/dashboard?admin-token=wrong{ADMIN}").status_code == 403
    moved = client.get(f"/__admin/dashboard?admin-token={ADMIN}")
    assert (moved.status_code, moved.headers["Location"]) == (303, "/__admin/dashboard")
    cookie = moved.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/__admin" in cookie
    page = client.get("/__admin/dashboard")  # the cookie, kept by the client
    assert page.status_code == 200
    assert settings_of(page.get_data(as_text=True))["adminToken"] == ADMIN
    assert client.get("/__admin/dashboard/assets/app.js").status_code == 200
    # Anything else needs the header: the cookie alone (another site's form) changes nothing.
    assert client.post("/__admin/reset").status_code == 403
    assert client.post(SET.format(agent=BOB), json={"agent-status": 5}).status_code == 403
    assert client.get(f"/__admin/tenants/{DEMO_TENANT}").status_code == 403
    headed = client.post(
        SET.format(agent=BOB), json={"agent-status": 5}, headers={"X-Admin-Token": ADMIN}
    )
    assert headed.get_json()["status"] == 200
