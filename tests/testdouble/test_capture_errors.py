"""``agentstatus-mock import --from-live`` when something is wrong (issue 14): one line that
says what failed and why, no traceback, no file written (nor half of one), and a bad
``--output`` found before the live tenant is asked anything."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask, Response, request

from mock_server.cli import main
from mock_server.live import capture
from mock_server.serving.threaded import RunningServer, start_in_thread

TOKEN = "nevertellanyone"
TENANT = "acmecorp01"
AGENTS = f"/api/v1/tenants/{TENANT}/agentstatus/agents"
AGENT = {"agent-id": "agReadyReadyReadyReady00", "name": "Ready", "agent-status": 4}


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTSTATUS_TOKEN", TOKEN)


class Live:
    """A stand-in live tenant that answers ``answer`` and counts what it was asked."""

    def __init__(self) -> None:
        self.requests = 0
        self.answer: Response = Response('{"data": []}', content_type="application/json")

    def app(self) -> Flask:
        app = Flask(__name__)

        @app.get(AGENTS)
        def agents() -> Response:
            self.requests += 1
            return self.answer

        return app


@pytest.fixture
def live() -> Iterator[tuple[Live, RunningServer]]:
    stand_in = Live()
    with start_in_thread(stand_in.app()) as server:
        yield stand_in, server


def run_import(base_url: str, output: Path) -> int:
    return main(
        [
            "import",
            "--from-live",
            "--base-url",
            f"{base_url}/api/v1",
            "--tenant",
            TENANT,
            "--username",
            "myclientId",
            "--output",
            str(output),
        ]
    )


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    error = capsys.readouterr().err
    assert error.count("\n") == 1, error
    assert TOKEN not in error
    assert "Traceback" not in error
    assert error.startswith("agentstatus-mock import: ")
    return error.removeprefix("agentstatus-mock import: ").rstrip("\n")


@pytest.mark.parametrize("where", ["missing directory", "a directory", "under a file"])
def test_an_output_that_cannot_be_written_is_refused_before_any_request(
    live: tuple[Live, RunningServer],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    where: str,
) -> None:
    stand_in, server = live
    (tmp_path / "file").write_text("")
    output, expected = {
        "missing directory": (tmp_path / "absent" / "x.yaml", "does not exist"),
        "a directory": (tmp_path, "is a directory"),
        "under a file": (tmp_path / "file" / "x.yaml", "is not a directory"),
    }[where]
    assert run_import(server.base_url, output) == 2
    message = one_line(capsys)
    assert message.startswith("--output ")
    assert expected in message
    assert stand_in.requests == 0


def test_a_failed_write_is_one_line_and_leaves_no_file(tmp_path: Path) -> None:
    """A write the file system refuses (here the size limit, as a full disk would): the old
    file stays as it was, and no temporary file is left beside it."""
    with start_in_thread(Live().app()) as server:
        output = tmp_path / "fixture.yaml"
        output.write_text("previous\n")

        def limit_file_size() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
            resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))

        command = ["import", "--from-live", "--base-url", f"{server.base_url}/api/v1"]
        command += ["--tenant", TENANT, "--username", "u", "--output", str(output)]
        done = subprocess.run(
            [sys.executable, "-m", "mock_server", *command],
            capture_output=True,
            text=True,
            env={**os.environ, "AGENTSTATUS_TOKEN": TOKEN, "PYTHONDONTWRITEBYTECODE": "1"},
            preexec_fn=limit_file_size,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(f"agentstatus-mock import: cannot write {output}: ")
    assert done.stderr.count("\n") == 1, done.stderr
    assert output.read_text() == "previous\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["fixture.yaml"]


def test_a_refused_connection_says_so_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    assert run_import(f"http://127.0.0.1:{port}", tmp_path / "f.yaml") == 1
    assert one_line(capsys) == f"cannot connect to http://127.0.0.1:{port} (connection refused)"
    assert not (tmp_path / "f.yaml").exists()


def test_an_unknown_host_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_import("http://nonexistent.invalid", tmp_path / "f.yaml") == 1
    message = one_line(capsys)
    assert message.startswith("cannot connect to http://nonexistent.invalid (host name lookup")


def test_a_silent_service_times_out_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(capture, "TIMEOUT_SECONDS", 0.3)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # connects, never answers
        port = silent.getsockname()[1]
        assert run_import(f"http://127.0.0.1:{port}", tmp_path / "f.yaml") == 1
    assert one_line(capsys) == (f"GET http://127.0.0.1:{port}{AGENTS}: no answer within 0.3 s")


REFUSALS = {
    "401 as HTML": (
        Response("<html>\n<body>\n<h1>Unauthorized</h1>\n</body>\n</html>\n", status=401),
        "401 Unauthorized: <html> <body> <h1>Unauthorized</h1> </body> </html>",
    ),
    "403 not enabled": (
        Response("<API><Error>403 - Forbidden.</Error></API>", 403, mimetype="application/xml"),
        "403 Forbidden: <API><Error>403 - Forbidden.</Error></API> (the Agent Status API is not",
    ),
    "not JSON": (Response("<html>maintenance</html>", 200), "the answer is not JSON"),
    "no data array": (Response('{"agents": []}', 200), "the answer has no 'data' array"),
    "an agent not an object": (
        Response('{"data": [5]}', 200, mimetype="application/json"),
        "the answer's data[0] is not an object",
    ),
}


@pytest.mark.parametrize(("answer", "expected"), REFUSALS.values(), ids=REFUSALS.keys())
def test_an_answer_that_is_not_an_agent_list_is_one_line(
    live: tuple[Live, RunningServer],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    answer: Response,
    expected: str,
) -> None:
    stand_in, server = live
    stand_in.answer = answer
    assert run_import(server.base_url, tmp_path / "f.yaml") == 1
    assert one_line(capsys).startswith(f"GET {server.base_url}{AGENTS}: {expected}")
    assert not (tmp_path / "f.yaml").exists()


def test_paging_stops_at_the_first_empty_page(tmp_path: Path) -> None:
    """A service that claims fifty pages but has run out of agents after the first is not
    asked again (nor a billion times, had it claimed a billion)."""
    asked: list[int] = []
    app = Flask(__name__)

    @app.get(AGENTS)
    def agents() -> dict[str, object]:
        index = int(request.args.get("pageIndex", "0"))
        asked.append(index)
        page = {"pageIndex": index, "pageSize": 1, "totalPages": 50}
        return {"data": [AGENT] if index == 0 else [], "page": page}

    with start_in_thread(app) as server:
        assert run_import(server.base_url, tmp_path / "f.yaml") == 0
    assert asked == [0, 1]


def test_ctrl_c_while_reading_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    output = tmp_path / "f.yaml"
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        command = ["import", "--from-live", "--base-url", f"http://127.0.0.1:{port}/api/v1"]
        command += ["--tenant", TENANT, "--username", "u", "--output", str(output)]
        with subprocess.Popen(
            [sys.executable, "-m", "mock_server", *command],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "AGENTSTATUS_TOKEN": TOKEN},
        ) as child:
            silent.settimeout(30)
            connection, _ = silent.accept()  # the request is on its way: Ctrl-C now
            child.send_signal(signal.SIGINT)
            _, error = child.communicate(timeout=30)
            connection.close()
    assert child.returncode == 130
    assert error == "agentstatus-mock import: interrupted; nothing was written.\n"
    assert not output.exists()
