"""``agentstatus``: the client from a shell, for people (tables) and scripts (``--json``).

There is deliberately no ``--token`` option: a token typed on the command line lands in the
shell history and in every process listing. The token comes from ``--token-file``, the
``AGENTSTATUS_TOKEN`` variable, or a hidden prompt when stdin is a terminal.
"""

from __future__ import annotations

import argparse
import getpass
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from client.api import DEFAULT_TIMEOUT, DOT_SEGMENTS, UNSENDABLE, AgentStatusClient
from client.bulk_file import FIELDS, BulkFileError, read_changes
from client.display import ProgressBar, show_agents, show_bulk, show_error, show_set
from client.errors import AgentStatusError, ConfigurationError, ServerError, TransportError
from client.models import BulkResult, ChangeOutcome, StatusChange, StatusCode, parse_status
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
EXIT_INTERRUPTED = 130
"""128 + SIGINT, what a shell reports for a command stopped with Ctrl-C."""
EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE, what a shell reports when the reader of stdout went away (``| head``)."""
MAX_TIMEOUT = 86_400.0
MAX_RETRIES = 100
MAX_TOKEN_BYTES = 64 * 1024

EPILOG = f"""\
connection settings (options win over the environment):
  {ENV_BASE_URL} or {ENV_PLATFORM}, {ENV_TENANT}, {ENV_USERNAME},
  {ENV_TOKEN} (or --token-file, or a hidden prompt on a terminal; there is
  no --token option, so the token stays out of shell history)

bulk FILE: CSV with the header {",".join(FIELDS)}
  (only agent-id is required; "," or ";" between cells, any case, UTF-8 with or
  without a byte-order mark), or JSON: a list of entries or {{"agents": [...]}}
  with the same field names. "-" reads stdin.

