"""The pytest plugin, run on small test files by pytester: fixture, marker and isolation."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

FIXTURE_FILE = """\
tenants:
  - tenant-id: tiny
    username: tinyapi
    token: tiny-token
    status-code-lists:
      - {id: 7, items: [{id: 70, short-code: Lunch}]}
    groups: [{id: 1, status-code-lists: [7]}]
    agents:
      - {agent-id: agOne, group-id: 1, agent-status: 4}
      - {agent-id: agTwo, group-id: 1, agent-status: 5}
"""

USES_THE_FIXTURE = """\
import pytest
import requests

AGENT = "agAQDqmvKiRbG4ekigNSmbbb"


def test_handle_reaches_its_own_tenant(agentstatus_emulator):
    emulator = agentstatus_emulator
    assert emulator.base_url.startswith("http://127.0.0.1:")
    assert emulator.api_url == emulator.base_url + "/api/v1"
    assert emulator.tenant != "acmecorp01" and emulator.username == emulator.tenant
    with emulator.session() as session:
        assert session.put(f"{emulator.agents_url}/{AGENT}", json={"agent-status": 3}).ok
        emulator.journal.assert_sent_changes([(AGENT, 3)])
        with pytest.raises(AssertionError, match="it sent"):
            emulator.journal.assert_sent_changes([(AGENT, 5)])


def test_fail_twice_then_succeed(agentstatus_emulator):
    agentstatus_emulator.faults.fail(503, times=2)
    with agentstatus_emulator.session() as session:
        codes = [session.get(agentstatus_emulator.agents_url).status_code for _ in range(3)]
    assert codes == [503, 503, 200]


def test_control_plane_helpers(agentstatus_emulator):
    emulator = agentstatus_emulator
    emulator.put_agent("agNew", 9, group_id=100, name="Nina New")
    assert emulator.agent("agNew")["agent-status"] == 9
    old = emulator.token
    emulator.rotate_token()
    assert requests.get(emulator.agents_url, auth=(emulator.username, old)).status_code == 401
    assert requests.get(emulator.agents_url, auth=emulator.auth).status_code == 200
    emulator.set_api_enabled(False)
    assert requests.get(emulator.agents_url, auth=emulator.auth).status_code == 403
    emulator.faults.fail(500)
    emulator.reset()
    assert emulator.faults.list() == []
    assert emulator.journal.entries() == []
    assert requests.get(emulator.agents_url, auth=emulator.auth).status_code == 200
    assert all(agent["agent-id"] != "agNew" for agent in emulator.state()["agents"])
"""


def test_the_fixture_gives_a_working_handle(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_uses=USES_THE_FIXTURE)
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=3)


MARKED = """\
import pytest
import requests


@pytest.mark.agentstatus(fixture="tenants.yaml", profile="guide")
def test_fixture_file_and_profile(agentstatus_emulator):
    listed = requests.get(agentstatus_emulator.agents_url, auth=agentstatus_emulator.auth)
    assert [agent["agent-id"] for agent in listed.json()["data"]] == ["agOne", "agTwo"]
    bulk = requests.post(f"{agentstatus_emulator.agents_url}/bulk",
                         auth=agentstatus_emulator.auth, json={"agents": []})
    assert bulk.status_code == 405


@pytest.mark.agentstatus(tenant="globex02")
def test_tenant_of_the_demo_set(agentstatus_emulator):
    listed = requests.get(agentstatus_emulator.agents_url, auth=agentstatus_emulator.auth)
    assert len(listed.json()["data"]) == 2


@pytest.mark.agentstatus(fixtures="typo.yaml")
def test_unknown_option(agentstatus_emulator):
    pass
"""


def test_the_marker_chooses_fixture_tenant_and_profile(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", tenants=FIXTURE_FILE)
    pytester.makepyfile(test_marked=MARKED)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["@pytest.mark.agentstatus(fixtures=...): unknown argument*"])


ISOLATION = """\
import pytest
import requests

AGENT = "agAQDqmvKiRbG4ekigNSmbbb"


