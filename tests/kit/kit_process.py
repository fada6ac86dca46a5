"""Running the contract kit as a user does: ``pytest contract_tests`` in a subprocess.

Nothing from the caller's environment that would point the kit at another target is passed
on: only the variables given.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KIT_TIMEOUT_SECONDS = 240
KIT_VARIABLE_PREFIX = "AGENTSTATUS_"
OPTIONS = (
    "-p",
    "no:xdist",
    "-p",
    "no:cacheprovider",
    # The kit does not use Schemathesis; its plugin costs seconds at every start.
    "-p",
    "no:schemathesis",
    "-q",
)


def run_kit(*options: str, variables: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """One run of the kit with these command-line options and kit variables; its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(KIT_VARIABLE_PREFIX)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "contract_tests", *OPTIONS, *options],
        cwd=ROOT,
        env={**env, **variables},
        capture_output=True,
        text=True,
        timeout=KIT_TIMEOUT_SECONDS,
        stdin=subprocess.DEVNULL,
    )