exit codes:
  {EXIT_OK}  success
  {EXIT_FAILURE}  failure: the request was refused or could not be made; or every bulk entry failed
  {EXIT_USAGE}  usage error: bad options or arguments, missing settings, unreadable bulk file
  {EXIT_PARTIAL}  partial failure: some bulk entries succeeded, some failed
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); bulk says which chunks were applied
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
    get.add_argument("agent", metavar="AGENT", type=_agent_id, help="agent id")
    set_ = command("set", "set one agent's status")
    set_.add_argument("agent", metavar="AGENT", type=_agent_id, help="agent id")
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
        type=_seconds,
        default=default(None),
        help="seconds to wait for each answer (default: 3 to connect, 30 to read)",
    )
    group.add_argument(
        "--retries",
        metavar="N",
        type=_retries,
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


def _agent_id(text: str) -> str:
    """An agent id as pasted (spaces around it dropped); an empty one names no agent, and
    ``.`` or ``..`` would name another resource (the client refuses them, here said as usage)."""
    agent_id = text.strip()
    if not agent_id:
        raise argparse.ArgumentTypeError("must not be empty")
    if agent_id in DOT_SEGMENTS:
        raise argparse.ArgumentTypeError(f"{agent_id!r} {UNSENDABLE}")
    return agent_id


def _seconds(text: str) -> float:
    """A timeout a socket takes: ``nan``, ``inf`` or ``1e300`` reach urllib3 as a traceback."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT):
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds, more than 0 and at most {MAX_TIMEOUT:.0f}, not {text!r}"
        )
    return seconds


def _retries(text: str) -> int:
    try:
        retries = int(text)
    except ValueError:
        retries = -1
    if not 0 <= retries <= MAX_RETRIES:
        raise argparse.ArgumentTypeError(
            f"must be a whole number from 0 to {MAX_RETRIES}, not {text!r}"
        )
    return retries


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the return value is the exit code (see ``--help``).

    Nothing a user or the machine does ends in a traceback: Ctrl-C is one line and exit 130,
    a reader of stdout that went away (``| head``) ends the command quietly.
    """
    try:
        code = _main(list(sys.argv[1:] if argv is None else argv))
        sys.stdout.flush()
    except KeyboardInterrupt:
        print("agentstatus: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush meets no closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        return


def _main(arguments: list[str]) -> int:
    parser = build_parser()
    if any(word == "--token" or word.startswith("--token=") for word in arguments):
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
        _check_text(arguments, os.environ)
        with _client(args, os.environ) as api:
            return _run(api, args)
    except (UsageError, ConfigurationError) as problem:
        said = problem.message if isinstance(problem, ConfigurationError) else str(problem)
        print(f"agentstatus {args.command}: error: {said}", file=sys.stderr)
        return EXIT_USAGE


def _check_text(arguments: Sequence[str], env: Mapping[str, str]) -> None:
    """Arguments and settings must be text: bytes that are not UTF-8 arrive as surrogates,
    which no header, path or body can carry."""
    for number, word in enumerate(arguments, start=1):
        if not _is_utf8(word):
            raise UsageError(f"argument {number} is not valid UTF-8")
    for name in (ENV_BASE_URL, ENV_PLATFORM, ENV_TENANT, ENV_USERNAME, ENV_TOKEN):
        if not _is_utf8(env.get(name, "")):
            raise UsageError(f"{name} is not valid UTF-8")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
        return _token_from_file(token_file)
    token = env.get(ENV_TOKEN, "").strip()
    if token:
        return _one_word(token, ENV_TOKEN)
    if sys.stdin.isatty():
        try:
            token = getpass.getpass("Action token: ").strip()
        except EOFError:
            raise UsageError("no token: the prompt got end of input") from None
        if token:
            return _one_word(token, "the token typed")
    raise UsageError(f"no token: set {ENV_TOKEN} or use --token-file")


def _token_from_file(path: Path) -> str:
    """The file's one line; never more than a token's worth read (``/dev/zero``, a log)."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_TOKEN_BYTES + 1)
    except OSError as problem:
        raise UsageError(f"cannot read --token-file {path}: {problem.strerror}") from None
    if len(data) > MAX_TOKEN_BYTES:
        raise UsageError(f"--token-file {path} is too large to be a token")
    try:
        token = data.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        raise UsageError(f"--token-file {path} is not UTF-8 text") from None
    if not token:
        raise UsageError(f"--token-file {path} is empty")
    return _one_word(token, f"--token-file {path}")


def _one_word(token: str, where: str) -> str:
    """A token is one printable word; anything else is the wrong file or a paste gone wrong
    (the message never quotes it)."""
    if any(char.isspace() or not char.isprintable() for char in token):
        raise UsageError(f"{where} holds spaces or control characters: is it the right token?")
    return token


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
    """One request per chunk, so that a failure or Ctrl-C can say which chunks were applied."""
    try:
        changes = read_changes(args.file)
    except BulkFileError as problem:
        raise UsageError(str(problem)) from None
    show_bar = args.progress == "always" or (
        args.progress == "auto" and sys.stderr.isatty() and len(changes) > BULK_LIMIT
    )
    bar = ProgressBar(sys.stderr, len(changes)) if show_bar else None
    run = _BulkRun(changes, api.bulk_chunk_size)
    try:
        for chunk in run.chunks():
            run.sending = True
            run.outcomes.extend(api.set_agents_statuses(chunk))
            run.sending = False
            if bar is not None:
                bar(len(run.outcomes), len(changes))
    except KeyboardInterrupt:
        if bar is not None:
            bar.finish()
        if run.outcomes or args.json:
            show_bulk(run.result(), args.json, interrupted=run.as_json())
        print(
            f"agentstatus: interrupted: {run.said('was being sent and may have been applied')}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except AgentStatusError as error:
        if bar is not None:
            bar.finish()
        if run.outcomes:
            show_bulk(run.result(), args.json, to=sys.stderr if args.json else sys.stdout)
        if run.chunk_count > 1:
            unknown = isinstance(error, ServerError) or (
                isinstance(error, TransportError) and error.sent
            )
            failed = "failed and may have been applied" if unknown else "failed"
            print(f"agentstatus: {run.said(failed)}", file=sys.stderr)
        show_error(error, args.json)
        return EXIT_FAILURE
    if bar is not None:
        bar.finish()
    result = run.result()
    show_bulk(result, args.json)
    if result.ok:
        return EXIT_OK
    return EXIT_PARTIAL if result.succeeded else EXIT_FAILURE


@dataclass
class _BulkRun:
    """How far a bulk run got: the outcomes of the chunks answered, and whether the next one
    was out when it stopped."""

    changes: list[StatusChange]
    size: int
    outcomes: list[ChangeOutcome] = field(default_factory=list)
    sending: bool = False

    @property
    def chunk_count(self) -> int:
        return -(-len(self.changes) // self.size)

    @property
    def chunks_done(self) -> int:
        return -(-len(self.outcomes) // self.size)

    def chunks(self) -> list[list[StatusChange]]:
        return [
            self.changes[start : start + self.size]
            for start in range(0, len(self.changes), self.size)
        ]

    def result(self) -> BulkResult:
        return BulkResult(tuple(self.outcomes))

    def said(self, current: str) -> str:
        """``chunks 1-2 of 5 were applied (entries 1-200: ...); chunk 3 (entries 201-300)
        <current>; the rest were not sent``."""
        done, count, applied = self.chunks_done, self.chunk_count, len(self.outcomes)
        parts = []
        if done:
            result = self.result()
            chunks = "chunk 1" if done == 1 else f"chunks 1-{done}"
            parts.append(
                f"{chunks} of {count} {'was' if done == 1 else 'were'} applied "
                f"(entries 1-{applied}: {len(result.succeeded)} succeeded, "
                f"{len(result.failed)} failed)"
            )
        if self.sending:
            last = min(applied + self.size, len(self.changes))
            of = "" if done else f" of {count}"
            parts.append(f"chunk {done + 1}{of} (entries {applied + 1}-{last}) {current}")
        if not parts:
            parts.append("nothing was sent")
        elif done + self.sending < count:
            parts.append("the rest were not sent")
        return "; ".join(parts)

    def as_json(self) -> dict[str, object]:
        """The same facts for scripts."""
        in_flight = None
        if self.sending:
            first = len(self.outcomes) + 1
            last = min(len(self.outcomes) + self.size, len(self.changes))
            in_flight = {"chunk": self.chunks_done + 1, "entries": [first, last]}
        return {
            "chunks": self.chunk_count,
            "chunks-applied": self.chunks_done,
            "entries": len(self.changes),
            "entries-applied": len(self.outcomes),
            "in-flight": in_flight,
        }
