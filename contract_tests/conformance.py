"""The conformance report: which vendor document the target follows on each disputed point.

Each point of the disagreement table (``../shared/reference/README.md``) is probed as safely
as it can be: reads where a read tells; bulk requests that name only agent ids the target
answered 404 for (they cannot change anyone); a write on a writable agent only where nothing
else tells (the single set's 200 body), and then the agent is put back at the end of the run.
``claims_view`` has the same keys and value types as ``mock_server.core.profiles.Profile.claims``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from contract_tests.answer import Answer
from contract_tests.findings import Choice
from contract_tests.http import ApiTransport
from contract_tests.model import REFUSALS, StatusCode
from contract_tests.target import Target
from mock_server.core.profiles import DEFAULT, PROFILES
from schemas.rules import REPEATABLE, AgentStatus
from schemas.wire import BULK_LIMIT, BULK_SEGMENT

LIMIT_PROBE_ENTRIES = 101
# A number, as group ids are (the reference's example is 100), that no tenant uses.
NO_SUCH_GROUP = "987654329"
PROBE_CODE = StatusCode(987_654_321, 987_654_322, "KitProbe")

READ_ONLY = "read-only"
UNKNOWN_IDS = "bulk naming only unknown agent ids (changes nothing)"
NOT_DETERMINED = "not determined"

# key -> (title, the guide's variant, the reference's variant)
POINTS: dict[str, tuple[str, Any, Any]] = {
    "bulk_methods": ("bulk method", ["PUT"], ["POST"]),
    "single_requires_status_codes": ("single set: status-code fields required", True, False),
    "bulk_requires_agent_status": ("bulk entry: agent-status required", False, True),
    "bulk_requires_status_codes": ("bulk entry: status-code fields required", True, False),
    "bulk_limit": ("bulk size limit", None, BULK_LIMIT),
    "single_success_body": ("single set: 200 has a body", True, False),
    "bulk_result_message": ("bulk result: has message", True, False),
    "tenant_forbidden_xml": ("403 for another tenant's path is XML", True, False),
    "group_filter": ("groupId filter honoured", False, True),
    "pagination": ("pagination (pageSize/pageIndex, page object)", False, True),
    # The reference's problem object is application/json; RFC 7807's own type for it is read
    # the same way. The guide describes no error body.
    "error_media_type": (
        "error media type (404)",
        [],
        ["application/json", "application/problem+json"],
    ),
    "agent_sub_status_values": ("agent-sub-status values seen", ["none"], ["none", "stopnew"]),
}
CLAIM_KEYS = tuple(key for key in POINTS if key != "agent_sub_status_values")
SET_VALUED = ("error_media_type", "agent_sub_status_values")


@dataclass
class Point:
    """One disputed point: what the target did and which document that matches."""

    key: str
    title: str
    observed: Any
    how: str
    evidence: str
    variant: str = ""

    def __post_init__(self) -> None:
        self.variant = self._variant()

    def _variant(self) -> str:
        if self.how == NOT_DETERMINED:
            return NOT_DETERMINED
        _, guide, reference = POINTS[self.key]
        if self.key == "bulk_methods":
            matches = ("PUT" in self.observed, "POST" in self.observed)
        elif self.key in SET_VALUED:
            seen = set(self.observed) if isinstance(self.observed, list) else {self.observed}
            matches = (seen <= set(guide), seen <= set(reference))
        else:
            matches = (self.observed == guide, self.observed == reference)
        return {
            (True, True): "both",
            (True, False): "guide",
            (False, True): "reference",
            (False, False): "neither",
        }[matches]


@dataclass
class Conformance:
    """The disputed points, the bulk method later checks should use, and what broke the contract."""

    target: str
    points: dict[str, Point] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    bulk_method: str | None = None

    def add(self, key: str, observed: Any, how: str, evidence: str) -> None:
        self.points[key] = Point(key, POINTS[key][0], observed, how, evidence)

    def value(self, key: str) -> Any:
        return self.points[key].observed

    def claims_view(self) -> dict[str, Any]:
        """The points in ``Profile.claims()`` form, for comparing with an emulator profile."""
        view = {key: self.points[key].observed for key in CLAIM_KEYS if key in self.points}
        if isinstance(view.get("bulk_methods"), list):
            view["bulk_methods"] = tuple(view["bulk_methods"])
        return view

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "points": [asdict(point) for point in self.points.values()],
            "contract_violations": list(self.violations),
        }


def note_differences(conformance: Conformance, api: ApiTransport) -> None:
    """On a live target: a finding for every disputed point where it does not do what the
    emulator's default profile does, naming the profiles that do."""
    default = DEFAULT.claims()
    observed = conformance.claims_view()
    for key in CLAIM_KEYS:
        point = conformance.points.get(key)
        if point is None or point.how == NOT_DETERMINED or observed[key] == default[key]:
            continue
        matching = [n for n, profile in PROFILES.items() if profile.claims()[key] == observed[key]]
        change = (
            f"run the emulator with --profile {' or '.join(matching)}"
            if matching
            else "no profile does this yet: add one (mock_server/core/profiles.py)"
        )
        choice = Choice(point.title, f"{default[key]!r} (default profile)", change)
        api.note(
            key, repr(observed[key]), point.evidence, choice=choice, matching_profiles=matching
        )


