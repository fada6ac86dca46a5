"""Every failure arrives as its own error type, carrying what the server said."""

from __future__ import annotations

import inspect
import pickle
import re
from types import MappingProxyType
from typing import Any

import pytest
from conftest import DEMO_TENANT, DISABLED_TENANT, OTHER_TENANT
from support_client import Canned, admin, make_client, refused_url, scripted

from client import (
    NO_RETRY,
    AgentNotFoundError,
    AgentStatusError,
    ApiNotEnabledError,
    AuthenticationError,
    BulkResult,
    ChangeOutcome,
    ChangeRejectedError,
    ForbiddenError,
    RateLimitedError,
    ServerError,
    StatusChange,
    StatusCode,
    TenantForbiddenError,
    TransportError,
    UnexpectedResponseError,
    errors,
)
from mock_server.serving.threaded import RunningServer

REQUEST_ID = re.compile(r"[0-9a-f]{32}")
BOB = "agAQDqmvKiRbG4ekigNSmbbb"


def api_url(live: RunningServer) -> str:
    return f"{live.base_url}/api/v1"


def test_wrong_token_is_an_authentication_error(live: RunningServer) -> None:
    with (
        make_client(api_url(live), token="not-the-token") as api,
        pytest.raises(AuthenticationError) as failed,
    ):
        api.list_agents()
    error = failed.value
    assert error.status == 401
    assert error.request_id is not None and REQUEST_ID.fullmatch(error.request_id)
    assert error.problem is not None and error.problem["status"] == 401
    assert error.detail == "Unknown username or wrong action token."
    assert error.request_id in str(error)


def test_a_rotated_token_voids_the_old_one(live: RunningServer) -> None:
    new_token = admin(live.base_url, "POST", f"/tenants/{DEMO_TENANT}/token")["token"]
    with make_client(api_url(live)) as old, pytest.raises(AuthenticationError):
        old.get_agent(BOB)
    with make_client(api_url(live), token=new_token) as new:
        assert new.get_agent(BOB).agent_id == BOB


def test_api_not_enabled_is_the_xml_403(live: RunningServer) -> None:
    admin(live.base_url, "PATCH", f"/tenants/{DEMO_TENANT}", {"api-enabled": False})
    with make_client(api_url(live)) as api, pytest.raises(ApiNotEnabledError) as failed:
        api.list_agents()
    error = failed.value
    assert isinstance(error, ForbiddenError)
    assert error.status == 403
    assert error.body == "<API><Error>403 - Forbidden.</Error></API>"
    assert error.problem is None
    assert "ask 8x8 support" in str(error)


def test_the_built_in_disabled_tenant_answers_the_xml_403(live: RunningServer) -> None:
    with (
        make_client(
            api_url(live), tenant=DISABLED_TENANT, username="initechapi", token="initech-demo-token"
        ) as api,
        pytest.raises(ApiNotEnabledError),
    ):
        api.get_agent("agU9U8wMrIc4KH6LLZ-5l-4R")


def test_another_tenants_path_is_tenant_forbidden(live: RunningServer) -> None:
    with (
        make_client(api_url(live), tenant=OTHER_TENANT) as api,
        pytest.raises(TenantForbiddenError) as failed,
    ):
        api.list_agents()
    assert failed.value.status == 403
    assert failed.value.detail == "You are not authorized to access this tenant."


def test_unknown_agent_is_agent_not_found(live: RunningServer) -> None:
    with make_client(api_url(live)) as api:
        with pytest.raises(AgentNotFoundError) as read:
            api.get_agent("agNobody")
        with pytest.raises(AgentNotFoundError) as written:
            api.set_agent_status("agNobody", 3)
    assert (read.value.agent_id, read.value.status) == ("agNobody", 404)
    assert written.value.detail == "The agent does not exist: 'agNobody'."


def test_an_invalid_status_code_is_a_change_rejected(live: RunningServer) -> None:
    with make_client(api_url(live)) as api, pytest.raises(ChangeRejectedError) as refused:
        api.set_agents_statuses([StatusChange(BOB, 9)])
    assert refused.value.status == 400
    assert "cannot be set through the API" in refused.value.reason


def test_connection_refused_is_a_transport_error() -> None:
    with (
        make_client(refused_url(), retry=NO_RETRY) as api,
        pytest.raises(TransportError) as failed,
    ):
        api.list_agents()
    assert failed.value.status is None
    assert failed.value.sent is False
    assert "refused" in str(failed.value).lower()


