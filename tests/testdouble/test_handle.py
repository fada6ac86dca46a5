"""The handle a test holds: its control plane reaches exactly the tenant and agent it names."""

from __future__ import annotations

import pytest
import requests

from mock_server.harness.handle import ControlPlaneError
from mock_server.harness.inprocess import emulate


def test_reset_gives_back_the_fixture_tenants_token() -> None:
    with emulate() as emulator:
        emulator.rotate_token()
        emulator.reset()
        listed = requests.get(emulator.agents_url, auth=emulator.auth, timeout=5)
        assert listed.status_code == 200


def test_an_agent_id_is_sent_whole_never_cut_at_a_reserved_character() -> None:
    with emulate() as emulator:
        group = emulator.state()["groups"][0]["id"]
        with pytest.raises(ControlPlaneError, match="'ag\\?x#y' does not match"):
            emulator.put_agent("ag?x#y", 9, group)
        assert "ag" not in {agent["agent-id"] for agent in emulator.state()["agents"]}


def test_reset_state_leaves_the_journal_and_faults_reset_clears_them() -> None:
    """The contract kit resets a shared emulator with ``reset_state``: what its owner recorded
    and set up stays."""
    with emulate() as emulator:
        emulator.faults.fail(503, times=5, method="DELETE")
        requests.get(emulator.agents_url, auth=emulator.auth, timeout=5)
        emulator.reset_state()
        assert len(emulator.journal.entries()) == 1
        assert len(emulator.faults.list()) == 1
        emulator.reset()
        assert emulator.journal.entries() == []
        assert emulator.faults.list() == []