def _entry(agent_id: str, *, status: bool = True, codes: bool = True) -> dict[str, Any]:
    entry: dict[str, Any] = {"agent-id": agent_id}
    if status:
        entry["agent-status"] = int(AgentStatus.ON_BREAK)
    if codes:
        entry.update(PROBE_CODE.fields())
    return entry


def probe(target: Target) -> Conformance:
    """Probe every disputed point of ``target``; contract violations are recorded, not raised."""
    result = Conformance(target.config.describe())
    with target.api.recording() as violations:
        unknown = target.unknown_agent_id()
        _bulk_points(target, result, unknown)
        _single_points(target, result, unknown)
        _read_points(target, result, unknown)
    result.violations = violations
    return result


def _bulk_points(target: Target, result: Conformance, unknown: str) -> None:
    api = target.api
    supported = []
    answers = {}
    # A PUT on .../agents/bulk is a single set of agent "bulk" where only POST is the bulk
    # method; the full list shows no such agent, so the guard may let it through.
    bulk_is_unknown = BULK_SEGMENT not in target.initial and api.get_agent(BULK_SEGMENT).status in (
        404,
        405,
    )
    if bulk_is_unknown:
        api.guard.mark_absent(BULK_SEGMENT)  # not listed, and cannot be read: no such agent
    for method in ("POST", "PUT"):
        if method == "PUT" and not bulk_is_unknown and not api.guard.may_change(BULK_SEGMENT):
            continue
        answer = api.bulk(method, {"agents": [_entry(unknown)]})
        answers[method] = answer
        if answer.status == 207:
            supported.append(method)
    evidence = "; ".join(f"{m}: {e.status}" for m, e in answers.items())
    if len(answers) < 2:
        result.add("bulk_methods", supported, NOT_DETERMINED, evidence + "; agent 'bulk' exists")
    else:
        result.add("bulk_methods", supported, UNKNOWN_IDS, evidence)
    if not supported:
        return
    method = result.bulk_method = supported[0]
    (first,) = target.results([_entry(unknown)], answers[method])
    result.add(
        "bulk_result_message", "message" in first, UNKNOWN_IDS, f"an entry's result: {first}"
    )
    baseline = first.get("change-status")
    for key, entry, what in (
        ("bulk_requires_agent_status", _entry(unknown, status=False), "agent-status"),
        ("bulk_requires_status_codes", _entry(unknown, codes=False), "status-code fields"),
    ):
        lacking = api.bulk(method, {"agents": [entry]})
        refused = _refused_for_shape(lacking, baseline)
        evidence = f"an entry without {what}: {_outcome(lacking)}; a complete one: {baseline}"
        result.add(key, refused, UNKNOWN_IDS if refused is not None else NOT_DETERMINED, evidence)
    over = api.bulk(method, {"agents": [_entry(unknown)] * LIMIT_PROBE_ENTRIES})
    if over.status == 207:
        result.add("bulk_limit", None, UNKNOWN_IDS, f"{LIMIT_PROBE_ENTRIES} entries answered 207")
        return
    at_limit = api.bulk(method, {"agents": [_entry(unknown)] * BULK_LIMIT})
    observed: int | str = BULK_LIMIT if at_limit.status == 207 else f"below {BULK_LIMIT}"
    result.add(
        "bulk_limit",
        observed,
        UNKNOWN_IDS,
        f"{LIMIT_PROBE_ENTRIES} entries: {over.status}; {BULK_LIMIT}: {at_limit.status}",
    )


def _outcome(answer: Answer) -> str:
    """``400``, or ``207 (entry 404)``: how a bulk of one entry was answered."""
    if answer.status != 207:
        return str(answer.status)
    results = answer.json().get("data") or [{}]
    return f"207 (entry {results[0].get('change-status')})"


