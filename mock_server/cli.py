"""``agentstatus-mock``: start the emulator from the command line."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mock_server.app import create_app
from mock_server.core.fixtures import FixtureError, load_fixture
from mock_server.core.profiles import PROFILES
from mock_server.core.sqlite_store import StateFileError
from mock_server.http.control import ADMIN_HEADER, ADMIN_ROOT, ADMIN_TOKEN_ENV
from mock_server.live.capture import add_import_command
from mock_server.live.proxy import add_proxy_command
from mock_server.live.recording import add_validate_command
from mock_server.live.replay import add_diff_command
from mock_server.serving.production import (
    WorkerConfig,
    new_ready_directory,
    plan_state,
    remove_ready_directory,
)
from mock_server.serving.production import serve as serve_with_granian
from mock_server.serving.threaded import add_listen_options, port_in_use, refuses_remote
from mock_server.serving.tls import TLSError, TLSFiles, TLSOptions, prepare_tls, tls_directory
from mock_server.testdouble.journal import DEFAULT_JOURNAL_SIZE
from schemas import project_version
from schemas.wire import API_BASE, agents_path, basic_authorization


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentstatus-mock", description="An offline, stateful 8x8 Agent Status API."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {project_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the emulator")
    add_listen_options(serve, port=8080)
    serve.add_argument(
        "--fixture", help="JSON or YAML tenant set (default: the built-in demo tenants)"
    )
    serve.add_argument(
        "--profile",
        default="default",
        choices=sorted(PROFILES),
        help="which vendor document to follow",
    )
    serve.add_argument(
        "--admin-token",
        default=os.environ.get(ADMIN_TOKEN_ENV),
        help=f"require {ADMIN_HEADER} on {ADMIN_ROOT}/ (or set {ADMIN_TOKEN_ENV}); "
        "mandatory on a non-loopback host",
    )
    serve.add_argument(
        "--validate-responses",
        action="store_true",
        help="check every response against the OpenAPI documents; one that breaks them "
        "becomes a 500 naming the violation",
    )
    serve.add_argument(
        "--journal-size",
        type=_positive,
        default=DEFAULT_JOURNAL_SIZE,
        help=f"how many API exchanges {ADMIN_ROOT}/requests keeps (default {DEFAULT_JOURNAL_SIZE})",
    )
    serve.add_argument(
        "--watch",
        action="store_true",
        help="reload --fixture when the file changes (a bad edit keeps the old state)",
    )
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="worker processes; more than 1 share one SQLite state, faults and journal (default 1)",
    )
    serve.add_argument(
        "--state",
        metavar="FILE",
        help="keep the state in this SQLite file, shared by all workers and kept across "
        "restarts; the fixture seeds it only when it is new (default: in memory)",
    )
    serve.add_argument(
        "--quiet",
        action="store_true",
        help="no access log (by default one line per request on stderr)",
    )
    serve.add_argument(
        "--stream-time-scale",
        type=_time_scale,
        default=1.0,
        metavar="FACTOR",
        help="multiply the legacy stream's durations (the hour a subscription lasts, the two "
        f"hours it can be resumed, heartbeats) by this, from {MIN_TIME_SCALE} to 1, so that a "
        "test need not wait an hour: 0.001 makes the hour 3.6 s (default 1)",
    )
    add_tls_options(serve)
    add_import_command(commands)
    add_proxy_command(commands)
    add_validate_command(commands)
    add_diff_command(commands)
    return parser


def add_tls_options(serve: argparse.ArgumentParser) -> None:
    tls = serve.add_argument_group(
        "TLS", "HTTPS for the API and the control plane; any --tls-* option implies --tls"
    )
    tls.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with a certificate from a local CA, made once and kept in "
        "<--state>.tls/ or $XDG_CACHE_HOME/agentstatus-mock/tls/; the 'TLS CA:' line names its "
        "file for REQUESTS_CA_BUNDLE / SSL_CERT_FILE",
    )
    tls.add_argument("--tls-ca-cert", metavar="FILE", help="sign with this CA (PEM) instead")
    tls.add_argument("--tls-ca-key", metavar="FILE", help="the key of --tls-ca-cert (PEM)")
    tls.add_argument(
        "--tls-cert", metavar="FILE", help="serve this certificate (PEM, chain after it) as it is"
    )
    tls.add_argument("--tls-key", metavar="FILE", help="the key of --tls-cert (PEM)")


def _tls_files(args: argparse.Namespace) -> TLSFiles | None:
    """The certificate to serve, or None for plain HTTP; ``TLSError`` for unusable files."""
    options = TLSOptions(
        certificate=args.tls_cert,
        key=args.tls_key,
        ca_certificate=args.tls_ca_cert,
        ca_key=args.tls_ca_key,
    )
    if not (args.tls or options.any_given()):
        return None
    directory = tls_directory(args.state, os.environ)
    return prepare_tls(options, host=args.host, directory=directory)


def _tls_lines(tls: TLSFiles | None) -> list[str]:
    if tls is None:
        return []
    if tls.authority is None:
        return [f"TLS: serving your certificate {tls.certificate}; clients must trust its issuer."]
    return [f"TLS CA: {tls.authority}"]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


MIN_TIME_SCALE = 0.0001
"""The shortest legacy hour: 0.36 s, still many heartbeats long."""


def _time_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not MIN_TIME_SCALE <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be from {MIN_TIME_SCALE} to 1, got {text}")
    return value


def start_banner(
    base_url: str,
    fixture_path: str | None,
    document: dict[str, object],
    authority: Path | None = None,
) -> str:
    """The base URL and a curl line that works as pasted (placeholders for a custom token;
    ``--cacert`` for the authority of a TLS certificate)."""
    tenants = document["tenants"]
    first = tenants[0] if isinstance(tenants, list) and tenants else None
    lines = [f"Agent Status API emulator on {base_url}{API_BASE}"]
    if first is not None:
        url = f"{base_url}{API_BASE}{agents_path(first['tenant-id'])}"
        curl = "curl" if authority is None else f"curl --cacert '{authority}'"
        if fixture_path is None:
            header = basic_authorization(first["username"], first["token"])
            lines.append(f"Try: {curl} --location '{url}' --header 'Authorization: {header}'")
        else:
            lines.append(f"Try: {curl} -u '{first['username']}:YOUR_TOKEN' '{url}'")
    return "\n".join(lines)


SERVING_MODULES = ("fcntl", "granian")
"""What ``serve`` needs that Python lacks on some platforms (Windows has no ``fcntl``); the
pytest plugin and ``emulate()`` need neither."""


def missing_for_serving() -> list[str]:
    """The modules of ``SERVING_MODULES`` this Python cannot import."""
    missing = []
    for name in SERVING_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def serve(args: argparse.Namespace) -> int:
    missing = missing_for_serving()
    if missing:
        print(
            f"agentstatus-mock: serve needs {' and '.join(missing)}, which Python lacks on this "
            f"platform ({sys.platform}): serve runs on Linux and macOS; here use the pytest "
            "plugin or emulate() (no server process), or run serve under WSL or in a container.",
            file=sys.stderr,
        )
        return 2
    if refuses_remote(
        "agentstatus-mock",
        args.host,
        unlocked=bool(args.admin_token),
        reason=" without --admin-token: the control plane would be open to the network.",
    ):
        return 2
    try:
        document = load_fixture(args.fixture)
    except FixtureError as error:
        print(f"agentstatus-mock: bad fixture: {error.detail}", file=sys.stderr)
        return 2
    if args.watch and (args.fixture is None or args.workers > 1):
        print("agentstatus-mock: --watch needs --fixture and a single worker.", file=sys.stderr)
        return 2
    if port_in_use(args.host, args.port):
        print(
            f"agentstatus-mock: port {args.port} is in use on {args.host}: choose another with "
            "--port (make run PORT=...), or 0 for a free one.",
            file=sys.stderr,
        )
        return 2
    try:
        tls = _tls_files(args)
    except TLSError as error:
        print(f"agentstatus-mock: {error}", file=sys.stderr)
        return 2
    plan = plan_state(args.state, args.workers)
    config = WorkerConfig(
        document=document,
        profile=args.profile,
        admin_token=args.admin_token,
        validate_responses=args.validate_responses,
        journal_size=args.journal_size,
        state_file=plan.state_file,
        workers=args.workers,
        ready_directory=new_ready_directory(),
        watch=args.fixture if args.watch else None,
        access_log=not args.quiet,
        stream_time_scale=args.stream_time_scale,
    )

    def announce(port: int) -> None:
        base_url = f"{'http' if tls is None else 'https'}://{args.host}:{port}"
        authority = None if tls is None else tls.authority
        for line in _tls_lines(tls):
            print(line)
        print(start_banner(base_url, args.fixture, document, authority), flush=True)
        print(f"Profile: {args.profile}. Control plane: {ADMIN_ROOT}/. Stop with Ctrl-C.")
        print(f"Workers: {args.workers} (granian). State: {plan.description}.", flush=True)

    try:
        serve_with_granian(create_app, config, args.host, args.port, announce, tls)
    except StateFileError as error:
        print(f"agentstatus-mock: --state {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        remove_ready_directory(config.ready_directory)
        plan.discard()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is not None:
        return int(handler(args))
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
