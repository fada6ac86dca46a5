"""The dashboard attacked without a browser: what its API call can reach, bodies the page never
sends, a slow fault, and the admin token's cookie among other sites' cookies and in the logs."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import DEMO_TENANT, api_path
from flask.testing import FlaskClient
from support_serving import serve

from mock_server.app import create_app

BOB = "agAQDqmvKiRbG4ekigNSmbbb"  # 4 WAIT_TRANSACT
SET = f"/__admin/dashboard/tenants/{DEMO_TENANT}/agents/{{agent}}/status"
ADMIN = "hardening-admin-secret"


@pytest.fixture
def client() -> FlaskClient:
    return create_app(validate_responses=True).test_client()


def statuses(client: FlaskClient) -> dict[str, int]:
    agents = client.get(f"/__admin/tenants/{DEMO_TENANT}").get_json()["agents"]
    return {agent["agent-id"]: agent["agent-status"] for agent in agents}


def test_the_agent_bulk_does_not_reach_the_bulk_set(client: FlaskClient) -> None:
    before = statuses(client)
    body = {"agents": [{"agent-id": BOB, "agent-status": 5}], "agent-status": 5}
    answer = client.post(SET.format(agent="bulk"), json=body)
    assert answer.status_code == 404 and "bulk set" in answer.get_json()["detail"]
    assert statuses(client) == before
    assert client.get("/__admin/requests").get_json()["requests"] == []


@pytest.mark.parametrize("agent", ["..", "%2e%2e", "é", "a b"])
def test_odd_agent_ids_stay_in_the_single_set_of_the_tenant(
    client: FlaskClient, agent: str
) -> None:
    answer = client.post(SET.format(agent=agent), json={"agent-status": 5}).get_json()
    assert answer["status"] == 404 and "agent does not exist" in answer["body"]
    [entry] = client.get("/__admin/requests").get_json()["requests"]
    assert entry["method"] == "PUT"
    assert entry["path"].startswith(f"/api/v1/tenants/{DEMO_TENANT}/agentstatus/agents/")


def test_a_deeply_nested_body_is_the_apis_to_judge_not_a_500(client: FlaskClient) -> None:
    deep = "[" * 400 + "]" * 400
    answer = client.post(
        SET.format(agent=BOB),
        data='{"agent-status": 5, "x": ' + deep + "}",
        content_type="application/json",
    )
    assert answer.status_code != 500, answer.get_data(as_text=True)
    assert statuses(client)[BOB] in (4, 5)


@pytest.mark.parametrize(
    "others",
    [
        'prefs={"theme":"dark"}',
        "note=two words",
        "flag",
        "name=caf\u00e9",
        'json="{\\"a\\":1}"; lang=en',
    ],
)
def test_the_admin_cookie_is_found_among_other_sites_cookies(others: str) -> None:
    """Every port of 127.0.0.1 shares one cookie jar: other tools' cookies come along."""
    client = create_app(admin_token=ADMIN).test_client(use_cookies=False)
    cookie = f"{others}; agentstatus-admin={ADMIN}"
    assert client.get("/__admin/dashboard", headers={"Cookie": cookie}).status_code == 200
    wrong = f"{others}; agentstatus-admin=x{ADMIN}"
    assert client.get("/__admin/dashboard", headers={"Cookie": wrong}).status_code == 403


def test_a_token_a_cookie_must_quote_comes_back_whole() -> None:
    token = 'a b;c,"d"\\e\u00e9'
    client = create_app(admin_token=token).test_client()
    moved = client.get("/__admin/dashboard", query_string={"admin-token": token})
    assert moved.status_code == 303
    cookie = moved.headers["Set-Cookie"].split(";")[0]
    assert cookie.startswith('agentstatus-admin="')  # quoted, with escapes
    plain = create_app(admin_token=token).test_client(use_cookies=False)
    for others in ("", "other=1; "):
        page = plain.get("/__admin/dashboard", headers={"Cookie": others + cookie})
        assert page.status_code == 200
    half = plain.get("/__admin/dashboard", headers={"Cookie": "agentstatus-admin=a b"})
    assert half.status_code == 403


