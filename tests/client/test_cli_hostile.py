"""``agentstatus`` against what users and their machines do to a command line: Ctrl-C and
Ctrl-D, spreadsheets' CSV, broken files, odd options, nothing listening. Every answer is one
clear line and an exit code, never a traceback."""

from __future__ import annotations

import _thread
import contextlib
import getpass
import io
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import DEMO_TENANT, DEMO_TOKEN, DEMO_USERNAME
from support_client import Canned, ScriptedServer, Seen, make_client, place_agents, refused_url

from client.cli import main
from mock_server.serving.threaded import RunningServer

BOB = "agAQDqmvKiRbG4ekigNSmbbb"
PADMA = "ag64oyEUb_Sk6bxVB9P5yaaa"
URLLIB3_WORDS = (
    "HTTPConnectionPool",
    "Max retries",
    "NewConnectionError",
    "Caused by",
    "object at",
)

Connect = Callable[[str], None]


@pytest.fixture
def connect(monkeypatch: pytest.MonkeyPatch) -> Connect:
    """Puts the demo tenant's settings in the environment, for an API at the URL given."""
    monkeypatch.delenv("AGENTSTATUS_PLATFORM", raising=False)

    def settings(api_url: str) -> None:
        monkeypatch.setenv("AGENTSTATUS_BASE_URL", api_url)
        monkeypatch.setenv("AGENTSTATUS_TENANT", DEMO_TENANT)
        monkeypatch.setenv("AGENTSTATUS_USERNAME", DEMO_USERNAME)
        monkeypatch.setenv("AGENTSTATUS_TOKEN", DEMO_TOKEN)

    return settings


@pytest.fixture
def live_api(live: RunningServer, connect: Connect) -> str:
    connect(f"{live.base_url}/api/v1")
    return f"{live.base_url}/api/v1"


def run(argv: list[str]) -> int:
    """``main(argv)``; a KeyboardInterrupt that escapes it fails the test (not the session)."""
    try:
        return main(argv)
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped main()")


def one_line(text: str) -> str:
    assert text.count("\n") == 1 and text.endswith("\n"), text
    return text.rstrip("\n")


def status_of(api_url: str, agent_id: str) -> int:
    with make_client(api_url) as api:
        return int(api.get_agent(agent_id).status)


# -- the token prompt ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raised", "code", "said"),
    [
        (KeyboardInterrupt, 130, "agentstatus: interrupted"),
        (EOFError, 2, "agentstatus list: error: no token: the prompt got end of input"),
    ],
    ids=["ctrl-c", "ctrl-d"],
)
def test_ctrl_c_and_ctrl_d_at_the_token_prompt(
    connect: Connect,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    raised: type[BaseException],
    code: int,
    said: str,
) -> None:
    connect(refused_url())
    monkeypatch.delenv("AGENTSTATUS_TOKEN")
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)

    def prompt(text: str = "") -> str:
        raise raised

    monkeypatch.setattr(getpass, "getpass", prompt)
    assert run(["list"]) == code
    captured = capsys.readouterr()
    assert one_line(captured.err) == said
    assert captured.out == ""


# -- Ctrl-C ----------------------------------------------------------------------------------


class InterruptingServer(ScriptedServer):
    """Plays its script; the request after it presses Ctrl-C in the main thread (where the
    command runs) and drops the connection, as a user's Ctrl-C during a request does."""

    def _next(self, seen: Seen) -> Canned:
        with self._lock:
            self.seen.append(seen)
            if self.script:
                return self.script.pop(0)
        _thread.interrupt_main()
        return Canned(drop=True)


