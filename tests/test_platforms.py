"""Where Python has no ``fcntl``, ``granian``, ``resource`` or ``termios`` (Windows), the pytest
plugin and ``emulate()`` still work, and ``agentstatus-mock`` explains itself.

Each check runs in a child interpreter whose import system refuses those modules (a
``sys.meta_path`` finder ahead of every other), so a module that imports one of them at import
time, anywhere on the way, fails the check as it would on Windows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

BLOCKED = ("fcntl", "granian", "resource", "termios")
BLOCKER = f"""
import importlib.abc
import sys

BLOCKED = frozenset({BLOCKED!r})


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
        return None


for loaded in [name for name in sys.modules if name.partition(".")[0] in BLOCKED]:
    del sys.modules[loaded]
sys.meta_path.insert(0, Refuse())
try:
    import fcntl  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("the blocker let fcntl through")
"""


def run_blocked(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``code`` in a child interpreter that cannot import the blocked modules."""
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        # The plugin's own settings (an emulator URL, say) stay with the outer run.
        env={name: value for name, value in os.environ.items() if "AGENTSTATUS" not in name},
    )


def test_emulate_answers_without_the_posix_modules(tmp_path: Path) -> None:
    done = run_blocked(
        """
        import requests
        from mock_server import emulate

        with emulate() as emulator:
            got = requests.get(emulator.agents_url, auth=emulator.auth)
            print(got.status_code, len(got.json()["data"]))
        print(sorted(name for name in sys.modules if name.partition(".")[0] in BLOCKED))
        """,
        cwd=tmp_path,
    )
    assert (done.returncode, done.stderr) == (0, "")
    status, agents = done.stdout.splitlines()[0].split()
    assert status == "200"
    assert int(agents) > 0
    assert done.stdout.splitlines()[1] == "[]"


def test_the_pytest_plugin_runs_a_test_without_the_posix_modules(tmp_path: Path) -> None:
    (tmp_path / "test_uses_plugin.py").write_text(
        textwrap.dedent(
            """
            def test_lists_agents(agentstatus_emulator):
                session = agentstatus_emulator.session()
                got = session.get(agentstatus_emulator.agents_url)
                assert got.status_code == 200
                assert got.json()["data"]


            def test_sets_a_status(agentstatus_emulator):
                agent = "agAQDqmvKiRbG4ekigNSmbbb"
                url = f"{agentstatus_emulator.agents_url}/{agent}"
                got = agentstatus_emulator.session().put(url, json={"agent-status": 3})
                assert got.status_code == 200, got.text
                assert agentstatus_emulator.agent(agent)["agent-status"] == 3
            """
        )
    )
    done = run_blocked(
        """
        import pytest

        code = pytest.main(["-q", "-p", "no:cacheprovider", "-W", "error", "test_uses_plugin.py"])
        import mock_server.harness.pytest_plugin
        raise SystemExit(code)
        """,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


CLI = """
from mock_server.cli import main

raise SystemExit(main(sys.argv[1:]))
"""


def test_the_cli_explains_itself_without_the_posix_modules(tmp_path: Path) -> None:
    helped = run_blocked(CLI, "--help", cwd=tmp_path)
    assert (helped.returncode, helped.stderr) == (0, "")
    assert helped.stdout.startswith("usage: agentstatus-mock")
    assert "serve" in helped.stdout
    commands = ("serve", "import", "proxy", "validate-recording", "diff")
    each = run_blocked(
        f"""
        from mock_server.cli import main

        for command in {commands!r}:
            try:
                main([command, "--help"])
            except SystemExit as exit:
                print(command, exit.code)
        """,
        cwd=tmp_path,
    )
    assert each.stderr == ""
    for command in commands:
        assert f"usage: agentstatus-mock {command}" in each.stdout
        assert f"\n{command} 0\n" in f"\n{each.stdout}"


def test_serve_refuses_in_one_line_naming_the_platform(tmp_path: Path) -> None:
    refused = run_blocked(CLI, "serve", "--port", "0", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stdout == ""
    lines = refused.stderr.splitlines()
    assert len(lines) == 1, refused.stderr
    assert lines[0].startswith("agentstatus-mock: serve ")
    assert sys.platform in lines[0]
    assert "emulate()" in lines[0]
    assert "Linux and macOS" in lines[0]


def test_the_other_commands_explain_themselves_without_the_posix_modules(
    tmp_path: Path,
) -> None:
    client = run_blocked(
        "from client.cli import main\nraise SystemExit(main(sys.argv[1:]))\n",
        "--help",
        cwd=tmp_path,
    )
    assert (client.returncode, client.stderr) == (0, "")
    assert client.stdout.startswith("usage: agentstatus")
    schemas = run_blocked(
        "import runpy\nrunpy.run_module('schemas', run_name='__main__')\n", "--help", cwd=tmp_path
    )
    assert (schemas.returncode, schemas.stderr) == (0, "")
    assert "validate" in schemas.stdout
