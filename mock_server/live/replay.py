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
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from mock_server.app import create_app
from mock_server.core.fixtures import FixtureError, load_fixture
from mock_server.core.profiles import PROFILES
from mock_server.http.api import basic_authorization
from mock_server.live.proxy import NOT_FORWARDED
from mock_server.live.recording import Message, RecordingError, answered, read_recording
from mock_server.testdouble.journal import bulk_agent_ids
from schemas.contract import is_json_media_type
from schemas.rules import AgentStatus
from schemas.wire import path_ids as api_path_ids

ABSENT = -1
"""A recorded agent the upstream answered 404 for."""
FIRST_SEEN_IN_WRITE = int(AgentStatus.WAIT_TRANSACT)
WRONG_TOKEN = "not-the-token"
COMPARED_HEADERS = ("WWW-Authenticate", "Allow", "Retry-After")
AUTOMATIC_METHODS = frozenset({"HEAD", "OPTIONS"})
_URN = re.compile(r"urn:uuid:[0-9a-fA-F-]{32,36}")
_UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\b"
)
_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)
_AGENT_ID = re.compile(r"(?<![\w-])ag[A-Za-z0-9_-]{16,}(?![\w-])")


class UsageError(Exception):
    """The options do not fit the recording or the fixture; exit status 2."""


@dataclass(frozen=True)
class Difference:
    """One way the emulator answered differently from the recording."""

    kind: str
    """``status``, ``content-type``, ``header``, ``body-type``, ``body-keys`` or ``reason``."""
    where: str | None
    recorded: Any
    emulator: Any
    informational: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "where": self.where,
            "recorded": self.recorded,
            "emulator": self.emulator,
            "informational": self.informational,
        }

    def describe(self) -> str:
        if self.kind == "body-keys":
            text = (
                f"body {self.where}: keys only in the recording: {_listed(self.recorded)}; "
                f"only from the emulator: {_listed(self.emulator)}"
            )
        else:
            label = {"content-type": "content type", "body-type": "body"}.get(self.kind, self.kind)
            where = "" if self.where is None else f" {self.where}"
            quoted = self.kind in ("header", "reason")
            shown = (
                f"recorded {_shown(self.recorded, quoted)}, "
                f"emulator {_shown(self.emulator, quoted)}"
            )
            text = f"{label}{where}: {shown}"
        return f"(info) {text}" if self.informational else text


def _listed(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "-"


def _shown(value: Any, quoted: bool) -> str:
    """Values that are text from the wire are quoted; names of types and statuses are not."""
    if value is None:
        return "(none)"
    return json.dumps(value) if quoted else str(value)


@dataclass
class Outcome:
    """What the replay of one recorded exchange found."""

    number: int
    method: str
    path: str
    replayed_path: str
    recorded_status: int
    emulator_status: int
    differences: list[Difference] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        return any(not difference.informational for difference in self.differences)

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "method": self.method,
            "path": self.path,
            "replayed-path": self.replayed_path,
            "recorded-status": self.recorded_status,
            "emulator-status": self.emulator_status,
            "differences": [difference.to_json() for difference in self.differences],
        }


# -- shapes ---------------------------------------------------------------------------------


@dataclass
class Shape:
    """The JSON types a value (or every element of an array) takes, keys and items merged."""

    types: set[str] = field(default_factory=set)
    keys: dict[str, Shape] = field(default_factory=dict)
    items: Shape | None = None

    def merge(self, other: Shape) -> Shape:
        self.types |= other.types
        for key, shape in other.keys.items():
            self.keys[key] = self.keys[key].merge(shape) if key in self.keys else shape
        if other.items is not None:
            self.items = other.items if self.items is None else self.items.merge(other.items)
        return self

    def describe(self) -> str:
        return " or ".join(sorted(self.types))


def shape_of(value: Any) -> Shape:
    if isinstance(value, dict):
        return Shape({"object"}, {str(key): shape_of(item) for key, item in value.items()})
    if isinstance(value, list):
        items: Shape | None = None
        for element in value:
            items = shape_of(element) if items is None else items.merge(shape_of(element))
        return Shape({"array"}, items=items)
    if value is None:
        return Shape({"null"})
    if isinstance(value, bool):
        return Shape({"boolean"})
    if isinstance(value, int):
        return Shape({"integer"})
    if isinstance(value, float):
        return Shape({"number"})
    return Shape({"string"})


