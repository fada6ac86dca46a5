"""The pytest plugin's user errors: each fails the tests it concerns with one line naming what
was wrong (the option or marker argument), never a traceback of the plugin or of urllib3."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from fnmatch import fnmatch
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from mock_server.app import create_app
from mock_server.http.control import ADMIN_TOKEN_ENV
from mock_server.serving.threaded import start_in_thread

pytest_plugins = ["pytester"]

USES_THE_FIXTURE = """\
def test_uses_the_emulator(agentstatus_emulator):
    pass


def test_also_uses_it(agentstatus_emulator):
    pass
"""

INTERNALS = ("Traceback", "urllib3", "MaxRetryError", "HTTPConnectionPool", "pytest_plugin.py")


def assert_one_line_errors(result: pytest.RunResult, errors: int, line: str) -> None:
    """``errors`` tests errored, each report being the one line ``line`` (an fnmatch pattern)
    right under its header, and no traceback into the plugin or the HTTP library anywhere."""
    result.assert_outcomes(errors=errors)
    result.stdout.fnmatch_lines(["*ERROR at setup of *", line], consecutive=True)
    assert len([seen for seen in result.stdout.lines if fnmatch(seen, line)]) == errors
    output = result.stdout.str() + result.stderr.str()
    assert not [word for word in INTERNALS if word in output], output


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_agentstatus_url_where_nothing_answers(pytester: pytest.Pytester) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    pytester.makepyfile(test_uses=USES_THE_FIXTURE)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--agentstatus-url", url)
    assert_one_line_errors(
        result,
        2,
        f"--agentstatus-url {url}: nothing answers there: cannot connect to {url}"
        " (connection refused)",
    )


class NotAnEmulator(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: nothing of this server's belongs in the inner session's output."""


@pytest.fixture
def not_an_emulator() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), NotAnEmulator)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_an_agentstatus_url_where_no_emulator_answers(
    pytester: pytest.Pytester, not_an_emulator: str
) -> None:
    pytester.makepyfile(test_uses=USES_THE_FIXTURE)
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--agentstatus-url", not_an_emulator
    )
    assert_one_line_errors(
        result,
        2,
        f"--agentstatus-url {not_an_emulator}: what answers there is not an "
        "agentstatus emulator (GET /__admin/health -> 404)",
    )


def test_an_agentstatus_url_that_is_no_http_url(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_uses=USES_THE_FIXTURE)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--agentstatus-url", "x:1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --agentstatus-url 'x:1': must be an http(s) URL*"])


def test_an_emulator_that_wants_another_admin_token(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ADMIN_TOKEN_ENV, "not-the-one")
    pytester.makepyfile(test_uses=USES_THE_FIXTURE)
    with start_in_thread(create_app(admin_token="s3cret-admin")) as server:
        result = pytester.runpytest_inprocess(
            "-p", "no:cacheprovider", "--agentstatus-url", server.base_url
        )
    assert_one_line_errors(
        result,
        2,
        f"agentstatus_emulator: {server.base_url}: PUT /__admin/tenants/* -> 403: "
        "The control plane needs a valid X-Admin-Token header. "
        f"(set {ADMIN_TOKEN_ENV} to the emulator's admin token)",
    )
    assert "s3cret-admin" not in result.stdout.str() and "not-the-one" not in result.stdout.str()


def test_a_profile_with_an_agentstatus_url(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_marked="""\
import pytest

@pytest.mark.agentstatus(profile="guide")
def test_marked(agentstatus_emulator):
    pass
"""
    )
    with start_in_thread(create_app()) as server:
        result = pytester.runpytest_inprocess(
            "-p", "no:cacheprovider", "--agentstatus-url", server.base_url
        )
    assert_one_line_errors(
        result,
        1,
        "@pytest.mark.agentstatus(profile='guide'): needs an emulator this plugin "
        "starts; --agentstatus-url points at one whose profile it cannot change",
    )


MARKED = """\
import pathlib

import pytest


@pytest.mark.agentstatus({arguments})
def test_marked(agentstatus_emulator):
    pass
"""

INVALID_FIXTURE = "tenants:\n  - {tenant-id: one, username: u1}\n"
UNREADABLE_YAML = "tenants: [\n  - {tenant-id: one\n"


@pytest.mark.parametrize(
    ("arguments", "line"),
    [
        (
            "tenant='nosuch'",
            "@pytest.mark.agentstatus(tenant='nosuch'): the demo tenant set has no such tenant;"
            " its tenants are acmecorp01, globex02, initech03",
        ),
        (
            "fixture='mine.yaml', tenant='nosuch'",
            "@pytest.mark.agentstatus(tenant='nosuch'): mine.yaml has no such tenant;"
            " its tenants are one, two",
        ),
        (
            "fixtures='mine.yaml'",
            "@pytest.mark.agentstatus(fixtures=...): unknown argument;"
            " it takes fixture, tenant, profile",
        ),
        (
            "'mine.yaml'",
            "@pytest.mark.agentstatus('mine.yaml'): arguments must be named:"
            " fixture=, tenant=, profile=",
        ),
        (
            "fixture=3",
            "@pytest.mark.agentstatus(fixture=3): must be a file path (str or os.PathLike),"
            " got int",
        ),
        ("tenant=5", "@pytest.mark.agentstatus(tenant=5): must be a tenant id (str), got int"),
        (
            "profile=['guide']",
            "@pytest.mark.agentstatus(profile=[[]'guide'[]]): must be a profile name (str),"
            " got list",
        ),
        (
            "profile='nosuch'",
            "@pytest.mark.agentstatus(profile='nosuch'): unknown profile 'nosuch';"
            " choose one of: default, guide, reference",
        ),
        (
            "fixture='missing.yaml'",
            "@pytest.mark.agentstatus(fixture='missing.yaml'): */missing.yaml: cannot be read:*",
        ),
        (
            "fixture=pathlib.Path('invalid.yaml')",
            "@pytest.mark.agentstatus(fixture=*invalid.yaml*): */invalid.yaml: $.tenants[[]0[]]:"
            " 'token' is a required property",
        ),
        (
            "fixture='unreadable.yaml'",
            "@pytest.mark.agentstatus(fixture='unreadable.yaml'): */unreadable.yaml:"
            " not valid YAML*",
        ),
    ],
    ids=[
        "demo-tenant",
        "file-tenant",
        "unknown-argument",
        "positional",
        "fixture-type",
        "tenant-type",
        "profile-type",
        "profile-name",
        "missing-file",
        "invalid-file",
        "unreadable-file",
    ],
)
def test_a_marker_argument_that_is_wrong(
    pytester: pytest.Pytester, arguments: str, line: str
) -> None:
    pytester.makefile(
        ".yaml",
        mine="tenants:\n  - {tenant-id: one, username: u1, token: t1}\n"
        "  - {tenant-id: two, username: u2, token: t2}\n",
        invalid=INVALID_FIXTURE,
        unreadable=UNREADABLE_YAML,
    )
    pytester.makepyfile(test_marked=MARKED.format(arguments=arguments))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    assert_one_line_errors(result, 1, line)