@pytest.mark.parametrize(
    "argv", [["list"], ["get", BOB], ["set", BOB, "3"]], ids=["list", "get", "set"]
)
def test_ctrl_c_during_a_request_is_one_line_and_exit_130(
    connect: Connect, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    with InterruptingServer([]) as server:
        connect(server.api_url)
        assert run(argv) == 130
    captured = capsys.readouterr()
    assert one_line(captured.err) == "agentstatus: interrupted"
    assert captured.out == ""


def bulk_result(*agent_ids: str) -> Canned:
    return Canned(207, {"data": [{"agent-id": a, "change-status": 200} for a in agent_ids]})


def test_ctrl_c_while_a_bulk_chunk_is_in_flight_says_it_may_have_been_applied(
    connect: Connect, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """250 entries are three requests; Ctrl-C while the second is out."""
    agents = [f"ag{n:03}" for n in range(250)]
    bulk = tmp_path / "changes.json"
    bulk.write_text(json.dumps([{"agent-id": a, "agent-status": 3} for a in agents]), "utf-8")
    with InterruptingServer([bulk_result(*agents[:100])]) as server:
        connect(server.api_url)
        assert run(["bulk", str(bulk)]) == 130
    assert len(server.seen) == 2
    captured = capsys.readouterr()
    assert one_line(captured.err) == (
        "agentstatus: interrupted: chunk 1 of 3 was applied (entries 1-100: 100 succeeded, "
        "0 failed); chunk 2 (entries 101-200) was being sent and may have been applied; "
        "the rest were not sent"
    )
    assert captured.out.splitlines()[-1] == "100 changes: 100 succeeded, 0 failed"


class InterruptAfter(io.StringIO):
    """stderr that is Ctrl-C'd the first time it is written ``mark``: Ctrl-C between chunks."""

    def __init__(self, mark: str) -> None:
        super().__init__()
        self.mark: str | None = mark

    def write(self, text: str) -> int:
        if self.mark is not None and self.mark in text:
            self.mark = None
            raise KeyboardInterrupt
        return super().write(text)


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_ctrl_c_between_bulk_chunks_says_which_were_applied(
    live: RunningServer,
    live_api: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    as_json: bool,
) -> None:
    agents = [f"agChunk{n:03}" for n in range(150)]
    place_agents(live.base_url, agents, 4)
    bulk = tmp_path / "changes.csv"
    bulk.write_text("agent-id,agent-status\n" + "".join(f"{a},3\n" for a in agents), "utf-8")
    stderr = InterruptAfter("100/150")
    monkeypatch.setattr(sys, "stderr", stderr)
    argv = ["bulk", str(bulk), "--progress", "always"] + (["--json"] if as_json else [])
    assert run(argv) == 130
    assert [status_of(live_api, a) for a in (agents[0], agents[99])] == [3, 3]
    assert [status_of(live_api, a) for a in (agents[100], agents[149])] == [4, 4]
    said = stderr.getvalue().splitlines()[-1]
    assert said == (
        "agentstatus: interrupted: chunk 1 of 2 was applied (entries 1-100: 100 succeeded, "
        "0 failed); the rest were not sent"
    )
    out = capsys.readouterr().out
    if as_json:
        report = json.loads(out)
        assert report["interrupted"] == {
            "chunks": 2,
            "chunks-applied": 1,
            "entries": 150,
            "entries-applied": 100,
            "in-flight": None,
        }
        assert (report["ok"], report["succeeded"], len(report["results"])) == (False, 100, 100)
    else:
        assert out.splitlines()[-1] == "100 changes: 100 succeeded, 0 failed"


# -- CSV and JSON files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        f"\ufeffagent-id,agent-status\n{BOB},3\n{PADMA},4\n",
        f"agent-id;agent-status\n{BOB};3\n{PADMA};4\n",
        f"\ufeffAGENT-ID ; Agent-Status\r\n{BOB};3\r\n{PADMA};4\r\n",
        f" Agent-Id ,AGENT-STATUS\n{BOB},3\n{PADMA},4\n",
    ],
    ids=["bom", "semicolon", "excel-semicolon", "case-and-spaces"],
)
def test_spreadsheet_csv_is_read(
    live_api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    bulk = tmp_path / "changes.csv"
    bulk.write_bytes(content.encode("utf-8"))
    assert run(["bulk", str(bulk)]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.splitlines()[-1] == "2 changes: 2 succeeded, 0 failed"
    assert [status_of(live_api, BOB), status_of(live_api, PADMA)] == [3, 4]


def test_bulk_from_stdin_with_a_bom(
    live_api: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = f"\ufeffagent-id;agent-status\n{BOB};3\n".encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="latin-1"))
    assert run(["bulk", "-"]) == 0, capsys.readouterr().err
    assert status_of(live_api, BOB) == 3


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (
            "agent-id,agent-status,colour\nagA,3,red\n",
            "unknown column 'colour' (the columns are agent-id,agent-status,"
            "status-code-list-id,status-code-item-id,status-code-item-short-code)",
        ),
        ("agent-status\n3\n", "the CSV header has no agent-id column"),
        ("agent-id,Agent-ID\nagA,agB\n", "column agent-id appears twice in the CSV header"),
        ("agent-id,,agent-status\nagA,,3\n", "column 2 of the CSV header has no name"),
        ('agent-id,agent-status\nagA,3\n"agB,3\nagC,4\n', "line 3: unclosed quote"),
        ('agent-id,agent-status\nagA,"3"x\n', "line 2: ',' expected after '\"'"),
        ("agent-id,agent-status\nagA,3\0\n", "line 2 holds a NUL character"),
        ("", "is empty"),
        ("\ufeff \n", "is empty"),
        ('[{"agent-id": 5}]', "entry 1: agent-id must be a string, got 5"),
        ('[{"agent-id": null}]', "entry 1: agent-id must be a string, got null"),
        ('[{"agent-status": 3}]', "entry 1: agent-id is required"),
        (
            '[{"agent-id": "agA"}, {"agent-id": "agB", "agent-staus": 3, "colour": 1}]',
            "entry 2: unknown fields 'agent-staus', 'colour' (the fields are agent-id,"
            "agent-status,status-code-list-id,status-code-item-id,status-code-item-short-code)",
        ),
        ('{"agents": [], "extra": 1}', "unknown field 'extra' (the fields are agents)"),
        ("[" * 100_000 + "]" * 100_000, "is nested too deeply"),
    ],
    ids=[
        "unknown-column",
        "no-agent-id",
        "twice",
        "unnamed",
        "unclosed-quote",
        "bad-quote",
        "nul",
        "empty",
        "blank",
        "json-id-number",
        "json-id-null",
        "json-id-missing",
        "json-unknown",
        "json-top-unknown",
        "json-deep",
    ],
)
def test_bad_bulk_files_name_the_file_and_the_place(
    connect: Connect, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, said: str
) -> None:
    connect(refused_url())
    bulk = tmp_path / "changes"
    bulk.write_text(content, encoding="utf-8")
    assert run(["bulk", str(bulk)]) == 2
    captured = capsys.readouterr()
    line = one_line(captured.err)
    assert line.startswith(f"agentstatus bulk: error: {bulk}"), line
    assert said in line
    assert captured.out == ""


