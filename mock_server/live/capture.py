"""``agentstatus-mock import --from-live``: a fixture file from what a live tenant shows.

It only reads (GET the agent list, following ``page`` objects when the tenant pages, and one
GET per ``--group-id`` probe). The public API does not show everything a fixture holds:

- group membership: only through ``groupId`` probes; agents no probe found go to one group,
  ``0``, and without probes every agent is in that group;
- status-code lists and items: only those some agent is currently in, and without their
  names or descriptions; each group gets the lists its agents show;
- the token: never written. The file carries a placeholder to replace by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import yaml

from client.cli import EXIT_INTERRUPTED
from client.errors import describe_failure, never_connected
from client.responses import error_from_response
from mock_server.core.fixtures import FixtureError, build_tenants
from mock_server.live.upstream import ENV, TIMEOUT_SECONDS, api_url
from schemas.rules import LOGGED_OUT_STATUS_CODE_LIST_ID
from schemas.wire import ENV_TOKEN, UnknownPlatform, agents_path, integral

TOKEN_PLACEHOLDER = "REPLACE-WITH-THE-ACTION-TOKEN"
UNGROUPED = 0
AGENT_FIELDS = (
    "agent-id",
    "name",
    "agent-status",
    "agent-sub-status",
    "status-code-list-id",
    "status-code-item-id",
    "status-code-item-short-code",
)
NUMBER_FIELDS = frozenset({"agent-status", "status-code-list-id", "status-code-item-id"})
"""Typed ``number`` by the reference: a live tenant may write 3 as 3.0; the fixture holds 3."""
SUB_STATUSES = ("none", "stopnew")
YAML_HEADER = """\
# Captured from a live tenant by `agentstatus-mock import --from-live` (GET requests only).
# The token is a placeholder: no credential is ever written. Put the real one in by hand.
# Limits: group membership is known only for groups probed with --group-id (the rest are
# in group 0); status-code lists hold only the items some agent was in, without names.
"""


class CaptureError(Exception):
    """The live tenant could not be read; the message never carries the token."""


def _get(session: requests.Session, url: str, params: Mapping[str, str]) -> dict[str, Any]:
    """One page of the agent list; any failure is a CaptureError saying once what went wrong
    (the client's own words for a connection, a timeout or a refusal)."""
    try:
        response = session.get(url, params=params, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as error:
        shown = describe_failure(error, url)
        raise CaptureError(shown if never_connected(error) else f"GET {url}: {shown}") from None
    if response.status_code != 200:
        raise CaptureError(str(error_from_response(response)))
    try:
        body = response.json()
    except ValueError:
        raise CaptureError(f"GET {response.url}: the answer is not JSON.") from None
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise CaptureError(f"GET {response.url}: the answer has no 'data' array.")
    for index, agent in enumerate(body["data"]):
        if not isinstance(agent, dict):
            raise CaptureError(f"GET {response.url}: the answer's data[{index}] is not an object.")
    return body


def read_agents(
    session: requests.Session, url: str, params: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Every agent of the list, over all pages when the answer carries a ``page`` object."""
    query = dict(params or {})
    body = _get(session, url, query)
    agents: list[dict[str, Any]] = list(body["data"])
    page = body.get("page")
    pages = integral(page.get("totalPages")) if isinstance(page, dict) else None
    for index in range(1, pages or 0):
        more = _get(session, url, {**query, "pageIndex": str(index)})["data"]
        if not more:  # fewer agents than the page count promised: the list has ended
            break
        agents.extend(more)
    return agents


def capture_tenant(
    api_url: str,
    tenant: str,
    username: str,
    token: str,
    group_ids: Sequence[int] = (),
) -> dict[str, Any]:
    """A fixture document of one tenant, as far as the live API shows it."""
    url = api_url.rstrip("/") + agents_path(tenant)
    with requests.Session() as session:
        session.auth = (username, token)
        agents = read_agents(session, url)
        membership: dict[str, int] = {}
        for group_id in group_ids:
            for agent in read_agents(session, url, {"groupId": str(group_id)}):
                membership.setdefault(str(agent.get("agent-id")), group_id)
    return build_document(tenant, username, agents, membership, group_ids)


def build_document(
    tenant: str,
    username: str,
    agents: Sequence[Mapping[str, Any]],
    membership: Mapping[str, int],
    group_ids: Sequence[int] = (),
) -> dict[str, Any]:
    """The fixture: agents as seen, lists and groups inferred from them, a placeholder token."""
    items: dict[int, dict[int, str]] = {}
    group_lists: dict[int, list[int]] = {group_id: [] for group_id in group_ids}
    captured = []
    for agent in agents:
        entry = {name: _read(name, agent[name]) for name in AGENT_FIELDS if name in agent}
        if entry.get("agent-sub-status") not in (None, *SUB_STATUSES):
            entry.pop("agent-sub-status")
        group_id = membership.get(str(agent.get("agent-id")), UNGROUPED)
        entry["group-id"] = group_id
        lists = group_lists.setdefault(group_id, [])
        list_id = entry.get("status-code-list-id")
        item_id = entry.get("status-code-item-id")
        short_code = entry.get("status-code-item-short-code")
        if list_id is not None and list_id != LOGGED_OUT_STATUS_CODE_LIST_ID:
            if isinstance(item_id, int) and isinstance(short_code, str):
                items.setdefault(list_id, {})[item_id] = short_code
            if list_id not in lists:
                lists.append(list_id)
        captured.append(entry)
    groups = [
        {
            "id": group_id,
            "name": "Not found by any groupId probe" if group_id == UNGROUPED else "Captured",
            "status-code-lists": sorted(lists),
        }
        for group_id, lists in group_lists.items()
    ]
    document: dict[str, Any] = {
        "tenants": [
            {
                "tenant-id": tenant,
                "username": username,
                "token": TOKEN_PLACEHOLDER,
                "status-code-lists": [
                    {
                        "id": list_id,
                        "items": [
                            {"id": item_id, "short-code": short}
                            for item_id, short in sorted(codes.items())
                        ],
                    }
                    for list_id, codes in sorted(items.items())
                ],
                "groups": groups,
                "agents": captured,
            }
        ]
    }
    build_tenants(document)  # validates against the schema first, then for consistency
    return document


def _read(name: str, value: Any) -> Any:
    """A field as the fixture keeps it: a number with no fraction as an int."""
    if name in NUMBER_FIELDS:
        number = integral(value)
        return value if number is None else number
    return value


def write_fixture(document: Mapping[str, Any], path: Path) -> None:
    """Write the fixture whole or not at all: into a new file beside ``path``, then renamed
    over it, so a failed write (a full disk) leaves any earlier file as it was."""
    if path.suffix == ".json":
        text = json.dumps(document, indent=2) + "\n"
    else:
        text = YAML_HEADER + yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temporary, 0o666 & ~_umask())  # as open() would have made it
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask (reading it means setting it: the command runs one thread)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def output_problem(path: Path, option: str = "--output") -> str | None:
    """Why the file ``option`` names cannot be written, checked before anything is read or
    served (``import --output``, ``proxy --record``); None when it can (as far as can be told
    before writing)."""
    parent = path.parent
    if path.is_dir():
        return f"{option} {path} is a directory: name a file in it."
    if not parent.exists():
        return f"{option} {path}: the directory {parent} does not exist."
    if not parent.is_dir():
        return f"{option} {path}: {parent} is not a directory."
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{option} {path}: no permission to write in {parent}."
    return None


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot name a live service (for ``proxy --upstream`` and ``import
    --base-url``), never repeating credentials it holds: every message naming the URL would
    show them, and the service gets the Authorization header instead. None when it can."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:  # a bracketed host that is not an IPv6 address
        host = None
        parts = urlsplit("")
    if "@" in parts.netloc:
        return "must not carry credentials (user:password@ before the host)"
    if parts.scheme not in ("http", "https") or not host:
        return f"must be an http(s) URL with a host, got {url!r}"
    return None


def run_import(args: argparse.Namespace) -> int:
    """The ``import`` command: read the live tenant, write the fixture file."""
    token = os.environ.get(ENV_TOKEN, "")
    missing = [
        f"--{name.replace('_', '-')} (or {ENV[name]})"
        for name in ("tenant", "username")
        if not getattr(args, name)
    ]
    if not args.base_url and not args.platform:
        missing.insert(0, f"--base-url or --platform (or {ENV['base_url']})")
    if not token:
        missing.append(f"the token in {ENV_TOKEN} (never an option, so it stays out of history)")
    if missing:
        print(f"agentstatus-mock import: missing {', '.join(missing)}", file=sys.stderr)
        return 2
    problem = None if not args.base_url else url_problem(args.base_url)
    if problem is not None:
        print(f"agentstatus-mock import: --base-url {problem}", file=sys.stderr)
        return 2
    output = Path(args.output)
    problem = output_problem(output)
    if problem is not None:
        print(f"agentstatus-mock import: {problem}", file=sys.stderr)
        return 2
    try:
        document = capture_tenant(
            api_url(args), args.tenant, args.username, token, tuple(args.group_id)
        )
        write_fixture(document, output)
    except (CaptureError, FixtureError, UnknownPlatform) as error:
        detail = error.detail if isinstance(error, FixtureError) else str(error)
        print(f"agentstatus-mock import: {detail}", file=sys.stderr)
        return 1
    except OSError as error:  # only the write: a failed read is a CaptureError
        reason = error.strerror or type(error).__name__
        print(f"agentstatus-mock import: cannot write {output}: {reason}.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("agentstatus-mock import: interrupted; nothing was written.", file=sys.stderr)
        return EXIT_INTERRUPTED
    tenant = document["tenants"][0]
    print(
        f"Wrote {output}: {len(tenant['agents'])} agents, {len(tenant['groups'])} groups, "
        f"{len(tenant['status-code-lists'])} status-code lists. The token is a placeholder "
        f"({TOKEN_PLACEHOLDER}): put the tenant's token there before serving it.",
        flush=True,
    )
    return 0


def add_import_command(commands: Any) -> None:
    """Register ``import`` on the CLI's subcommands."""
    env = os.environ
    parser = commands.add_parser(
        "import", help="write a fixture file from a live tenant (read-only)"
    )
    parser.add_argument(
        "--from-live",
        action="store_true",
        required=True,
        help=f"read the tenant through the public API (GET only); the token comes from {ENV_TOKEN}",
    )
    parser.add_argument(
        "--base-url",
        default=env.get(ENV["base_url"]),
        help=f"API root, e.g. https://vcc-na12.8x8.com/api/v1 (or {ENV['base_url']})",
    )
    parser.add_argument(
        "--platform", default=env.get(ENV["platform"]), help=f"e.g. NA12 (or {ENV['platform']})"
    )
    parser.add_argument("--tenant", default=env.get(ENV["tenant"]), help=f"(or {ENV['tenant']})")
    parser.add_argument(
        "--username", default=env.get(ENV["username"]), help=f"(or {ENV['username']})"
    )
    parser.add_argument(
        "--group-id",
        type=int,
        action="append",
        default=[],
        help="probe this group with ?groupId= to learn its members (repeatable)",
    )
    parser.add_argument("--output", required=True, help="fixture file to write (.yaml or .json)")
    parser.set_defaults(handler=run_import)
