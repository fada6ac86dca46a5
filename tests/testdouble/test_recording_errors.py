"""``proxy``, ``validate-recording`` and ``diff`` on hostile files and URLs (issue 14): every
mistake is one line naming the file (and line), no traceback; the proxy never answers HTML,
and a recording it cannot write stops the recording, not the proxying."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import DEMO_TOKEN, DEMO_USERNAME, api_path, read_line
from flask import Flask, Response

from mock_server.cli import main
from mock_server.live.proxy import create_proxy_app
from mock_server.live.recording import MAX_LINE_BYTES
from mock_server.serving.threaded import RunningServer, start_in_thread

PROBLEM = "application/problem+json"
ANSWERED = {
    "method": "GET",
    "path": api_path(),
    "query": "",
    "request": {"headers": {}, "body": None, "json": False},
    "response": {"headers": {"Content-Type": "application/json"}, "body": {"data": []}},
    "status": 200,
}


class Upstream:
    """A stand-in live service answering ``body`` (as JSON) to every API path."""

    def __init__(self) -> None:
        self.body = b'{"data": []}'

    def app(self) -> Flask:
        app = Flask(__name__)

        @app.get("/api/<path:_>")
        def answer(_: str) -> Response:
            return Response(self.body, content_type="application/json")

        return app


@pytest.fixture
def upstream() -> Iterator[tuple[Upstream, RunningServer]]:
    stand_in = Upstream()
    with start_in_thread(stand_in.app()) as server:
        yield stand_in, server


def proxy_command(upstream: str, record: Path) -> list[str]:
    executable = Path(sys.executable).parent / "agentstatus-mock"
    return [
        str(executable),
        "proxy",
        "--upstream",
        upstream,
        "--port",
        "0",
        "--record",
        str(record),
    ]


def one_line(text: str, command: str) -> str:
    assert text.count("\n") == 1, text
    assert "Traceback" not in text and "[Errno" not in text, text
    assert text.startswith(f"agentstatus-mock {command}: "), text
    return text.removeprefix(f"agentstatus-mock {command}: ").rstrip("\n")


# 1. The recording file of the proxy


@pytest.mark.parametrize("where", ["a directory", "missing directory", "under a file"])
def test_a_record_path_that_cannot_be_written_is_refused_at_startup(
    tmp_path: Path, where: str
) -> None:
    (tmp_path / "file").write_text("")
    record, expected = {
        "a directory": (tmp_path, "is a directory"),
        "missing directory": (tmp_path / "absent" / "live.jsonl", "does not exist"),
        "under a file": (tmp_path / "file" / "live.jsonl", "is not a directory"),
    }[where]
    done = subprocess.run(
        proxy_command("http://127.0.0.1:9", record),
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 2
    message = one_line(done.stderr, "proxy")
    assert message.startswith(f"--record {record}")
    assert expected in message
    assert done.stdout == ""


def test_a_recording_that_fails_during_the_run_stops_but_answers_still_pass(
    upstream: tuple[Upstream, RunningServer],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, server = upstream
    record = tmp_path / "live.jsonl"
    with start_in_thread(create_proxy_app(server.base_url, record)) as proxy:
        assert requests.get(proxy.base_url + api_path(), timeout=10).status_code == 200
        record.unlink()
        record.mkdir()  # every later append fails, as on a full or vanished disk
        answers = [requests.get(proxy.base_url + api_path(), timeout=10) for _ in range(3)]
    assert [(a.status_code, a.json()) for a in answers] == [(200, {"data": []})] * 3
    message = one_line(capsys.readouterr().err, "proxy")
    assert message.startswith(f"cannot write to {record}: ")
    assert "the recording stopped" in message
    assert list(record.iterdir()) == []


def test_a_line_written_in_part_is_cut_off_again(
    upstream: tuple[Upstream, RunningServer], tmp_path: Path
) -> None:
    """A write the file system refuses half-way (the size limit, as a full disk would):
    the file keeps whole lines only, and the answer still reaches the client."""
    _, server = upstream
    record = tmp_path / "live.jsonl"

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))

    command = proxy_command(server.base_url, record)
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit_file_size,
    ) as run:
        try:
            assert run.stdout is not None
            address = read_line(run.stdout).split()[3]
            answer = requests.get(address + api_path(), timeout=10)
        finally:
            run.terminate()
            _, errors = run.communicate(timeout=10)
    assert (answer.status_code, answer.json()) == (200, {"data": []})
    first = errors.splitlines(keepends=True)[0]  # then the access log
    assert one_line(first, "proxy").startswith(f"cannot write to {record}: file too large;")
    assert record.read_bytes() == b""


def test_no_answer_of_the_proxy_is_html(
    upstream: tuple[Upstream, RunningServer], tmp_path: Path
) -> None:
    stand_in, server = upstream
    record = tmp_path / "live.jsonl"
    with start_in_thread(create_proxy_app(server.base_url, record)) as proxy:
        answers = [
            requests.post(proxy.base_url + "/", timeout=10),
            requests.request("TRACE", proxy.base_url + api_path(), timeout=10),
            requests.get(proxy.base_url + "/elsewhere", timeout=10),
        ]
        deep, long = b"[" * 100_000 + b"]" * 100_000, b'{"n": ' + b"7" * 5000 + b"}"
        for body in (deep, long, b'{"name": "\\ud800"}'):
            stand_in.body = body
            passed = requests.get(proxy.base_url + api_path(), timeout=10)
            assert (passed.status_code, passed.content) == (200, body)
    assert [answer.status_code for answer in answers] == [404, 405, 404]
    assert all(answer.headers["Content-Type"] == PROBLEM for answer in answers)
    assert answers[1].headers["Allow"]
    recorded = [json.loads(line) for line in record.read_text().splitlines()]
    assert [entry["response"]["json"] for entry in recorded] == [False, False, True]
    surrogate = write_lines(tmp_path / "surrogate.jsonl", record.read_bytes().splitlines()[-1])
    assert main(["validate-recording", str(surrogate)]) in (0, 1)  # read back, then judged


def test_the_proxy_command_refuses_what_is_not_http_as_problem_json(tmp_path: Path) -> None:
    """The server of ``proxy`` is the emulator's threaded one, not http.server's HTML pages."""
    command = proxy_command("http://127.0.0.1:9", tmp_path / "live.jsonl")
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as run:
        try:
            assert run.stdout is not None
            address = read_line(run.stdout).split()[3].removeprefix("http://")
            host, port = address.rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=10) as connection:
                headers = "".join(f"X-{number}: {number}\r\n" for number in range(150))
                connection.sendall(f"GET /api/v1 HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
                answer = b""
                while chunk := connection.recv(65536):
                    answer += chunk
        finally:
            run.terminate()
            run.communicate(timeout=10)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431"), answer
    assert f"Content-Type: {PROBLEM}".encode() in head
    assert json.loads(body)["status"] == 431


# 2. An upstream that does not answer


def test_an_unreachable_upstream_is_a_502_in_the_clients_words(tmp_path: Path) -> None:
    with start_in_thread(Flask(__name__)) as gone:
        closed = gone.base_url
    record = tmp_path / "down.jsonl"
    with start_in_thread(create_proxy_app(closed, record)) as proxy:
        answer = requests.get(
            proxy.base_url + api_path(), auth=(DEMO_USERNAME, DEMO_TOKEN), timeout=10
        )
    assert (answer.status_code, answer.headers["Content-Type"]) == (502, PROBLEM)
    detail = answer.json()["detail"]
    assert detail == (
        f"The upstream did not answer GET {api_path()}: "
        f"cannot connect to {closed} (connection refused)."
    )
    [entry] = [json.loads(line) for line in record.read_text().splitlines()]
    assert entry["error"] == detail


# 3. Hostile recordings


def write_lines(path: Path, *lines: bytes) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def refusal(command: str, recording: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main([command, str(recording)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return one_line(captured.err, command)


COMMANDS = pytest.mark.parametrize("command", ["validate-recording", "diff"])
GOOD = json.dumps(ANSWERED).encode()


@COMMANDS
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 32"),
        (b'{"method": "GET", "path": "/", "status": ' + b"7" * 5000 + b"}", "4300 digits"),
        (b'{"method": "GET", "path": "/", "status": 200, "response": "x"}', "response"),
        (b'{"method": "GET", "path": "/", "status": 200, "response": {"headers": 1}}', "headers"),
        (b'{"method": "GET", "path": "/", "status": "200"}', "status"),
        (b'{"method": "GET", "path": "/", "query": 1}', "query"),
        (b'{"method": "GET", "path": "/", "request": {"headers": {"a": 1}}}', "headers"),
        (b'{"method": "GET", "path": "/", "response": {"headers": {}, "json": 1}}', "json"),
        (b'{"method": "GET", "path": "/", "status": true}', "status"),
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_a_bad_line_is_one_line_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, line: bytes, expected: str
) -> None:
    recording = write_lines(tmp_path / "live.jsonl", GOOD, line)
    message = refusal(command, recording, capsys)
    assert message.startswith(f"{recording}:2: "), message
    assert expected in message
    assert "set_int_max_str_digits" not in message and "char " not in message


@COMMANDS
def test_a_deep_value_the_parser_reads_is_refused_before_any_check_recurses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    body = "[" * 900 + "]" * 900
    deep = {**ANSWERED, "response": {"headers": {}, "body": json.loads(body), "json": True}}
    recording = write_lines(tmp_path / "live.jsonl", json.dumps(deep).encode())
    message = refusal(command, recording, capsys)
    assert message.startswith(f"{recording}:1: nested deeper than "), message


@COMMANDS
def test_a_missing_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    missing = tmp_path / "missing.jsonl"
    assert refusal(command, missing, capsys) == f"cannot read {missing}: no such file or directory."


@COMMANDS
def test_a_line_over_the_limit_is_refused_without_reading_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    recording = tmp_path / "live.jsonl"
    with recording.open("wb") as file:
        file.write(GOOD + b"\n")
        file.truncate(1 << 30)  # 1 GiB of NUL bytes, sparse: no disk used
    tracemalloc.start()
    try:
        message = refusal(command, recording, capsys)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message.startswith(f"{recording}:"), message
    assert "over" in message and "MiB" in message
    assert peak < 64 << 20


def test_validate_recording_streams_a_large_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unanswered = json.dumps({"method": "GET", "path": api_path(), "status": None, "x": "y" * 900})
    recording = tmp_path / "big.jsonl"
    recording.write_text((unanswered + "\n") * 30_000, encoding="utf-8")  # 28 MB
    tracemalloc.start()
    try:
        assert main(["validate-recording", str(recording)]) == 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "0 exchanges checked against the vendor contract (30000 unanswered" in (
        capsys.readouterr().out
    )
    assert peak < 8 << 20


def test_diff_refuses_a_recording_over_its_total_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recording = write_lines(tmp_path / "huge.jsonl", GOOD)
    with recording.open("r+b") as file:
        file.truncate(1 << 34)  # 16 GiB, sparse
    message = refusal("diff", recording, capsys)
    assert message.startswith(f"{recording}: "), message
    assert "MiB" in message


# 4. Credentials in a URL


def test_import_refuses_a_base_url_with_credentials(
    upstream: tuple[Upstream, RunningServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, server = upstream
    monkeypatch.setenv("AGENTSTATUS_TOKEN", DEMO_TOKEN)
    base_url = server.base_url.replace("http://", "http://someone:hunter22@") + "/api/v1"
    output = tmp_path / "fixture.yaml"
    command = ["import", "--from-live", "--base-url", base_url, "--tenant", "t", "--username", "u"]
    assert main([*command, "--output", str(output)]) == 2
    message = one_line(capsys.readouterr().err, "import")
    assert "credentials" in message
    assert "hunter22" not in message and "someone" not in message
    assert not output.exists()


def test_the_proxy_refuses_a_non_http_upstream_without_echoing_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = tmp_path / "live.jsonl"
    for upstream in ("ftp://someone:hunter22@example.com", "https://someone:hunter22@example.com"):
        assert main(["proxy", "--upstream", upstream, "--record", str(record)]) == 2
        message = one_line(capsys.readouterr().err, "proxy")
        assert "hunter22" not in message
    assert not record.exists()
    assert os.listdir(tmp_path) == []


def test_a_recorded_path_holding_a_query_mark_or_a_newline_replays_and_prints_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The proxy records the decoded path: ``%3F`` is a ``?`` in it, ``%0A`` a newline."""
    strange = {**ANSWERED, "path": api_path(suffix="/a?b\n#c"), "status": 404}
    recording = write_lines(tmp_path / "live.jsonl", json.dumps(strange).encode())
    assert main(["diff", str(recording)]) == 1
    replayed = capsys.readouterr().out
    assert f"#1 GET {api_path()}/a?b\\n#c" in replayed.splitlines()
    assert main(["validate-recording", str(recording)]) == 0
    judged = capsys.readouterr().out.splitlines()
    assert judged[0].startswith(f"#1 GET {api_path()}/a?b\\n#c: differs from"), judged
    assert judged[-1].startswith("1 exchanges checked")


def test_a_method_that_is_not_a_token_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recording = write_lines(
        tmp_path / "live.jsonl", json.dumps({**ANSWERED, "method": "G T\n"}).encode()
    )
    assert refusal("validate-recording", recording, capsys).endswith("an HTTP method name.")


def test_a_request_body_the_recording_could_not_hold_is_a_413(tmp_path: Path) -> None:
    """The proxy read any request body whole; one over a recording line's limit can neither
    be recorded nor is any Agent Status request, so it is refused before it is read."""
    record = tmp_path / "live.jsonl"
    client = create_proxy_app("http://127.0.0.1:9", record).test_client()
    answer = client.put(api_path(), data=b"x" * (MAX_LINE_BYTES + 1))
    assert answer.status_code == 413
    assert answer.headers["Content-Type"] == PROBLEM
    assert not record.exists() or record.read_text() == ""