def _refused_for_shape(answer: Answer, baseline: object) -> bool | None:
    """Whether a bulk of one entry naming an unknown agent was refused for what the entry
    lacks: as a whole, or in the entry's result, where a complete entry for the same agent
    got another change-status (``baseline``, the unknown agent's). None when the two cannot
    be told apart (the target answers an unknown agent with that refusal too)."""
    if answer.status in REFUSALS - {404}:
        return True
    if answer.status != 207:
        return False
    results = answer.json().get("data") or [{}]
    answered = results[0].get("change-status")
    if answered == baseline:
        return False if baseline == 404 else None
    return answered in REFUSALS


def _joined_agent(target: Target, needs_code: bool) -> tuple[str, StatusCode | None] | None:
    """A writable agent in 3/4/5 and a code it may take (its own, when codes are required)."""
    for agent_id in target.writable:
        agent = target.api.agent_body(agent_id)
        if agent["agent-status"] not in REPEATABLE:
            continue
        valid = target.codebook(agent_id).valid
        if valid or not needs_code:
            return agent_id, (valid[0] if valid else None)
    return None


def _single_points(target: Target, result: Conformance, unknown: str) -> None:
    api = target.api
    bare = api.set_agent(unknown, {"agent-status": int(AgentStatus.ON_BREAK)})
    evidence = f"unknown agent, agent-status only: {bare.status}"
    chosen = _joined_agent(target, needs_code=True)
    if chosen is None:
        result.add(
            "single_success_body",
            None,
            NOT_DETERMINED,
            "needs a writable agent in 3, 4 or 5 (AGENTSTATUS_WRITE_AGENTS)",
        )
        # A 400 for the unknown agent's set refuses the body before looking the agent up; a
        # 404 may only mean the lookup came first.
        if bare.status in REFUSALS - {404}:
            result.add("single_requires_status_codes", True, READ_ONLY, evidence)
        else:
            result.add("single_requires_status_codes", None, NOT_DETERMINED, evidence)
        return
    agent_id, code = chosen
    status = int(api.agent_body(agent_id)["agent-status"])
    other = next(int(s) for s in sorted(REPEATABLE) if s != status)
    body: dict[str, Any] = {"agent-status": other, **(code.fields() if code else {})}
    done = api.set_agent(agent_id, body)
    how = f"writes on agent {agent_id} (put back at the end)"
    result.add(
        "single_success_body",
        bool(done.body.strip()) if done.status == 200 else None,
        how if done.status == 200 else NOT_DETERMINED,
        f"{status} -> {other}: {done.status} with {len(done.body)} body bytes",
    )
    back = api.set_agent(agent_id, {"agent-status": status})
    result.add(
        "single_requires_status_codes",
        back.status in REFUSALS - {404},
        how,
        f"{evidence}; agent {agent_id} {other} -> {status} without codes: {back.status}",
    )


def _read_points(target: Target, result: Conformance, unknown: str) -> None:
    api = target.api
    everyone = api.list_agents()
    agents = everyone.json().get("data", []) if everyone.status == 200 else []
    forbidden = api.send(
        "GET", api.agents_path(tenant=target.other_tenant()), operation="getagentsstatus"
    )
    if forbidden.status == 403:
        result.add(
            "tenant_forbidden_xml",
            "xml" in forbidden.media_type,
            READ_ONLY,
            f"another tenant's path: 403 {forbidden.media_type}",
        )
    else:
        result.add("tenant_forbidden_xml", None, NOT_DETERMINED, forbidden.describe())
    filtered = api.list_agents({"groupId": NO_SUCH_GROUP})
    if filtered.status == 200 and agents:
        count = len(filtered.json()["data"])
        result.add(
            "group_filter",
            count < len(agents),
            READ_ONLY,
            f"groupId={NO_SUCH_GROUP}: {count} of {len(agents)} agents",
        )
    else:
        result.add("group_filter", None, NOT_DETERMINED, filtered.describe())
    paged = api.list_agents({"pageSize": "1", "pageIndex": "0"})
    if paged.status == 200:
        body = paged.json()
        result.add(
            "pagination",
            "page" in body,
            READ_ONLY,
            f"pageSize=1: {len(body['data'])} agents, page object: {'page' in body}",
        )
    else:
        result.add("pagination", None, NOT_DETERMINED, paged.describe())
    missing = api.get_agent(unknown)
    result.add(
        "error_media_type",
        missing.media_type,
        READ_ONLY,
        f"unknown agent: {missing.status} {missing.media_type}",
    )
    every = api.agents()
    seen = sorted({a["agent-sub-status"] for a in every if "agent-sub-status" in a})
    result.add("agent_sub_status_values", seen, READ_ONLY, f"{len(every)} agents listed")