def shape_differences(recorded: Shape, emulator: Shape, where: str = "$") -> list[Difference]:
    """Type and key-set differences, recursively; an empty array matches any array."""
    if recorded.types != emulator.types:
        return [Difference("body-type", where, recorded.describe(), emulator.describe())]
    found = []
    if "object" in recorded.types:
        only_recorded = sorted(set(recorded.keys) - set(emulator.keys))
        only_emulator = sorted(set(emulator.keys) - set(recorded.keys))
        if only_recorded or only_emulator:
            found.append(Difference("body-keys", where, only_recorded, only_emulator))
        for key in sorted(set(recorded.keys) & set(emulator.keys)):
            found += shape_differences(recorded.keys[key], emulator.keys[key], f"{where}.{key}")
    if recorded.items is not None and emulator.items is not None:
        found += shape_differences(recorded.items, emulator.items, f"{where}[]")
    return found


def body_shape(message: Message) -> tuple[Shape, Any]:
    """The shape of a body and its JSON value (None when it is no JSON)."""
    if not message.body:
        return Shape({"empty"}), None
    if is_json_media_type(message.media_type):
        try:
            value = json.loads(message.body)
        except ValueError:
            return Shape({"text"}), None
        return shape_of(value), value
    return Shape({"text"}), None


# -- normalising ----------------------------------------------------------------------------


class Normaliser:
    """Turns tenant-specific words of a reason into placeholders, so reasons compare."""

    def __init__(self, tenants: Iterable[str], agents: Iterable[str], names: Iterable[str]) -> None:
        self._words = [
            (_any_word(agents), "<agent>"),
            (_any_word(tenants), "<tenant>"),
            (_any_word(names), "<name>"),
        ]

    def __call__(self, text: str) -> str:
        text = _URN.sub("urn:uuid:<id>", text)
        text = _UUID.sub("<id>", text)
        text = _DATE.sub("<date>", text)
        for pattern, placeholder in self._words:
            if pattern is not None:
                text = pattern.sub(placeholder, text)
        return _AGENT_ID.sub("<agent>", text)


