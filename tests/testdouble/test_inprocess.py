"""In-process mode: requests to the vendor's hosts reach the emulator with no socket."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter

from mock_server.app import create_app
from mock_server.harness.inprocess import WSGIAdapter, emulate, emulated

AGENT = "agAQDqmvKiRbG4ekigNSmbbb"
VENDOR_AGENTS = "https://vcc-na12.8x8.com/api/v1/tenants/acmecorp01/agentstatus/agents"
DEMO_AUTH = ("myclientId", "nevertellanyone")


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any attempt to open a connection fails the test: in-process means no network."""

    def refuse(*args: object, **kwargs: object) -> socket.socket:
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield


@pytest.mark.usefixtures("no_sockets")
def test_vendor_urls_reach_the_emulator_without_a_socket() -> None:
    with emulate() as emulator:
        got = requests.get(f"{VENDOR_AGENTS}/{AGENT}", auth=DEMO_AUTH, timeout=5)
        assert (got.status_code, got.json()["agent-status"]) == (200, 4)
        assert got.headers["content-type"] == "application/json"
        bell = "http://odcc2.bell.ca/api/v1/tenants/acmecorp01/agentstatus/agents"
        put = requests.put(f"{bell}/{AGENT}", auth=DEMO_AUTH, json={"agent-status": 3}, timeout=5)
        assert put.json()["reason"] == "OK"
        assert emulator.agent(AGENT)["agent-status"] == 3
        emulator.journal.assert_sent_changes([(AGENT, 3)])


@pytest.mark.usefixtures("no_sockets")
def test_query_strings_and_bulk_bodies_pass_through() -> None:
    with emulate() as emulator, emulator.session() as session:
        listed = session.get(emulator.agents_url, params={"groupId": "300"}).json()["data"]
        assert {agent["agent-id"] for agent in listed} == {
            "agBacU3lzDPXzaLLkPZCLk1V",
            "agi-I1oJLJIJ0FUFF6FDzV-n",
            "agoXkv2frcyHlm76KlqTiOek",
        }
        body = {"agents": [{"agent-id": AGENT, "agent-status": 5}]}
        reply = session.post(f"{emulator.agents_url}/bulk", json=body)
        assert reply.status_code == 207
        assert reply.json()["data"][0]["change-status"] == 200


def test_other_hosts_are_untouched_and_the_patch_is_removed_on_exit() -> None:
    session = requests.Session()
    with emulate():
        assert isinstance(session.get_adapter(VENDOR_AGENTS), WSGIAdapter)
        assert isinstance(session.get_adapter("https://example.com/x"), HTTPAdapter)
        assert isinstance(session.get_adapter("https://8x8.com.evil.example/"), HTTPAdapter)
    assert isinstance(session.get_adapter(VENDOR_AGENTS), HTTPAdapter)


def test_nested_emulators_route_to_the_innermost() -> None:
    with emulate() as outer:
        with emulate(profile="guide") as inner:
            response = requests.post(f"{inner.agents_url}/bulk", auth=DEMO_AUTH, json={})
            assert response.status_code == 405
        response = requests.post(f"{outer.agents_url}/bulk", auth=DEMO_AUTH, json={"agents": []})
        assert response.status_code == 207


@pytest.mark.usefixtures("no_sockets")
def test_drop_and_latency_surface_as_requests_exceptions() -> None:
    with emulate() as emulator:
        emulator.faults.drop(times=1)
        with pytest.raises(requests.ConnectionError):
            requests.get(VENDOR_AGENTS, auth=DEMO_AUTH, timeout=5)
        emulator.faults.delay(5_000, times=1)
        with pytest.raises(requests.ReadTimeout):
            requests.get(VENDOR_AGENTS, auth=DEMO_AUTH, timeout=(1, 0.05))
        assert requests.get(VENDOR_AGENTS, auth=DEMO_AUTH, timeout=5).status_code == 200
        outcomes = [entry["outcome"] for entry in emulator.journal.entries()]
        assert outcomes == ["dropped", "timed-out", "answered"]


def test_a_call_fails_twice_then_succeeds_in_process() -> None:
    with emulate() as emulator:
        emulator.faults.fail(503, times=2, method="GET")
        codes = [requests.get(VENDOR_AGENTS, auth=DEMO_AUTH).status_code for _ in range(3)]
        assert codes == [503, 503, 200]
        [fault] = emulator.faults.list()
        assert (fault["hits"], fault["active"]) == (2, False)


def put_on_break() -> int:
    response = requests.put(f"{VENDOR_AGENTS}/{AGENT}", auth=DEMO_AUTH, json={"agent-status": 3})
    return response.status_code


@emulated
def set_then_read() -> int:
    put_on_break()
    response = requests.get(f"{VENDOR_AGENTS}/{AGENT}", auth=DEMO_AUTH)
    status: int = response.json()["agent-status"]
    return status


def test_the_decorator_starts_each_call_from_the_fixture() -> None:
    assert emulated(put_on_break)() == 200
    assert set_then_read() == 3
    assert emulated(profile="guide")(put_on_break)() == 400


def test_a_fixture_file_and_tenant_can_be_chosen(tmp_path: Path) -> None:
    fixture = tmp_path / "mine.yaml"
    fixture.write_text(
        "tenants:\n"
        "  - {tenant-id: one, username: u1, token: t1}\n"
        "  - tenant-id: two\n"
        "    username: u2\n"
        "    token: t2\n"
        "    groups: [{id: 1}]\n"
        "    agents: [{agent-id: agSolo, group-id: 1, agent-status: 4}]\n",
        encoding="utf-8",
    )
    with emulate(fixture, tenant="two") as emulator:
        assert emulator.auth == ("u2", "t2")
        listed = requests.get(emulator.agents_url, auth=emulator.auth).json()["data"]
        assert [agent["agent-id"] for agent in listed] == ["agSolo"]
    with pytest.raises(ValueError, match="no tenant 'three'"), emulate(fixture, tenant="three"):
        pass


def test_other_urls_keep_a_transport_patched_in_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """A mock that patched ``get_adapter`` first (requests-mock does) still gets every URL the
    emulator does not take, and has it back afterwards."""
    mocked = WSGIAdapter(create_app())

    def mocking_get_adapter(session: requests.Session, url: str) -> WSGIAdapter:
        return mocked

    monkeypatch.setattr(requests.Session, "get_adapter", mocking_get_adapter)
    session = requests.Session()
    with emulate():
        assert session.get_adapter("https://example.com/x") is mocked
        assert session.get_adapter(VENDOR_AGENTS) is not mocked
    assert session.get_adapter("https://example.com/x") is mocked
