"""``agentstatus``: the client from a shell, for people (tables) and scripts (``--json``).

There is deliberately no ``--token`` option: a token typed on the command line lands in the
shell history and in every process listing. The token comes from ``--token-file``, the
``AGENTSTATUS_TOKEN`` variable, or a hidden prompt when stdin is a terminal.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from client.api import DEFAULT_TIMEOUT, AgentStatusClient
from client.bulk_file import CSV_COLUMNS, BulkFileError, read_changes
from client.display import ProgressBar, show_agents, show_bulk, show_error, show_set
from client.errors import AgentStatusError, ConfigurationError
from client.models import StatusCode, parse_status
from client.retry import RetryPolicy
from schemas import project_version
from schemas.wire import (
    BULK_LIMIT,
    ENV_BASE_URL,
    ENV_PLATFORM,
    ENV_TENANT,
    ENV_TOKEN,
    ENV_USERNAME,
)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3

EPILOG = f"""\
connection settings (options win over the environment):
  {ENV_BASE_URL} or {ENV_PLATFORM}, {ENV_TENANT}, {ENV_USERNAME},
  {ENV_TOKEN} (or --token-file, or a hidden prompt on a terminal; there is
  no --token option, so the token stays out of shell history)

bulk FILE: CSV with the header {",".join(CSV_COLUMNS)}
  (only agent-id is required), or JSON: a list of entries or {{"agents": [...]}}
  with the same field names. "-" reads stdin.

exit codes:
  {EXIT_OK}  success
  {EXIT_FAILURE}  failure: the request was refused or could not be made; or every bulk entry failed
  {EXIT_USAGE}  usage error: bad options or arguments, missing settings, unreadable bulk file
  {EXIT_PARTIAL}  partial failure: some bulk entries succeeded, some failed
"""


class UsageError(Exception):
    """A mistake in how the command was called: exit 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentstatus",
        description="Read and set 8x8 Contact Center agent statuses.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {project_version()}")
    _add_common(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,
        )
        _add_common(sub, suppress=True)
        return sub

    listing = command("list", "list the agents of the tenant")
    listing.add_argument("--group", metavar="ID", help="only the agents of this group")
    get = command("get", "show one agent")
    get.add_argument("agent", metavar="AGENT", help="agent id")
    set_ = command("set", "set one agent's status")
    set_.add_argument("agent", metavar="AGENT", help="agent id")
    set_.add_argument(
        "status", metavar="STATUS", type=_status, help="number or name, e.g. 3 or ON_BREAK"
    )
    set_.add_argument("--list-id", type=int, help="status-code list id (with --item-id)")
    set_.add_argument("--item-id", type=int, help="status-code item id (with --list-id)")
    set_.add_argument("--short-code", help="the item's short code (optional)")
    bulk = command("bulk", "apply many changes from a CSV or JSON file")
    bulk.add_argument("file", metavar="FILE", help="CSV or JSON file, or - for stdin")
    bulk.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bar on stderr (auto: on a terminal, over one request's worth)",
    )
    return parser


def _add_common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Connection and output options, accepted before or after the command."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("connection")
    where = group.add_mutually_exclusive_group()
    where.add_argument(
        "--base-url",
        metavar="URL",
        default=default(None),
        help="e.g. https://vcc-na12.8x8.com/api/v1",
    )
    where.add_argument(
        "--platform", metavar="NAME", default=default(None), help="e.g. na12, eu7, bc2"
    )
    group.add_argument("--tenant", metavar="ID", default=default(None), help="tenant id")
    group.add_argument("--username", metavar="NAME", default=default(None), help="API username")
    group.add_argument(
        "--token-file",
        metavar="PATH",
        type=Path,
        default=default(None),
        help="file holding the action token",
    )
    group.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        default=default(None),
        help="seconds to wait for each answer (default: 3 to connect, 30 to read)",
    )
    group.add_argument(
        "--retries",
        metavar="N",
        type=int,
        default=default(3),
        help="retries of transient failures (default 3)",
    )
    group.add_argument(
        "--bulk-method",
        choices=("POST", "PUT"),
        default=default("POST"),
        help="POST (API reference, default) or PUT (developer guide)",
    )
    group.add_argument(
        "--bulk-fallback",
        action="store_true",
        default=default(False),
        help="if the bulk method is refused, try the other one",
    )
    parser.add_argument(
        "--json", action="store_true", default=default(False), help="JSON output for scripts"
    )