@pytest.mark.parametrize("target", [1, 3, 5, 3, 5, 1, 3, 5])
def test_each_test_starts_from_the_fixture(agentstatus_emulator, target):
    emulator = agentstatus_emulator
    with emulator.session() as session:
        assert session.get(f"{emulator.agents_url}/{AGENT}").json()["agent-status"] == 4
        emulator.faults.fail(500, method="GET", times=1)
        assert session.put(f"{emulator.agents_url}/{AGENT}",
                           json={"agent-status": target}).status_code == 200
    emulator.journal.assert_sent_changes([(AGENT, target)])
"""


def test_isolation_under_xdist(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workers, eight tests on one agent: each sees the fixture's state and its own journal.

    Only the plugins this needs are loaded, so the two workers start quickly.
    """
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_isolated=ISOLATION)
    result = pytester.runpytest_subprocess(
        "-p",
        "xdist",
        "-p",
        "mock_server.harness.pytest_plugin",
        "-n",
        "2",
        "-p",
        "no:cacheprovider",
        "-v",
    )
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(["*[[]gw0[]]*PASSED*"])
    result.stdout.fnmatch_lines(["*[[]gw1[]]*PASSED*"])


IN_PROCESS = """\
import base64
import json
import socket
import urllib.request

import pytest
import requests
from requests.adapters import HTTPAdapter

SEEN = []


def test_requests_in_process_other_clients_on_the_socket(agentstatus_emulator, monkeypatch):
    emulator = agentstatus_emulator
    SEEN.append(emulator.agents_url)
    basic = base64.b64encode(f"{emulator.username}:{emulator.token}".encode()).decode()
    asked = urllib.request.Request(emulator.agents_url, headers={"Authorization": f"Basic {basic}"})
    with urllib.request.urlopen(asked, timeout=5) as answer:
        assert answer.status == 200 and json.load(answer)["data"]

    def refuse(*args, **kwargs):
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    assert requests.get(emulator.agents_url, auth=emulator.auth, timeout=5).status_code == 200
    emulator.faults.drop(times=1)
    with pytest.raises(requests.ConnectionError):
        requests.get(emulator.agents_url, auth=emulator.auth, timeout=5)
    outcomes = [entry["outcome"] for entry in emulator.journal.entries()]
    assert outcomes == ["answered", "answered", "dropped"]


def test_after_the_test_requests_go_to_the_socket_again():
    assert isinstance(requests.Session().get_adapter(SEEN[0]), HTTPAdapter)


def test_a_test_may_delete_its_own_tenant(agentstatus_emulator):
    agentstatus_emulator.control.call("DELETE", f"/tenants/{agentstatus_emulator.tenant}")


@pytest.mark.agentstatus(fixture="tenants.yaml")
def test_a_fixture_file_changed_between_tests_is_read_again(agentstatus_emulator, request):
    assert [agent["agent-id"] for agent in agentstatus_emulator.state()["agents"]][0] == "agOne"
    fixture = request.path.parent / "tenants.yaml"
    fixture.write_text(fixture.read_text().replace("agOne", "agUno"))


@pytest.mark.agentstatus(fixture="tenants.yaml")
def test_it_is_the_changed_file(agentstatus_emulator):
    assert [agent["agent-id"] for agent in agentstatus_emulator.state()["agents"]][0] == "agUno"
"""


def test_requests_are_served_in_process_and_the_server_still_answers(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".yaml", tenants=FIXTURE_FILE)
    pytester.makepyfile(test_in_process=IN_PROCESS)
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=5)


@pytest.mark.agentstatus(tenant="globex02")
def test_after_an_inner_session_the_fixture_is_still_this_tests(
    pytester: pytest.Pytester, request: pytest.FixtureRequest
) -> None:
    """pytester runs a session inside this test: the fixture, asked for afterwards, still
    reads this test's marker and this session's emulator."""
    pytester.makepyfile(test_inner="def test_inner(agentstatus_emulator):\n    pass\n")
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    emulator = request.getfixturevalue("agentstatus_emulator")
    assert emulator.state()["username"] == emulator.tenant
    assert len(emulator.state()["agents"]) == 2