def test_bulk_files_that_cannot_be_read(
    connect: Connect,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    connect(refused_url())
    latin = tmp_path / "latin.csv"
    latin.write_bytes("agent-id\nagé\n".encode("latin-1"))
    cases = [
        (str(tmp_path), f"cannot read {tmp_path}: Is a directory"),
        (str(tmp_path / "missing.csv"), f"cannot read {tmp_path / 'missing.csv'}: No such file"),
        (str(latin), f"{latin}: line 2 is not UTF-8 text"),
    ]
    for name, said in cases:
        assert run(["bulk", name]) == 2
        assert said in one_line(capsys.readouterr().err)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert run(["bulk", "-"]) == 2
    assert one_line(capsys.readouterr().err) == "agentstatus bulk: error: stdin is empty"


# -- usage -----------------------------------------------------------------------------------


def test_our_usage_errors_are_one_line_without_the_usage_block(
    connect: Connect, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    connect(refused_url())
    assert run(["set", BOB, "3", "--list-id", "801"]) == 2
    assert one_line(capsys.readouterr().err) == (
        "agentstatus set: error: --list-id and --item-id go together"
    )
    monkeypatch.delenv("AGENTSTATUS_TENANT")
    assert run(["list"]) == 2
    assert one_line(capsys.readouterr().err) == (
        "agentstatus list: error: no tenant: use --tenant or set AGENTSTATUS_TENANT"
    )
    assert run(["--token", "x", "list"]) == 2
    assert one_line(capsys.readouterr().err).startswith(
        "agentstatus: error: there is no --token option"
    )


def test_an_argparse_error_in_a_command_prints_that_commands_usage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["set", BOB, "SLEEPING"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: agentstatus set ")
    assert "COMMAND" not in err
    assert err.splitlines()[-1].startswith("agentstatus set: error: argument STATUS:")


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--timeout", "nan", "list"], "argument --timeout: must be a number of seconds"),
        (["list", "--timeout", "inf"], "argument --timeout: must be a number of seconds"),
        (["list", "--timeout", "1e300"], "argument --timeout: must be a number of seconds"),
        (["list", "--timeout", "-1"], "argument --timeout: must be a number of seconds"),
        (["list", "--retries", "-1"], "argument --retries: must be a whole number from 0 to 100"),
        (["get", ""], "argument AGENT: must not be empty"),
        (["set", " ", "3"], "argument AGENT: must not be empty"),
    ],
    ids=["nan", "inf", "huge", "negative", "retries", "empty-agent", "blank-agent"],
)
def test_bad_option_values_are_usage_errors(
    connect: Connect, capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    connect(refused_url())
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert said in err.splitlines()[-1]
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://[::1/api/v1", "base URL must be http(s)://host/..., got 'http://[::1/api/v1'"),
        ("http://127.0.0.1:99999/api/v1", "Port out of range 0-65535"),
    ],
    ids=["ipv6", "port"],
)
def test_a_malformed_base_url_is_a_usage_error(
    connect: Connect, capsys: pytest.CaptureFixture[str], url: str, said: str
) -> None:
    connect(url)
    assert run(["list"]) == 2
    assert said in one_line(capsys.readouterr().err)


