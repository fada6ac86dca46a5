"""The project as a user gets it: a wheel and an sdist built from this tree, the wheel installed
into a fresh virtual environment, and everything it promises tried from a directory where the
source tree is not on ``sys.path`` (console scripts, ``python -m``, the pytest plugin,
``emulate()``).

The build and the environment are made once per test session, even with xdist: the first
worker makes them under the session's shared temporary directory, holding a lock that the
others wait on, and every worker reuses them. The build runs in isolation, so its setuptools
(and the wheel's dependencies) come from PyPI or pip's cache.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import tarfile
import textwrap
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
VERSION = PROJECT["version"]
TOP_LEVEL = {"client", "contract_tests", "mock_server", "schemas"}
TIMEOUT = 300


@dataclass(frozen=True)
class Installed:
    wheel: Path
    sdist: Path
    venv: Path
    workdir: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def run(
        self, program: str, *args: str, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``program`` (a script of the environment, or its ``python``) run in ``workdir``."""
        return subprocess.run(
            [str(self.bin / program), *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            cwd=self.workdir,
            env=_clean_environment(self.venv),
            input=input,
        )


def _clean_environment(venv: Path | None = None) -> dict[str, str]:
    """This process's environment without what would lead a child to the source tree or to
    this test run's settings."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in dropped and not name.startswith(("AGENTSTATUS_", "PYTEST_XDIST"))
    }
    if venv is not None:
        environment["PATH"] = f"{venv / 'bin'}{os.pathsep}{environment.get('PATH', '')}"
    return environment


def _check(argv: list[str], cwd: Path) -> None:
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd, env=_clean_environment()
    )
    if done.returncode != 0:
        pytest.fail(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def _build_and_install(home: Path) -> dict[str, str]:
    dist, venv, workdir = home / "dist", home / "venv", home / "elsewhere"
    workdir.mkdir()
    # sdist first, then the wheel built from the unpacked sdist: a file the sdist lacks fails.
    _check([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], home)
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    _check([sys.executable, "-m", "venv", "--without-pip", str(venv)], home)
    install = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    _check([*install, "install", "--quiet", str(wheel), "pytest"], home)
    return {"wheel": str(wheel), "sdist": str(sdist), "venv": str(venv), "workdir": str(workdir)}


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of this session
    home = base / "packaging"
    home.mkdir(exist_ok=True)
    with (home.parent / "packaging.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = home / "installed.json"
        if not record.exists():
            record.write_text(json.dumps(_build_and_install(home)))
        made = json.loads(record.read_text())
    yield Installed(*(Path(made[field]) for field in ("wheel", "sdist", "venv", "workdir")))


def test_the_wheel_installs_the_four_top_level_packages(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = wheel.namelist()
        info = f"agentstatus_twin-{VERSION}.dist-info"
        top_level = set(wheel.read(f"{info}/top_level.txt").decode().split())
        metadata = wheel.read(f"{info}/METADATA").decode()
    assert top_level == TOP_LEVEL
    assert {name.split("/")[0] for name in names} == TOP_LEVEL | {info}
    assert f"{info}/licenses/LICENSE" in names
    assert "License-Expression: MIT" in metadata.splitlines()
    assert "Classifier: Framework :: Pytest" in metadata.splitlines()
    located = installed.run(
        "python",
        "-c",
        "import client, contract_tests, mock_server, schemas; print(mock_server.__file__)",
    )
    assert located.returncode == 0, located.stderr
    assert Path(located.stdout.strip()).is_relative_to(installed.venv)


def _package_data() -> set[str]:
    """The data files of the tree that the packages read at run time."""
    patterns = (
        "schemas/*.json",
        "schemas/*.yaml",
        "mock_server/dashboard/static/*",
        "mock_server/fixtures/*.yaml",
        "client/py.typed",
    )
    found = {pattern: sorted(ROOT.glob(pattern)) for pattern in patterns}
    assert all(found.values()), found  # each pattern names files the tree holds
    return {str(path.relative_to(ROOT)) for paths in found.values() for path in paths}


def test_the_sdist_and_the_wheel_hold_the_package_data(installed: Installed) -> None:
    with tarfile.open(installed.sdist) as sdist:
        prefix = f"agentstatus_twin-{VERSION}/"
        in_sdist = {name.removeprefix(prefix) for name in sdist.getnames()}
    with zipfile.ZipFile(installed.wheel) as wheel:
        in_wheel = set(wheel.namelist())
    wanted = _package_data()
    assert wanted - in_sdist == set()
    assert wanted - in_wheel == set()
    assert {"LICENSE", "README.md", "pyproject.toml", "PKG-INFO"} <= in_sdist


def test_the_console_scripts_answer(installed: Installed) -> None:
    for script in ("agentstatus-mock", "agentstatus"):
        version = installed.run(script, "--version")
        assert (version.returncode, version.stdout, version.stderr) == (
            0,
            f"{script} {VERSION}\n",
            "",
        )
        helped = installed.run(script, "--help")
        assert (helped.returncode, helped.stderr) == (0, "")
        assert helped.stdout.startswith(f"usage: {script} ")
    as_module = installed.run("python", "-m", "mock_server", "--version")
    assert as_module.stdout == f"agentstatus-mock {VERSION}\n"


EMULATE = """
import json, sys
import requests
from mock_server import emulate

with emulate() as emulator:
    got = requests.get(f"{emulator.agents_url}/agAQDqmvKiRbG4ekigNSmbbb", auth=emulator.auth)
    print(got.status_code)
    open("agent.json", "w").write(got.text)
"""


def test_emulate_answers_and_python_m_schemas_judges_the_answer(installed: Installed) -> None:
    emulated = installed.run("python", "-c", EMULATE)
    assert (emulated.returncode, emulated.stdout, emulated.stderr) == (0, "200\n", "")
    helped = installed.run("python", "-m", "schemas", "--help")
    assert (helped.returncode, helped.stderr) == (0, "")
    assert "validate" in helped.stdout
    validate = ("python", "-m", "schemas", "validate", "--operation", "getagentstatus")
    judged = installed.run(*validate, "--status", "200", "agent.json")
    assert judged.returncode == 0, judged.stdout + judged.stderr
    (installed.workdir / "agent.json").write_text('{"agent-status": "four"}')
    refused = installed.run(*validate, "--status", "200", "agent.json")
    assert refused.returncode == 1, refused.stdout + refused.stderr


def test_pytest_in_the_environment_loads_the_plugin(installed: Installed) -> None:
    (installed.workdir / "test_with_the_plugin.py").write_text(
        textwrap.dedent(
            """
            def test_lists_agents(agentstatus_emulator):
                got = agentstatus_emulator.session().get(agentstatus_emulator.agents_url)
                assert got.status_code == 200
                assert got.json()["data"]
            """
        )
    )
    ran = installed.run(
        "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-W",
        "error",
        "test_with_the_plugin.py",
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "1 passed" in ran.stdout
