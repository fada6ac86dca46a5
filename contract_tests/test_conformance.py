"""The conformance report: probed safely, within the contract, and true to each profile."""

from __future__ import annotations

from typing import Any

import pytest

from contract_tests.config import DEMO_TENANT, DEMO_TOKEN, DEMO_USERNAME, KitConfig
from contract_tests.conformance import CLAIM_KEYS, Conformance, probe
from contract_tests.target import Target, open_target
from mock_server.app import create_app
from mock_server.core.profiles import PROFILES
from mock_server.harness.handle import Emulator
from mock_server.serving.threaded import start_in_thread
from schemas.wire import API_BASE


def differences(claims: dict[str, Any], conformance: Conformance) -> list[str]:
    """Every point where the target does not do what the profile claims, with the evidence."""
    observed = conformance.claims_view()
    return [
        f"{key}: the profile claims {claims[key]!r}, the target does {observed.get(key)!r} "
        f"({conformance.points[key].evidence})"
        for key in claims
        if observed.get(key) != claims[key]
    ]


def test_the_probes_cover_every_disputed_point(conformance: Conformance) -> None:
    assert set(CLAIM_KEYS) <= set(conformance.points)
    assert set(CLAIM_KEYS) == set(PROFILES["default"].claims())


def test_every_probe_answer_met_the_contract(conformance: Conformance) -> None:
    assert conformance.violations == []


@pytest.mark.needs_control_plane("a live tenant claims no profile")
def test_the_report_matches_what_the_emulators_profile_claims(
    target: Target, conformance: Conformance
) -> None:
    claims = PROFILES[target.config.emulator_profile].claims()
    assert not differences(claims, conformance), "\n".join(differences(claims, conformance))


@pytest.mark.needs_control_plane("checks the emulator's three profiles, not the target")
@pytest.mark.parametrize("name", sorted(PROFILES))
def test_each_profiles_report_matches_its_claims(target: Target, name: str) -> None:
    server = start_in_thread(create_app(profile=name))
    config = KitConfig(
        kind="emulator",
        base_url=server.base_url + API_BASE,
        tenant=DEMO_TENANT,
        username=DEMO_USERNAME,
        token=DEMO_TOKEN,
        write_agents=None,
        allow_logout=True,
        emulator_profile=name,
        emulator_url=None,
        admin_token=None,
        hypothesis_profile="ci",
        pause=0.0,
        report=None,
    )
    emulator = Emulator(server.base_url, DEMO_TENANT, DEMO_USERNAME, DEMO_TOKEN)
    try:
        opened = open_target(config, config.base_url, emulator)
        try:
            found = probe(opened)
        finally:
            opened.api.close()
    finally:
        emulator.control.close()
        server.stop()
    assert found.violations == []
    claims = PROFILES[name].claims()
    assert not differences(claims, found), "\n".join(differences(claims, found))