# -- dot segments ----------------------------------------------------------------------------

UNSENDABLE_SAID = "cannot be sent in a URL path: it would name another resource"
DOT_ROWS = ("..", BOB, ".")


@pytest.mark.parametrize(
    ("argv", "dots"),
    [
        (["get", ".."], "'..'"),
        (["get", "."], "'.'"),
        (["set", "..", "3"], "'..'"),
        (["set", " . ", "LOGGED_IN"], "'.'"),
    ],
    ids=["get-dotdot", "get-dot", "set-dotdot", "set-dot-spaced"],
)
def test_a_dot_segment_agent_is_a_usage_error(
    connect: Connect, capsys: pytest.CaptureFixture[str], argv: list[str], dots: str
) -> None:
    """``requests`` would send ``/agentstatus/agents/..`` as ``/agentstatus/``: refused before
    any connection is tried (nobody listens, so an attempt would say so)."""
    connect(refused_url())
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        f"agentstatus {argv[0]}: error: argument AGENT: {dots} {UNSENDABLE_SAID}"
    )
    assert "Traceback" not in err


def test_the_console_script_refuses_a_dot_segment_agent_without_a_traceback(
    connect: Connect,
) -> None:
    connect(refused_url())
    done = subprocess.run(
        [str(Path(sys.executable).with_name("agentstatus")), "get", ".."],
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ),
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"agentstatus get: error: argument AGENT: '..' {UNSENDABLE_SAID}"
    )


