"""The contract kit catches a broken emulator, and names the rule that broke.

Each case starts ``tests/kit/broken_emulator.py`` with one rule flipped in its own process,
runs the kit against it through ``--agentstatus-emulator-url`` (so the kit keeps the true rule
table) and expects the run to fail with a message naming the broken rule.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.kit.kit_process import ROOT, run_kit

# Not needed to catch a flipped rule, and slow to shrink against HTTP: the three-profile check
# starts emulators of its own, and the state machine repeats what the deterministic checks name.
DESELECT = (
    "--deselect",
    "contract_tests/test_conformance.py::test_each_profiles_report_matches_its_claims",
    "--deselect",
    "contract_tests/test_state_machine.py",
)

CASES = {
    "1->4 allowed": "1 LOGGED_OUT -> 4 WAIT_TRANSACT with a status code of the agent's group: "
    "the rule table refuses this transition, but the target answered 200",
    "4->3 refused": "4 WAIT_TRANSACT -> 3 ON_BREAK with a status code of the agent's group: "
    "the rule table allows this transition, but the target answered 400",
    "bulk limit ignored": "bulk_limit: the profile claims 100, the target does None",
    "status-code list not checked": "a status-code list not assigned to the agent's group "
    "must be refused, but the target answered 200",
    # The contract hook sees it first: change-status is 200, 400 or 404 per the document.
    "unknown agent 500 in bulk": "change-status']: 500 is not one of [200, 400, 404]",
}


@pytest.fixture
def broken_emulator(request: pytest.FixtureRequest) -> Iterator[str]:
    with subprocess.Popen(
        [sys.executable, "-m", "tests.kit.broken_emulator", request.param],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            yield process.stdout.readline().strip()
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.mark.parametrize(
    ("broken_emulator", "message"), list(CASES.items()), indirect=["broken_emulator"]
)
def test_the_kit_fails_naming_the_broken_rule(broken_emulator: str, message: str) -> None:
    run = run_kit("--agentstatus-emulator-url", broken_emulator, *DESELECT, variables={})
    assert run.returncode == 1, run.stdout[-3000:]
    assert message in run.stdout, run.stdout[-5000:]