def test_over_https_the_cookie_is_secure() -> None:
    client = create_app(admin_token=ADMIN).test_client()
    moved = client.get(f"https://localhost/__admin/dashboard?admin-token={ADMIN}")
    assert "Secure" in moved.headers["Set-Cookie"]
    plain = client.get(f"http://localhost/__admin/dashboard?admin-token={ADMIN}")
    assert "Secure" not in plain.headers["Set-Cookie"]


def timed(method: str, url: str, out: list[Any], **kwargs: Any) -> None:
    started = time.monotonic()
    answer = requests.request(method, url, timeout=30, **kwargs)
    out.append((time.monotonic() - started, answer))


def test_a_slow_fault_holds_the_dashboards_call_not_the_whole_server(tmp_path: Path) -> None:
    """A latency fault on the API: the dashboard's call waits it out as the API's callers do,
    while the same worker answers others (it slept in the server's event loop before)."""
    with serve(tmp_path, "--admin-token", ADMIN) as served:
        headers = {"X-Admin-Token": ADMIN}
        fault = {"match": {"path": api_path(suffix=f"/{BOB}")}, "latency-ms": 1500, "times": 1}
        assert requests.post(
            served.base + "/__admin/faults", json=fault, headers=headers, timeout=10
        ).ok
        slow: list[Any] = []
        caller = threading.Thread(
            target=timed,
            args=("POST", served.base + SET.format(agent=BOB), slow),
            kwargs={"json": {"agent-status": 5}, "headers": headers},
        )
        caller.start()
        time.sleep(0.3)
        quick: list[Any] = []
        timed("GET", served.base + "/__admin/health", quick)
        caller.join()
        [(health_seconds, health)] = quick
        [(slow_seconds, answer)] = slow
        assert health.status_code == 200 and health_seconds < 0.8, health_seconds
        assert slow_seconds >= 1.4 and answer.json()["status"] == 200, answer.text
        assert served.fresh("GET", api_path(suffix=f"/{BOB}")).json()["agent-status"] == 5
        # A drop after the latency: the page is told, the server goes on.
        drop = {"match": {"path": api_path(suffix=f"/{BOB}")}, "action": {"type": "drop"}}
        requests.post(served.base + "/__admin/faults", json=drop, headers=headers, timeout=10)
        dropped = requests.post(
            served.base + SET.format(agent=BOB),
            json={"agent-status": 4},
            headers=headers,
            timeout=10,
        ).json()
        assert dropped["status"] == 0 and "dropped" in dropped["body"]


def test_the_admin_token_is_in_no_log_journal_or_error(tmp_path: Path) -> None:
    with serve(tmp_path, "--admin-token", ADMIN) as served:
        session = requests.Session()
        wrong = session.get(f"{served.base}/__admin/dashboard?admin-token=x{ADMIN}", timeout=10)
        assert wrong.status_code == 403 and ADMIN not in wrong.text
        opened = session.get(f"{served.base}/__admin/dashboard?admin-token={ADMIN}", timeout=10)
        assert opened.status_code == 200 and opened.url == served.base + "/__admin/dashboard"
        answer = session.post(
            served.base + SET.format(agent=BOB),
            json={"agent-status": 5},
            headers={"X-Admin-Token": ADMIN},
            timeout=10,
        )
        assert answer.json()["status"] == 200
        journal = session.get(
            served.base + "/__admin/requests", headers={"X-Admin-Token": ADMIN}, timeout=10
        )
        assert journal.json()["requests"] and ADMIN not in journal.text
        time.sleep(0.2)
    log = served.log.read_text()
    assert "/__admin/dashboard" in log and ADMIN not in log
