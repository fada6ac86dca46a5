"""Building a client: base URL, platform name (the vendor's server list), the environment."""

from __future__ import annotations

import pytest
import requests
from conftest import DEMO_TENANT, DEMO_TOKEN, DEMO_USERNAME, basic
from support_client import Canned, make_client, scripted

from client import AgentStatusClient, ConfigurationError, platform_url, platforms
from mock_server.serving.threaded import RunningServer
from schemas import load_schema

ENV = {
    "AGENTSTATUS_BASE_URL": "https://vcc-na12.8x8.com/api/v1/",
    "AGENTSTATUS_TENANT": DEMO_TENANT,
    "AGENTSTATUS_USERNAME": DEMO_USERNAME,
    "AGENTSTATUS_TOKEN": DEMO_TOKEN,
}


def test_the_vendors_43_platforms() -> None:
    table = platforms()
    assert len(table) == 43
    assert table["NA12"] == "https://vcc-na12.8x8.com/api/v1"
    assert table["BC2"] == "https://odcc2.bell.ca/api/v1"
    assert all(url.startswith("https://") and url.endswith("/api/v1") for url in table.values())


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("na12", "https://vcc-na12.8x8.com/api/v1"),
        ("EU7", "https://vcc-eu7.8x8.com/api/v1"),
        ("Bc2", "https://odcc2.bell.ca/api/v1"),
    ],
)
def test_a_platform_name_is_case_insensitive(name: str, url: str) -> None:
    assert platform_url(name) == url
    with AgentStatusClient(
        platform=name, tenant=DEMO_TENANT, username=DEMO_USERNAME, token=DEMO_TOKEN
    ) as api:
        assert api.base_url == url


def test_an_unknown_platform_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="NA12"):
        platform_url("mars1")


def test_a_trailing_slash_is_tolerated(live: RunningServer) -> None:
    with make_client(f"{live.base_url}/api/v1/") as api:
        assert api.base_url == f"{live.base_url}/api/v1"
        assert len(api.list_agents()) == 20


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"base_url": "https://x/api/v1", "platform": "na12"},
        {"base_url": "ftp://x/api/v1"},
        {"base_url": "https://x/api/v1", "token": ""},
        {"base_url": "https://x/api/v1", "bulk_chunk_size": 0},
    ],
    ids=["no-address", "both", "scheme", "empty-token", "chunk"],
)
def test_bad_settings_are_configuration_errors(options: dict[str, object]) -> None:
    settings: dict[str, object] = {
        "tenant": DEMO_TENANT,
        "username": DEMO_USERNAME,
        "token": DEMO_TOKEN,
        **options,
    }
    with pytest.raises(ConfigurationError):
        AgentStatusClient(**settings)  # type: ignore[arg-type]


def test_from_env() -> None:
    with AgentStatusClient.from_env(ENV) as api:
        assert (api.base_url, api.tenant, api.username) == (
            "https://vcc-na12.8x8.com/api/v1",
            DEMO_TENANT,
            DEMO_USERNAME,
        )


def test_from_env_with_a_platform() -> None:
    env = {**ENV, "AGENTSTATUS_PLATFORM": "eu7"}
    del env["AGENTSTATUS_BASE_URL"]
    with AgentStatusClient.from_env(env, bulk_method="PUT") as api:
        assert api.base_url == "https://vcc-eu7.8x8.com/api/v1"
        assert api.bulk_method == "PUT"


@pytest.mark.parametrize(
    "missing",
    ["AGENTSTATUS_BASE_URL", "AGENTSTATUS_TENANT", "AGENTSTATUS_USERNAME", "AGENTSTATUS_TOKEN"],
)
def test_from_env_names_the_missing_variable(missing: str) -> None:
    env = {name: value for name, value in ENV.items() if name != missing}
    with pytest.raises(ConfigurationError, match=missing):
        AgentStatusClient.from_env(env)


def test_an_injected_session_is_used_but_left_as_it_was() -> None:
    """The caller's auth, headers and adapters stay theirs; the client adds its own per call."""
    session = requests.Session()
    session.auth = ("caller", "caller-secret")
    session.headers.update({"X-Caller": "yes", "Accept": "text/csv"})
    adapter = requests.adapters.HTTPAdapter(max_retries=0)
    session.mount("http://", adapter)
    before = (session.auth, dict(session.headers), dict(session.adapters))
    with (
        scripted(Canned(body={"data": []})) as server,
        make_client(server.api_url, session=session) as api,
    ):
        api.list_agents()
    assert (session.auth, dict(session.headers), dict(session.adapters)) == before
    sent = server.seen[0].headers
    assert sent["Authorization"] == basic(DEMO_USERNAME, DEMO_TOKEN)["Authorization"]
    assert (sent["Accept"], sent["X-Caller"]) == ("application/json", "yes")
    assert sent["User-Agent"].startswith("agentstatus-twin-client/")
    session.close()


def test_bulk_chunks_are_the_contracts_max_items_by_default() -> None:
    limit = load_schema("bulk-request.schema.json")["properties"]["agents"]["maxItems"]
    with make_client("https://vcc-na12.8x8.com/api/v1") as api:
        assert api.bulk_chunk_size == limit