def _any_word(words: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern for all the words, longest first, matched only as whole words."""
    chosen = sorted({word for word in words if word}, key=len, reverse=True)
    if not chosen:
        return None
    return re.compile(r"(?<![\w-])(?:" + "|".join(map(re.escape, chosen)) + r")(?![\w-])")


def reasons(value: Any, text: str | None) -> dict[str, str]:
    """The human-readable reasons of an answer, by where they sit."""
    found = {}
    if isinstance(value, dict):
        for key in ("detail", "reason"):
            if isinstance(value.get(key), str):
                found[f"$.{key}"] = value[key]
        data = value.get("data")
        if isinstance(data, list):
            for index, entry in enumerate(data):
                if isinstance(entry, dict) and isinstance(entry.get("reason"), str):
                    found[f"$.data[{index}].reason"] = entry["reason"]
    elif text:
        found["text"] = text
    return found


# -- comparing ------------------------------------------------------------------------------


def _compared_header(name: str, value: str | None, normalise: Callable[[str], str]) -> Any:
    if value is None:
        return None
    if name == "Allow":
        methods = {part.strip().upper() for part in value.split(",") if part.strip()}
        return ", ".join(sorted(methods - AUTOMATIC_METHODS))
    if name == "Retry-After":
        return "present"
    return normalise(value)


def compare(
    recorded_status: int,
    recorded: Message,
    emulator_status: int,
    emulator: Message,
    normalise: Callable[[str], str],
) -> list[Difference]:
    """Every difference between a recorded answer and the emulator's, worst first."""
    found = []
    if recorded_status != emulator_status:
        found.append(Difference("status", None, recorded_status, emulator_status))
    if recorded.body and emulator.body and recorded.media_type != emulator.media_type:
        found.append(Difference("content-type", None, recorded.media_type, emulator.media_type))
    for name in COMPARED_HEADERS:
        mine = _compared_header(name, recorded.header(name), normalise)
        theirs = _compared_header(name, emulator.header(name), normalise)
        if mine != theirs:
            found.append(Difference("header", name, mine, theirs))
    recorded_shape, recorded_value = body_shape(recorded)
    emulator_shape, emulator_value = body_shape(emulator)
    found += shape_differences(recorded_shape, emulator_shape)
    recorded_reasons = reasons(recorded_value, recorded.body.decode("utf-8", "replace"))
    emulator_reasons = reasons(emulator_value, emulator.body.decode("utf-8", "replace"))
    for where in sorted(set(recorded_reasons) & set(emulator_reasons)):
        mine, theirs = normalise(recorded_reasons[where]), normalise(emulator_reasons[where])
        if mine != theirs:
            found.append(Difference("reason", where, mine, theirs, informational=True))
    return found


# -- mapping --------------------------------------------------------------------------------


def first_sightings(exchanges: Iterable[dict[str, Any]]) -> dict[str, int | None]:
    """Each recorded agent's status when the recording first shows it: from a read, ABSENT
    when the upstream did not know it, None when first seen in a successful write."""
    seen: dict[str, int | None] = {}
    for _, exchange in answered(list(exchanges)):
        _, agent = api_path_ids(exchange["path"])
        status = exchange["status"]
        response = (exchange.get("response") or {}).get("body")
        request = (exchange.get("request") or {}).get("body")
        if exchange["method"] == "GET" and status == 200 and isinstance(response, dict):
            entries = response.get("data") if agent is None else [response]
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and isinstance(entry.get("agent-id"), str):
                    status_seen = entry.get("agent-status")
                    seen.setdefault(
                        entry["agent-id"], status_seen if isinstance(status_seen, int) else None
                    )
        elif agent is not None:
            seen.setdefault(agent, ABSENT if status == 404 else None)
        else:
            results = response.get("data") if isinstance(response, dict) else None
            for index, agent_id in enumerate(bulk_agent_ids(request)):
                result = (
                    results[index] if isinstance(results, list) and index < len(results) else {}
                )
                missing = isinstance(result, dict) and result.get("change-status") == 404
                seen.setdefault(agent_id, ABSENT if missing else None)
    return seen


def map_agents(
    sightings: Mapping[str, int | None],
    fixture_agents: Sequence[Mapping[str, Any]],
    chosen: Mapping[str, str],
) -> dict[str, str]:
    """Live agent id → fixture agent id, as the module's docstring describes."""
    known = {str(agent["agent-id"]): agent.get("agent-status") for agent in fixture_agents}
    used = {agent for agent in sightings if agent in known} | set(chosen.values())
    mapping: dict[str, str] = {}
    for agent, status in sightings.items():
        if agent in chosen:
            mapping[agent] = chosen[agent]
            continue
        if agent in known or status == ABSENT:
            continue
        wanted = FIRST_SEEN_IN_WRITE if status is None else status
        same = [candidate for candidate, its in known.items() if its == wanted]
        fresh = [candidate for candidate in same if candidate not in used]
        if fresh or same:
            mapping[agent] = (fresh or same)[0]
            used.add(mapping[agent])
    return mapping


def map_tenants(
    exchanges: Sequence[Mapping[str, Any]], document: Mapping[str, Any], chosen: Mapping[str, str]
) -> tuple[dict[str, str], Mapping[str, Any]]:
    """Recorded tenant → fixture tenant, and the fixture tenant whose credentials replay."""
    tenants = {str(tenant["tenant-id"]): tenant for tenant in document["tenants"]}
    if not tenants:
        raise UsageError("the fixture has no tenant to replay against")
    mapping = dict(chosen)
    recorded = [tenant for tenant, _ in (api_path_ids(e["path"]) for e in exchanges) if tenant]
    home = recorded[0] if recorded else None
    if home is not None:
        mapping.setdefault(home, next(iter(tenants)))
    for target in mapping.values():
        if target not in tenants:
            raise UsageError(f"--tenant-map names {target!r}, which the fixture does not have")
    return mapping, tenants[mapping[home]] if home is not None else next(iter(tenants.values()))


# -- replaying ------------------------------------------------------------------------------


@dataclass
class Replay:
    """A recording against one emulator: the mappings, then one outcome per exchange."""

    exchanges: list[dict[str, Any]]
    document: Mapping[str, Any]
    profile: str
    tenant_map: dict[str, str]
    agent_map: dict[str, str]
    credentials: tuple[str, str] = field(repr=False)
    normalise: Normaliser

    @classmethod
    def prepare(
        cls,
        exchanges: list[dict[str, Any]],
        document: Mapping[str, Any],
        profile: str,
        tenant_map: Mapping[str, str],
        agent_map: Mapping[str, str],
    ) -> Replay:
        tenants, home = map_tenants(exchanges, document, tenant_map)
        sightings = first_sightings(exchanges)
        agents = map_agents(sightings, home.get("agents", []), agent_map)
        names = {
            str(agent["name"])
            for tenant in document["tenants"]
            for agent in tenant.get("agents", [])
            if agent.get("name")
        } | set(_recorded_names(exchanges))
        normalise = Normaliser(
            tenants=set(tenants) | set(tenants.values()),
            agents=set(sightings) | set(agents.values()),
            names=names,
        )
        return cls(
            exchanges,
            document,
            profile,
            tenants,
            agents,
            (str(home["username"]), str(home["token"])),
            normalise,
        )

    def run(self) -> list[Outcome]:
        client = create_app(self.document, profile=self.profile).test_client()
        return [
            self._replay(client, number, exchange) for number, exchange in answered(self.exchanges)
        ]

    def _replay(self, client: FlaskClient, number: int, exchange: Mapping[str, Any]) -> Outcome:
        request = Message.of(exchange.get("request"))
        path = self.replayed_path(exchange["path"])
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in NOT_FORWARDED and not name.lower().endswith("authorization")
        }
        if request.header("Authorization") is not None:
            username, token = self.credentials
            if exchange["status"] == 401:
                token = WRONG_TOKEN
            headers["Authorization"] = basic_authorization(username, token)
        answer = client.open(
            path,
            method=exchange["method"],
            query_string=exchange.get("query") or "",
            headers=headers,
            data=self._replayed_body(request),
        )
        emulator = Message(dict(answer.headers), answer.get_data())
        recorded = Message.of(exchange["response"])
        return Outcome(
            number,
            exchange["method"],
            exchange["path"],
            path,
            exchange["status"],
            answer.status_code,
            compare(exchange["status"], recorded, answer.status_code, emulator, self.normalise),
        )

    def replayed_path(self, path: str) -> str:
        tenant, agent = api_path_ids(path)
        if tenant is None:
            return path
        parts = path.split("/")
        parts[4] = self.tenant_map.get(tenant, tenant)
        if agent is not None:
            parts[7] = self.agent_map.get(agent, agent)
        return "/".join(parts)

    def _replayed_body(self, request: Message) -> bytes:
        if not request.body or not is_json_media_type(request.media_type):
            return request.body
        try:
            value = json.loads(request.body)
        except ValueError:
            return request.body
        if not bulk_agent_ids(value):
            return request.body
        for entry in value["agents"]:
            if isinstance(entry, dict) and isinstance(entry.get("agent-id"), str):
                entry["agent-id"] = self.agent_map.get(entry["agent-id"], entry["agent-id"])
        return json.dumps(value).encode("utf-8")


