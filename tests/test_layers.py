"""The layers hold at run time too (import-linter checks the source in ``make test``): a lower
layer loads without the ones above it, and the public names a user imports are where the
README says."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

LOADS_NOTHING_ABOVE = [
    ("mock_server.core.backend", ["flask", "werkzeug", "requests", "mock_server.http"]),
    ("mock_server.core.sqlite_store", ["flask", "werkzeug", "mock_server.http"]),
    ("mock_server.http.control", ["flask", "werkzeug"]),
    ("mock_server.http.profile_document", ["flask", "werkzeug"]),
    ("mock_server.http.api", ["mock_server.testdouble", "mock_server.app"]),
    ("mock_server.testdouble.middleware", ["mock_server.app", "mock_server.harness"]),
    ("schemas.wire", ["mock_server", "client", "flask"]),
    ("client", ["mock_server", "contract_tests", "flask"]),
]


@pytest.mark.parametrize(("module", "absent"), LOADS_NOTHING_ABOVE)
def test_a_layer_loads_without_the_ones_above(module: str, absent: list[str]) -> None:
    probe = (
        f"import sys, {module}\n"
        f"loaded = [name for name in {absent!r} if name in sys.modules]\n"
        "print(','.join(loaded))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == ""


def test_the_public_names_import_from_the_package() -> None:
    from mock_server import Emulator, create_app, emulate, emulated
    from mock_server.harness.handle import Emulator as HomeEmulator
    from mock_server.harness.inprocess import emulate as home_emulate

    assert emulate is home_emulate and Emulator is HomeEmulator
    assert callable(create_app) and callable(emulated)


def test_the_pytest_plugin_is_registered_at_its_module() -> None:
    plugins = {entry.name: entry.value for entry in entry_points(group="pytest11")}
    assert plugins["agentstatus"] == "mock_server.harness.pytest_plugin"
