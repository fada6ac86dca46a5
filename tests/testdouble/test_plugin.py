"""The pytest plugin, run on small test files by pytester: fixture, marker and isolation."""

from __future__ import annotations

import pytest

from mock_server.app import create_app
from mock_server.serving.threaded import start_in_thread

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


OWN_EVENTS = """\
import requests

AGENT = "agAQDqmvKiRbG4ekigNSmbbb"


def test_the_log_holds_only_what_the_test_did(agentstatus_emulator):
    emulator = agentstatus_emulator
    emulator.events.assert_none(within=0)
    assert requests.put(f"{emulator.agents_url}/{AGENT}", json={"agent-status": 5},
                        auth=emulator.auth).status_code == 200
    seen = [(kind, body["agentId"], body["newState"])
            for event in emulator.events.new() for kind, body in event.items()]
    assert seen == [("AgentStatusChange", AGENT, 5)]
"""


def test_a_tests_event_log_starts_empty(pytester: pytest.Pytester) -> None:
    """The tenant is new, so its log is the test's own: no ``AgentCreated`` of its agents
    before the test's first step (failed before: 40 of them, one a status change that a
    ``wait_for`` would have taken for the test's)."""
    pytester.makepyfile(test_events=OWN_EVENTS)
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_a_tests_event_log_starts_empty_on_an_emulator_given_by_url(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_events=OWN_EVENTS)
    with start_in_thread(create_app()) as server:
        result = pytester.runpytest_inprocess(
            "-p", "no:cacheprovider", "--agentstatus-url", server.base_url
        )
    result.assert_outcomes(passed=1)


MANY_TESTS = """\
import tracemalloc

import pytest

SNAPSHOTS = []
OURS = [tracemalloc.Filter(True, "*/mock_server/*")]  # pytest keeps a report of each test too


@pytest.mark.parametrize("n", range(300))
def test_one_of_many(agentstatus_emulator, n):
    if n == 0:
        tracemalloc.start()
    if n in (50, 299):
        SNAPSHOTS.append(tracemalloc.take_snapshot().filter_traces(OURS))


def test_what_the_tests_left_behind():
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in SNAPSHOTS[1].compare_to(SNAPSHOTS[0], "filename"))
    assert grown / 249 < 500, f"{grown / 249:.0f} bytes left behind per test"
"""


def test_a_finished_tests_tenant_leaves_nothing_behind(pytester: pytest.Pytester) -> None:
    """Its agents, journal and events go with it (failed before: 22.7 KB per test stayed,
    the events of its agents' creation and deletion: 227 MB over 10,000 tests)."""
    pytester.makepyfile(test_many=MANY_TESTS)
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=301)