def _recorded_names(exchanges: Iterable[Mapping[str, Any]]) -> Iterable[str]:
    for exchange in exchanges:
        body = (exchange.get("response") or {}).get("body")
        entries = body.get("data") if isinstance(body, dict) else None
        for entry in [body, *(entries if isinstance(entries, list) else [])]:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"]:
                yield entry["name"]


# -- the command ----------------------------------------------------------------------------


def _pair(text: str) -> tuple[str, str]:
    left, equals, right = text.partition("=")
    if not equals or not left.strip() or not right.strip():
        raise argparse.ArgumentTypeError(f"expected LIVE=EMULATOR, got {text!r}")
    return left.strip(), right.strip()


def render(replay: Replay, outcomes: Sequence[Outcome], recording: str) -> str:
    """The human report: what was mapped, one block per exchange that differs, a summary."""
    lines = [
        f"Replayed {recording} against the emulator (profile {replay.profile}); tenants: "
        + (", ".join(f"{live} -> {emu}" for live, emu in replay.tenant_map.items()) or "-")
    ]
    if replay.agent_map:
        mapped = ", ".join(f"{live} -> {emu}" for live, emu in replay.agent_map.items())
        lines.append(f"Agents mapped: {mapped}")
    for outcome in outcomes:
        if not outcome.differences:
            continue
        lines.append("")
        replayed = "" if outcome.replayed_path == outcome.path else f" (as {outcome.replayed_path})"
        lines.append(f"#{outcome.number} {outcome.method} {outcome.path}{replayed}")
        lines += [f"  {difference.describe()}" for difference in outcome.differences]
    lines += ["", summary_line(replay, outcomes)]
    return "\n".join(lines)


def summary(replay: Replay, outcomes: Sequence[Outcome]) -> dict[str, int]:
    differing = sum(outcome.differs for outcome in outcomes)
    informational = sum(bool(o.differences) and not o.differs for o in outcomes)
    return {
        "exchanges": len(replay.exchanges),
        "replayed": len(outcomes),
        "skipped": len(replay.exchanges) - len(outcomes),
        "differing": differing,
        "informational-only": informational,
        "same": len(outcomes) - differing - informational,
    }


def summary_line(replay: Replay, outcomes: Sequence[Outcome]) -> str:
    counts = summary(replay, outcomes)
    return (
        f"{counts['replayed']} exchanges replayed ({counts['skipped']} unanswered skipped): "
        f"{counts['differing']} differ, {counts['informational-only']} differ only in reasons, "
        f"{counts['same']} the same."
    )


def run_diff(args: argparse.Namespace) -> int:
    """The ``diff`` command: exit 0 when nothing differs, 1 when something does."""
    try:
        exchanges = read_recording(Path(args.recording))
        document = load_fixture(args.fixture)
        replay = Replay.prepare(
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
        report = {
            "recording": args.recording,
            "profile": replay.profile,
            "fixture": args.fixture,
            "tenant-map": replay.tenant_map,
            "agent-map": replay.agent_map,
            "summary": summary(replay, outcomes),
            "exchanges": [outcome.to_json() for outcome in outcomes if outcome.differences],
        }
        print(json.dumps(report, indent=2))
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
