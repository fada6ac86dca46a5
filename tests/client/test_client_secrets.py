"""The token, and the Authorization header made from it, appear in no log line, repr or error."""

from __future__ import annotations

import base64
import logging
import traceback
from collections.abc import Callable

import pytest
from conftest import DEMO_TENANT, DEMO_TOKEN, DEMO_USERNAME
from support_client import Canned, Recorder, admin, make_client, refused_url, scripted

from client import AgentStatusClient, AgentStatusError, StatusChange, TokenAuth
from mock_server.serving.threaded import RunningServer


def secret_forms(username: str, token: str) -> list[str]:
    encoded = base64.b64encode(f"{username}:{token}".encode()).decode()
    return [token, encoded, f"Basic {encoded}"]


def error_texts(error: AgentStatusError) -> str:
    """Everything an error could show: str, repr, traceback, attributes."""
    return "\n".join(
        [str(error), repr(error), "".join(traceback.format_exception(error)), repr(vars(error))]
    )


def collect_failure(call: Callable[[], object]) -> str:
    with pytest.raises(AgentStatusError) as failed:
        call()
    return error_texts(failed.value)


def test_no_log_line_error_or_repr_shows_the_token(
    live: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = admin(live.base_url, "POST", f"/tenants/{DEMO_TENANT}/token")["token"]
    url = f"{live.base_url}/api/v1"
    shown: list[str] = []
    with make_client(url, token=token) as api:
        shown += [repr(api), str(api), repr(vars(api)), repr(TokenAuth(DEMO_USERNAME, token))]
        api.list_agents()
        api.set_agents_statuses([StatusChange("agAQDqmvKiRbG4ekigNSmbbb", 3)])
        shown.append(collect_failure(lambda: api.get_agent("agNobody")))
        shown.append(collect_failure(lambda: api.set_agent_status("agNobody", 3)))
    with make_client(url, token=token, tenant="globex02") as api:
        shown.append(collect_failure(api.list_agents))
    with make_client(refused_url(), token=token, retry=Recorder().policy()) as api:
        shown.append(collect_failure(api.list_agents))
    with (
        scripted(Canned(503, "down"), Canned(drop=True)) as server,
        make_client(server.api_url, token=token, retry=Recorder().policy()) as api,
    ):
        shown.append(collect_failure(lambda: api.set_agent_status("agA", 1)))
        shown.append(collect_failure(lambda: api.get_agent("agA")))
    assert any("retry" in record.getMessage() for record in caplog.records)
    assert any(record.name.startswith("urllib3") for record in caplog.records)
    everything = caplog.text + "\n".join(shown)
    for secret in secret_forms(DEMO_USERNAME, token):
        assert secret not in everything


def test_a_wrong_token_is_not_echoed_either(live: RunningServer) -> None:
    wrong = "wrong-token-value-123"
    with make_client(f"{live.base_url}/api/v1", token=wrong) as api:
        text = collect_failure(api.list_agents)
    for secret in secret_forms(DEMO_USERNAME, wrong):
        assert secret not in text


def test_the_auth_object_sends_the_header_but_hides_it() -> None:
    auth = TokenAuth(DEMO_USERNAME, DEMO_TOKEN)
    assert repr(auth) == f"TokenAuth(username='{DEMO_USERNAME}', token='***')"
    with (
        scripted(Canned(body={"data": []})) as server,
        AgentStatusClient(
            server.api_url, tenant=DEMO_TENANT, username=DEMO_USERNAME, token=DEMO_TOKEN
        ) as api,
    ):
        api.list_agents()
    assert server.seen[0].headers["Authorization"] == secret_forms(DEMO_USERNAME, DEMO_TOKEN)[2]
