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