@pytest.mark.parametrize("tenant", [".", ".."])
def test_a_dot_segment_tenant_is_one_line(
    connect: Connect,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tenant: str,
) -> None:
    connect(refused_url())
    assert run(["--tenant", tenant, "get", BOB]) == 2
    said = f"tenant {tenant!r} {UNSENDABLE_SAID}"
    assert one_line(capsys.readouterr().err) == f"agentstatus get: error: {said}"
    monkeypatch.setenv("AGENTSTATUS_TENANT", tenant)
    assert run(["list"]) == 2
    assert one_line(capsys.readouterr().err) == f"agentstatus list: error: {said}"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("changes.csv", f"agent-id,agent-status\n..,3\n{BOB},3\n.,3\n"),
        ("changes.json", json.dumps([{"agent-id": id_, "agent-status": 3} for id_ in DOT_ROWS])),
    ],
    ids=["csv", "json"],
)
def test_dot_segment_ids_in_a_bulk_file_are_entries_the_service_refuses(
    live_api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str
) -> None:
    """A bulk entry's id travels in the body, where ``.`` is only an unknown agent: the other
    entries are applied and the run is a partial failure, not a traceback."""
    bulk = tmp_path / name
    bulk.write_text(content, encoding="utf-8")
    assert run(["--json", "bulk", str(bulk)]) == 3
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    results = json.loads(captured.out)["results"]
    assert [(entry["agent-id"], entry["change-status"] // 100) for entry in results] == [
        ("..", 4),
        (BOB, 2),
        (".", 4),
    ]
    assert status_of(live_api, BOB) == 3


# -- the token file --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"\x86\xff\x00token", "is not UTF-8 text"),
        (b"first-token\nsecond-token\n", "holds spaces or control characters"),
        (b"x" * 70_000, "is too large to be a token"),
        (b" \n", "is empty"),
    ],
    ids=["binary", "two-lines", "huge", "empty"],
)
def test_bad_token_files_are_usage_errors_that_never_show_the_token(
    connect: Connect,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    said: str,
) -> None:
    connect(refused_url())
    monkeypatch.delenv("AGENTSTATUS_TOKEN")
    token_file = tmp_path / "token"
    token_file.write_bytes(content)
    assert run(["list", "--token-file", str(token_file)]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"agentstatus list: error: --token-file {token_file} ")
    assert said in line
    assert "token\n" not in line and "second-token" not in line


