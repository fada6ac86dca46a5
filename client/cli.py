"""``agentstatus``: the client from a shell, for people (tables) and scripts (``--json``).

There is deliberately no ``--token`` option: a token typed on the command line lands in the
shell history and in every process listing. The token comes from ``--token-file``, the
``AGENTSTATUS_TOKEN`` variable, or a hidden prompt when stdin is a terminal.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import io
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from client.api import DEFAULT_TIMEOUT, AgentStatusClient
from client.bulk import BULK_LIMIT
from client.config import ENV_BASE_URL, ENV_PLATFORM, ENV_TENANT, ENV_TOKEN, ENV_USERNAME
from client.errors import AgentStatusError, ChangeRejectedError, ConfigurationError
from client.models import (
    AGENT_ID,
    AGENT_STATUS,
    ITEM_ID,
    LIST_ID,
    SHORT_CODE,
    Agent,
    BulkResult,
    ChangeOutcome,
    StatusChange,
    StatusCode,
    parse_status,
    status_label,
)
from client.retry import RetryPolicy

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3

CSV_COLUMNS = (AGENT_ID, AGENT_STATUS, LIST_ID, ITEM_ID, SHORT_CODE)
PROGRESS_WIDTH = 30

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
            _show_agents(api.list_agents(args.group), as_json)
        elif args.command == "get":
            _show_agents([api.get_agent(args.agent)], as_json, single=True)
        elif args.command == "set":
            outcome = api.set_agent_status(args.agent, args.status, _status_code(args))
            _show_set(outcome, as_json)
        else:
            return _bulk(api, args)
    except AgentStatusError as error:
        _show_error(error, as_json)
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
    changes = read_changes(args.file)
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
            _show_bulk(error.partial, args.json, to=sys.stderr if args.json else sys.stdout)
        _show_error(error, args.json)
        return EXIT_FAILURE
    if bar is not None:
        bar.finish()
    _show_bulk(result, args.json)
    if result.ok:
        return EXIT_OK
    return EXIT_PARTIAL if result.succeeded else EXIT_FAILURE


def read_changes(name: str) -> list[StatusChange]:
    """The changes of a bulk file: CSV with the wire names as header, or JSON."""
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except OSError as problem:
        raise UsageError(f"cannot read {name}: {problem.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{name} is not UTF-8 text") from None
    if text.lstrip().startswith(("[", "{")):
        return _json_changes(name, text)
    return _csv_changes(name, text)


def _json_changes(name: str, text: str) -> list[StatusChange]:
    try:
        document = json.loads(text)
    except ValueError as problem:
        raise UsageError(f"{name} is not valid JSON: {problem}") from None
    entries = document.get("agents") if isinstance(document, dict) else document
    if not isinstance(entries, list):
        raise UsageError(f'{name}: expected a list of entries or {{"agents": [...]}}')
    changes = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise UsageError(f"{name}: entry {index} is not an object")
        changes.append(_change(entry, f"{name}: entry {index}"))
    return changes


def _csv_changes(name: str, text: str) -> list[StatusChange]:
    reader = csv.DictReader(io.StringIO(text))
    header = [column.strip() for column in reader.fieldnames or []]
    unknown = [column for column in header if column not in CSV_COLUMNS]
    if AGENT_ID not in header or unknown:
        raise UsageError(f"{name}: the CSV header must name columns of {','.join(CSV_COLUMNS)}")
    reader.fieldnames = header
    changes = []
    for row in reader:
        if None in row:
            raise UsageError(f"{name}: line {reader.line_num} has more cells than the header")
        changes.append(_change(row, f"{name}: line {reader.line_num}"))
    return changes


def _change(entry: Mapping[str, Any], where: str) -> StatusChange:
    try:
        return StatusChange.from_wire(entry)
    except ValueError as problem:
        raise UsageError(f"{where}: {problem}") from None


class ProgressBar:
    """``[#####.....] 120/250 agents`` on one line of stderr, redrawn after each chunk."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream = stream
        self.total = total
        self(0, total)

    def __call__(self, done: int, total: int) -> None:
        filled = PROGRESS_WIDTH * done // total if total else PROGRESS_WIDTH
        bar = "#" * filled + "." * (PROGRESS_WIDTH - filled)
        self.stream.write(f"\r[{bar}] {done}/{total} agents")
        self.stream.flush()

    def finish(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart, trailing blanks trimmed."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]
    return "\n".join(lines)


def _show_agents(agents: Sequence[Agent], as_json: bool, *, single: bool = False) -> None:
    if as_json:
        document: object = agents[0].to_wire() if single else [a.to_wire() for a in agents]
        print(json.dumps(document, indent=2))
        return
    rows = [
        [
            agent.agent_id,
            agent.status_label,
            agent.name or "",
            _code_text(agent),
            agent.sub_status or "",
        ]
        for agent in agents
    ]
    print(table(["AGENT ID", "STATUS", "NAME", "STATUS CODE", "SUB-STATUS"], rows))


def _code_text(agent: Agent) -> str:
    code = agent.status_code
    if code is None:
        return ""
    return f"{code.list_id}/{code.item_id}" + (f" {code.short_code}" if code.short_code else "")


def _show_set(outcome: ChangeOutcome, as_json: bool) -> None:
    if as_json:
        print(json.dumps(outcome.to_wire(), indent=2))
        return
    target = outcome.change.status if outcome.change is not None else None
    label = status_label(target) if target is not None else "its status"
    said = ": ".join(part for part in (outcome.reason, outcome.message) if part)
    print(f"{outcome.agent_id} set to {label}" + (f" ({said})" if said else ""))


def _show_bulk(result: BulkResult, as_json: bool, *, to: TextIO | None = None) -> None:
    stream = to or sys.stdout
    if as_json:
        document = {
            "ok": result.ok,
            "succeeded": len(result.succeeded),
            "failed": len(result.failed),
            "results": [entry.to_wire() for entry in result],
        }
        print(json.dumps(document, indent=2), file=stream)
        return
    rows = [
        [entry.agent_id, str(entry.change_status or "-"), entry.reason or ""] for entry in result
    ]
    print(table(["AGENT ID", "RESULT", "REASON"], rows), file=stream)
    print(
        f"{len(result)} changes: {len(result.succeeded)} succeeded, {len(result.failed)} failed",
        file=stream,
    )


def _show_error(error: AgentStatusError, as_json: bool) -> None:
    if as_json:
        document = {
            "error": {
                "type": type(error).__name__,
                "status": error.status,
                "message": str(error),
                "request-id": error.request_id,
            }
        }
        print(json.dumps(document, indent=2))
    what = "refused" if isinstance(error, ChangeRejectedError) else "error"
    print(f"agentstatus: {what}: {error}", file=sys.stderr)
