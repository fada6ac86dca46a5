"""The command lines' operational basics: a version, and a one-line error (never a traceback)
for a port out of range, a port in use or a state file that cannot be opened."""

from __future__ import annotations

import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("command", ["agentstatus-mock", "agentstatus"])
def test_both_commands_say_their_version(command: str) -> None:
    result = run(command, "--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"{command} {version('agentstatus-twin')}"


@pytest.mark.parametrize("port", ["99999", "-1", "65536", "http"])
def test_a_port_outside_the_range_is_refused_naming_it(port: str) -> None:
    result = run("agentstatus-mock", "serve", "--port", port)
    assert result.returncode == 2
    assert "--port" in result.stderr and "0 to 65535" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_in_use_is_one_line_naming_the_option() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run("agentstatus-mock", "serve", "--port", port)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert f"port {port} is in use" in line and "--port" in line and "make run PORT=" in line


def test_a_state_file_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "state.sqlite"
    result = run("agentstatus-mock", "serve", "--port", "0", "--state", str(missing))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "--state" in line and str(missing) in line
    assert f"the folder {missing.parent} does not exist" in line
    assert not missing.parent.exists()


def test_a_state_path_that_is_a_directory_says_so(tmp_path: Path) -> None:
    """SQLite's own words were "unable to open database file"."""
    result = run("agentstatus-mock", "serve", "--port", "0", "--state", str(tmp_path))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert f"--state {tmp_path}: is a directory; name a file in it" in line


def test_a_state_file_that_is_not_a_database_is_one_line(tmp_path: Path) -> None:
    garbage = tmp_path / "state.sqlite"
    garbage.write_bytes(b"this is not SQLite" * 100)
    result = run("agentstatus-mock", "serve", "--port", "0", "--state", str(garbage))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "--state" in line and str(garbage) in line
    assert garbage.read_bytes() == b"this is not SQLite" * 100


@pytest.mark.parametrize(("option", "value"), [("--journal-size", "0"), ("--workers", "x")])
def test_a_count_below_one_is_refused_naming_the_option(option: str, value: str) -> None:
    result = run("agentstatus-mock", "serve", "--port", "0", option, value)
    assert result.returncode == 2
    assert f"argument {option}:" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["0", "1.5", "nan", "fast"])
def test_a_stream_time_scale_outside_its_range_is_refused_naming_it(value: str) -> None:
    result = run("agentstatus-mock", "serve", "--port", "0", "--stream-time-scale", value)
    assert result.returncode == 2
    [line] = [text for text in result.stderr.strip().splitlines() if "error:" in text]
    assert "argument --stream-time-scale:" in line and "Traceback" not in result.stderr