def test_a_directory_as_token_file(
    connect: Connect,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    connect(refused_url())
    monkeypatch.delenv("AGENTSTATUS_TOKEN")
    assert run(["list", "--token-file", str(tmp_path)]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"agentstatus list: error: cannot read --token-file {tmp_path}: Is a directory"
    )


def test_settings_that_are_not_utf8_are_usage_errors(
    connect: Connect, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a shell passes from a Latin-1 terminal arrives with surrogates."""
    connect(refused_url())
    monkeypatch.setenv("AGENTSTATUS_USERNAME", "ren\udce9")
    assert run(["list"]) == 2
    assert one_line(capsys.readouterr().err) == (
        "agentstatus list: error: AGENTSTATUS_USERNAME is not valid UTF-8"
    )
    monkeypatch.setenv("AGENTSTATUS_USERNAME", DEMO_USERNAME)
    assert run(["get", "ag\udce9"]) == 2
    assert one_line(capsys.readouterr().err) == (
        "agentstatus get: error: argument 2 is not valid UTF-8"
    )


# -- connection failures ---------------------------------------------------------------------


def origin(api_url: str) -> str:
    return api_url.removesuffix("/api/v1")


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_connection_refused_is_said_once_without_urllib3(
    connect: Connect, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    url = refused_url()
    connect(url)
    assert run(["--retries", "0", "list"] + (["--json"] if as_json else [])) == 1
    captured = capsys.readouterr()
    said = f"cannot connect to {origin(url)} (connection refused)"
    assert one_line(captured.err) == f"agentstatus: error: {said}"
    if as_json:
        assert json.loads(captured.out)["error"]["message"] == said


def test_an_unknown_host_is_said_once(connect: Connect, capsys: pytest.CaptureFixture[str]) -> None:
    connect("http://nonexistent.invalid/api/v1")
    assert run(["--retries", "0", "list"]) == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith(
        "agentstatus: error: cannot connect to http://nonexistent.invalid "
        "(host name lookup failed: "
    )
    assert not any(word in line for word in URLLIB3_WORDS)


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A server that takes connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/api/v1"


def test_a_timeout_is_said_once(
    connect: Connect, silent_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    connect(silent_url)
    assert run(["--retries", "0", "--timeout", "0.2", "get", BOB]) == 1
    assert one_line(capsys.readouterr().err) == (
        f"agentstatus: error: GET {silent_url}/tenants/{DEMO_TENANT}/agentstatus/agents/{BOB}: "
        "no answer within 0.2 s"
    )


def test_a_dropped_connection_is_said_once(
    connect: Connect, capsys: pytest.CaptureFixture[str]
) -> None:
    with ScriptedServer([Canned(drop=True)]) as server:
        connect(server.api_url)
        assert run(["--retries", "0", "set", BOB, "3"]) == 1
    line = one_line(capsys.readouterr().err)
    assert line == (
        f"agentstatus: error: PUT {server.api_url}/tenants/{DEMO_TENANT}/agentstatus/agents/"
        f"{BOB}: the connection was closed before an answer came"
    )


@pytest.fixture
def garbage_url() -> Iterator[str]:
    """A server that answers every connection with a line that is not HTTP."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = listener.accept()
                with connection:
                    connection.recv(65536)
                    connection.sendall(b"garbage\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/api/v1"
    listener.close()


def test_an_answer_that_is_not_http_is_said_once(
    connect: Connect, garbage_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    connect(garbage_url)
    assert run(["--retries", "0", "list"]) == 1
    assert one_line(capsys.readouterr().err) == (
        f"agentstatus: error: GET {garbage_url}/tenants/{DEMO_TENANT}/agentstatus/agents: "
        f"the answer from {origin(garbage_url)} was not HTTP"
    )


def test_tls_to_a_plain_http_server_is_said_once(
    connect: Connect, capsys: pytest.CaptureFixture[str]
) -> None:
    with ScriptedServer([]) as server:
        https = server.api_url.replace("http://", "https://")
        connect(https)
        assert run(["--retries", "0", "list"]) == 1
    line = one_line(capsys.readouterr().err)
    assert f": TLS failure with {origin(https)} (wrong version number)" in line
    assert not any(word in line for word in URLLIB3_WORDS)


def test_a_bulk_chunk_that_fails_says_which_chunks_were_applied(
    connect: Connect, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agents = [f"ag{n:03}" for n in range(150)]
    bulk = tmp_path / "changes.json"
    bulk.write_text(json.dumps([{"agent-id": a, "agent-status": 3} for a in agents]), "utf-8")
    failure = Canned(500, {"status": 500, "detail": "disk full"})
    with ScriptedServer([bulk_result(*agents[:100]), failure]) as server:
        connect(server.api_url)
        assert run(["--retries", "0", "bulk", str(bulk)]) == 1
    captured = capsys.readouterr()
    said, error = captured.err.splitlines()
    assert said == (
        "agentstatus: chunk 1 of 2 was applied (entries 1-100: 100 succeeded, 0 failed); "
        "chunk 2 (entries 101-150) failed and may have been applied"
    )
    assert error.endswith("500 Internal Server Error: disk full")
    assert captured.out.splitlines()[-1] == "100 changes: 100 succeeded, 0 failed"


# -- pipes -----------------------------------------------------------------------------------


def test_a_closed_stdout_pipe_ends_quietly(live_api: str) -> None:
    """``agentstatus list | head -0``: the reader is gone before anything is written."""
    script = Path(sys.executable).with_name("agentstatus")
    read_end, write_end = os.pipe()
    os.close(read_end)
    done = subprocess.run(
        [str(script), "list"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        timeout=30,
        env=dict(os.environ),
        check=False,
    )
    os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == 141
