"""``serve --watch``: an edited fixture is reloaded; a broken edit is reported, the state kept."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mock_server import create_app
from mock_server.cli import main
from mock_server.http.context import EXTENSION
from mock_server.serving.watch import FixtureWatcher

TEMPLATE = """\
tenants:
  - tenant-id: watched
    username: watcher
    token: watch-token
    groups: [{{id: 1}}]
    agents: [{{agent-id: agWatched, group-id: 1, agent-status: {status}}}]
"""


def write(path: Path, text: str, bump: int) -> None:
    """Replace the file in one step, its mtime moved forward so a coarse clock still sees it:
    a polling watcher never reads it half written."""
    staged = path.with_suffix(".staged")
    staged.write_text(text, encoding="utf-8")
    stamp = time.time() + bump
    os.utime(staged, (stamp, stamp))
    os.replace(staged, path)


def status(watcher: FixtureWatcher) -> int:
    agents = watcher.backend.tenant_state("watched")["agents"]
    value: int = agents[0]["agent-status"]
    return value


def test_an_edit_is_loaded_and_a_bad_edit_keeps_the_old_state(tmp_path: Path) -> None:
    fixture = tmp_path / "watched.yaml"
    write(fixture, TEMPLATE.format(status=4), 0)
    app = create_app(fixture)
    reports: list[str] = []
    watcher = FixtureWatcher(fixture, app.extensions[EXTENSION].backend, report=reports.append)
    assert watcher.check() is False

    write(fixture, TEMPLATE.format(status=5), 10)
    assert watcher.check() is True
    assert status(watcher) == 5

    write(fixture, TEMPLATE.format(status=42), 20)
    assert watcher.check() is False
    assert status(watcher) == 5
    assert "previous state is kept" in reports[-1]
    assert "agent-status" in reports[-1]


def test_the_thread_polls_until_stopped(tmp_path: Path) -> None:
    fixture = tmp_path / "watched.yaml"
    write(fixture, TEMPLATE.format(status=4), 0)
    app = create_app(fixture)
    reports: list[str] = []
    backend = app.extensions[EXTENSION].backend
    watcher = FixtureWatcher(fixture, backend, interval=0.02, report=reports.append).start()
    try:
        write(fixture, TEMPLATE.format(status=3), 10)
        deadline = time.monotonic() + 10
        while status(watcher) != 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        watcher.stop()
    assert status(watcher) == 3
    assert reports[-1] == f"reloaded {fixture}"


def test_watch_needs_a_fixture_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "0", "--watch"]) == 2
    assert "--watch needs --fixture" in capsys.readouterr().err