def test_429_carries_retry_after() -> None:
    reply = Canned(429, {"status": 429, "detail": "slow down"}, {"Retry-After": "17"})
    with (
        scripted(reply) as server,
        make_client(server.api_url, retry=NO_RETRY) as api,
        pytest.raises(RateLimitedError) as failed,
    ):
        api.list_agents()
    assert failed.value.retry_after == 17.0
    assert failed.value.detail == "slow down"


def test_5xx_is_a_server_error_with_the_body_text() -> None:
    reply = Canned(502, "<html>bad gateway</html>", {"X-Request-Id": "gw-1"})
    with (
        scripted(reply) as server,
        make_client(server.api_url, retry=NO_RETRY) as api,
        pytest.raises(ServerError) as failed,
    ):
        api.get_agent(BOB)
    error = failed.value
    assert (error.status, error.body, error.request_id) == (502, "<html>bad gateway</html>", "gw-1")
    assert "502 Bad Gateway: <html>bad gateway</html>" in str(error)


@pytest.mark.parametrize(
    "reply",
    [
        Canned(200, "not json"),
        Canned(200, ["a", "list"]),
        Canned(302, None, {"Location": "https://elsewhere.example/"}),
        Canned(415, {"status": 415, "detail": "json please"}),
    ],
    ids=["not-json", "not-an-object", "redirect", "415"],
)
def test_off_contract_answers_are_unexpected_responses(reply: Canned) -> None:
    with (
        scripted(reply) as server,
        make_client(server.api_url, retry=NO_RETRY) as api,
        pytest.raises(UnexpectedResponseError) as failed,
    ):
        api.list_agents()
    assert failed.value.status == reply.status
    assert len(server.seen) == 1


def error_classes() -> list[type[AgentStatusError]]:
    """Every exception class ``client.errors`` defines: a new one is covered by itself."""
    found = [
        value
        for value in vars(errors).values()
        if isinstance(value, type)
        and issubclass(value, BaseException)
        and value.__module__ == errors.__name__
    ]
    assert all(issubclass(kind, AgentStatusError) for kind in found)
    return found


SAMPLE_ARGUMENTS: dict[str, Any] = {
    "message": "404 Not Found: The agent does not exist",
    "status": 404,
    "body": '{"status": 404}',
    "request_id": "0123456789abcdef0123456789abcdef",
    "problem": {"status": 404, "detail": "The agent does not exist"},
    "method": "PUT",
    "url": "https://vcc-na12.8x8.com/api/v1/tenants/t/agentstatus/agents/agX",
    "attempts": 3,
    "partial": BulkResult(
        (
            ChangeOutcome(
                "agA",
                200,
                "OK",
                change=StatusChange("agA", 3, StatusCode(801, 1725, "Lunch")),
                extra=MappingProxyType({"trace": "x1"}),
            ),
        )
    ),
    "agent_id": "agX",
    "retry_after": 2.5,
    "sent": True,
}
"""A value for each constructor argument an error takes, by name."""


def constructor_arguments(kind: type[AgentStatusError]) -> dict[str, Any]:
    """Every argument the class takes, following ``**`` on to the base class's."""
    arguments: dict[str, Any] = {}
    for cls in kind.__mro__:
        if "__init__" not in vars(cls):
            continue
        parameters = list(inspect.signature(vars(cls)["__init__"]).parameters.values())[1:]
        for parameter in parameters:
            if parameter.kind is not parameter.VAR_KEYWORD:
                arguments[parameter.name] = SAMPLE_ARGUMENTS[parameter.name]
        if not any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters):
            return arguments
    raise AssertionError(f"{kind.__name__} passes ** to no constructor that names them")


@pytest.mark.parametrize("kind", error_classes(), ids=lambda kind: kind.__name__)
def test_every_error_survives_a_pickle_round_trip(kind: type[AgentStatusError]) -> None:
    """Errors cross process boundaries (pytest-xdist, multiprocessing) whole."""
    error = kind(**constructor_arguments(kind))
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is kind
    assert vars(copy) == vars(error)
    assert (str(copy), repr(copy), copy.args) == (str(error), repr(error), error.args)


def test_errors_met_on_the_wire_survive_a_pickle_round_trip() -> None:
    with make_client(refused_url(), retry=NO_RETRY) as api, pytest.raises(TransportError) as lost:
        api.list_agents()
    reply = Canned(429, {"status": 429, "detail": "slow down"}, {"Retry-After": "17"})
    with (
        scripted(reply) as server,
        make_client(server.api_url, retry=NO_RETRY) as api,
        pytest.raises(RateLimitedError) as limited,
    ):
        api.list_agents()
    for error in (lost.value, limited.value):
        assert vars(pickle.loads(pickle.dumps(error))) == vars(error)
