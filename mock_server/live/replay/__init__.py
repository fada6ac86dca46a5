"""``agentstatus-mock diff``: replay a recording against a fresh emulator, show what differs.

Each answered exchange of a proxy recording is sent again, in order, to an in-process
emulator (Flask's test client, no socket) built from ``--fixture`` and ``--profile``. Both
answers are then compared on what the emulator promises to get right, never on values that
belong to one tenant:

- the status code, the media type (when both answers have a body) and the headers that
  matter: ``WWW-Authenticate`` (value), ``Allow`` (method set, HEAD and OPTIONS aside) and
  ``Retry-After`` (presence);
- the body's shape: JSON types and key sets, recursively; an array is the union of its
  elements' shapes, so lists of different lengths and agents compare;
- reasons (Problem JSON ``detail``, ``reason`` of a set and of each bulk result, a text
  body), after normalising agent ids, names, tenants, request ids, urns and dates. These are
  informational: they do not make the exit status 1.

The recording is masked, so the replay brings its own credentials: the first tenant of the
recording is mapped to the fixture's first tenant (or as ``--tenant-map LIVE=EMU`` says) and
every request that carried an Authorization header carries that tenant's credentials; one the
upstream answered 401 carries a wrong token instead, to ask the same question. Other
tenants keep their id unless mapped (a 403 on another tenant's path stays a 403).

Live agents are not the fixture's agents. An agent id the fixture has is kept (a fixture made
by ``import --from-live`` has them all); ``--agent-map LIVE=EMU`` chooses one; any other is
mapped to an unused fixture agent of the status the recording first shows it in (its first
read), or, first seen in a write, to one in status 4 (WAIT_TRANSACT); an agent the upstream
answered 404 for stays unknown. Writes then move the mapped agent as they moved the live one.

The package: ``shapes`` (the shape of a body), ``compare`` (what differs), ``mapping`` (the
recording's ids onto the fixture's), ``run`` (the replay), ``report``; the command here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mock_server.core.fixtures import FixtureError, load_fixture
from mock_server.core.profiles import PROFILES
from mock_server.live.recording import RecordingError, read_recording
from mock_server.live.replay.mapping import UsageError
from mock_server.live.replay.report import render, report_json
from mock_server.live.replay.run import ReplayRun


def _pair(text: str) -> tuple[str, str]:
    left, equals, right = text.partition("=")
    if not equals or not left.strip() or not right.strip():
        raise argparse.ArgumentTypeError(f"expected LIVE=EMULATOR, got {text!r}")
    return left.strip(), right.strip()


def run_diff(args: argparse.Namespace) -> int:
    """The ``diff`` command: exit 0 when nothing differs, 1 when something does."""
    try:
        exchanges = read_recording(Path(args.recording))
        document = load_fixture(args.fixture)
        replay = ReplayRun.prepare(
            exchanges, document, args.profile, dict(args.tenant_map), dict(args.agent_map)
        )
    except (RecordingError, UsageError) as error:
        print(f"agentstatus-mock diff: {error}", file=sys.stderr)
        return 2
    except FixtureError as error:
        print(f"agentstatus-mock diff: bad fixture: {error.detail}", file=sys.stderr)
        return 2
    outcomes = replay.run()
    if args.json:
        print(json.dumps(report_json(replay, outcomes, args.recording, args.fixture), indent=2))
    else:
        print(render(replay, outcomes, args.recording))
    return 1 if any(outcome.differs for outcome in outcomes) else 0


def add_diff_command(commands: Any) -> None:
    """Register ``diff`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "diff", help="replay a proxy recording against the emulator and show what differs"
    )
    parser.add_argument("recording", help="the JSON Lines file `proxy --record` wrote")
    parser.add_argument(
        "--fixture", help="JSON or YAML tenant set (default: the built-in demo tenants)"
    )
    parser.add_argument(
        "--profile", default="default", choices=sorted(PROFILES), help="which vendor document"
    )
    parser.add_argument(
        "--tenant-map",
        type=_pair,
        action="append",
        default=[],
        metavar="LIVE=EMU",
        help="replay a recorded tenant as a fixture tenant (repeatable; default: the "
        "recording's first tenant as the fixture's first); credentials come from the first",
    )
    parser.add_argument(
        "--agent-map",
        type=_pair,
        action="append",
        default=[],
        metavar="LIVE=EMU",
        help="replay a recorded agent as a fixture agent (repeatable; default: same id, "
        "else an unused agent in the status the recording first shows)",
    )
    parser.add_argument("--json", action="store_true", help="a JSON report, for scripts")
    parser.set_defaults(handler=run_diff)