def _status(text: str) -> int:
    try:
        return parse_status(text)
    except ValueError as problem:
        raise argparse.ArgumentTypeError(str(problem)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the return value is the exit code (see ``--help``)."""
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    if any(word == "--token" or word.startswith("--token=") for word in arguments):
        parser.print_usage(sys.stderr)
        print(
            f"agentstatus: error: there is no --token option (it would end up in shell "
            f"history); set {ENV_TOKEN} or use --token-file",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    try:
        with _client(args, os.environ) as api:
            return _run(api, args)
    except UsageError as problem:
        parser.print_usage(sys.stderr)
        print(f"agentstatus: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigurationError as problem:
        print(f"agentstatus: error: {problem.message}", file=sys.stderr)
        return EXIT_USAGE


def _client(args: argparse.Namespace, env: Mapping[str, str]) -> AgentStatusClient:
    base_url = args.base_url or (None if args.platform else env.get(ENV_BASE_URL) or None)
    platform = args.platform or (None if base_url else env.get(ENV_PLATFORM) or None)
    if base_url is None and platform is None:
        raise UsageError(f"no API address: use --base-url or --platform, or set {ENV_BASE_URL}")
    tenant = args.tenant or env.get(ENV_TENANT)
    if not tenant:
        raise UsageError(f"no tenant: use --tenant or set {ENV_TENANT}")
    username = args.username or env.get(ENV_USERNAME)
    if not username:
        raise UsageError(f"no username: use --username or set {ENV_USERNAME}")
    if args.retries < 0 or (args.timeout is not None and args.timeout <= 0):
        raise UsageError("--retries must be 0 or more and --timeout more than 0")
    return AgentStatusClient(
        base_url,
        platform=platform,
        tenant=tenant,
        username=username,
        token=_token(args.token_file, env),
        timeout=DEFAULT_TIMEOUT if args.timeout is None else args.timeout,
        retry=RetryPolicy(max_attempts=args.retries + 1),
        bulk_method=args.bulk_method,
        bulk_method_fallback=args.bulk_fallback,
    )


def _token(token_file: Path | None, env: Mapping[str, str]) -> str:
    """From --token-file, the environment, or a hidden prompt; never from the command line."""
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as problem:
            raise UsageError(f"cannot read --token-file: {problem.strerror}") from None
        if not token:
            raise UsageError(f"--token-file {token_file} is empty")
        return token
    token = env.get(ENV_TOKEN, "").strip()
    if token:
        return token
    if sys.stdin.isatty():
        token = getpass.getpass("Action token: ").strip()
        if token:
            return token
    raise UsageError(f"no token: set {ENV_TOKEN} or use --token-file")


def _run(api: AgentStatusClient, args: argparse.Namespace) -> int:
    """The command itself; API failures become exit 1 with the server's explanation."""
    as_json: bool = args.json
    try:
        if args.command == "list":
            show_agents(api.list_agents(args.group), as_json)
        elif args.command == "get":
            show_agents([api.get_agent(args.agent)], as_json, single=True)
        elif args.command == "set":
            outcome = api.set_agent_status(args.agent, args.status, _status_code(args))
            show_set(outcome, as_json)
        else:
            return _bulk(api, args)
    except AgentStatusError as error:
        show_error(error, as_json)
        return EXIT_FAILURE
    return EXIT_OK


def _status_code(args: argparse.Namespace) -> StatusCode | None:
    if args.list_id is None and args.item_id is None:
        if args.short_code is not None:
            raise UsageError("--short-code needs --list-id and --item-id")
        return None
    if args.list_id is None or args.item_id is None:
        raise UsageError("--list-id and --item-id go together")
    return StatusCode(args.list_id, args.item_id, args.short_code)


def _bulk(api: AgentStatusClient, args: argparse.Namespace) -> int:
    try:
        changes = read_changes(args.file)
    except BulkFileError as problem:
        raise UsageError(str(problem)) from None
    show_bar = args.progress == "always" or (
        args.progress == "auto" and sys.stderr.isatty() and len(changes) > BULK_LIMIT
    )
    bar = ProgressBar(sys.stderr, len(changes)) if show_bar else None
    try:
        result = api.set_agents_statuses(changes, progress=bar)
    except AgentStatusError as error:
        if bar is not None:
            bar.finish()
        if error.partial is not None and len(error.partial):
            show_bulk(error.partial, args.json, to=sys.stderr if args.json else sys.stdout)
        show_error(error, args.json)
        return EXIT_FAILURE
    if bar is not None:
        bar.finish()
    show_bulk(result, args.json)
    if result.ok:
        return EXIT_OK
    return EXIT_PARTIAL if result.succeeded else EXIT_FAILURE
