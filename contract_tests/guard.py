"""The write guard and the restore ledger: what keeps a live run safe.

Every write the kit sends passes ``WriteGuard.check`` first, in the one HTTP layer
(``contract_tests.http``), so no test can reach an agent it was not given: a write may name
only an agent listed as writable, or an id the kit proved unknown to the target (a GET
answered 404), which nothing can change. LOGGED_OUT is never sent unless allowed, because
the API cannot bring an agent back from it. Before the first write to an agent its starting
state is put in the ``RestoreLedger``, which the session puts back at the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from schemas.rules import AgentStatus
from schemas.wire import BULK_SEGMENT, STATUS_CODE_FIELDS, integral


class WriteRefused(AssertionError):
    """The kit refused to send a write it is not allowed to make; nothing was sent."""


def _is_logout(value: object) -> bool:
    """LOGGED_OUT however a body may spell it: 1, 1.0 or "1" (a target may read any of them)."""
    if isinstance(value, str):
        return value.strip() == str(int(AgentStatus.LOGGED_OUT))
    return integral(value) == AgentStatus.LOGGED_OUT


class WriteGuard:
    """Decides whether a write may be sent. ``writable`` None means every agent (an emulator)."""

    def __init__(self, writable: frozenset[str] | None, allow_logout: bool) -> None:
        self.writable = writable
        self.allow_logout = allow_logout
        self._absent: set[str] = set()

    def mark_absent(self, agent_id: str) -> None:
        """The target has no such agent (a 404, or not in the full list): writes cannot hurt."""
        self._absent.add(agent_id)

    def may_change(self, agent_id: str) -> bool:
        return self.writable is None or agent_id in self.writable

    def _agent(self, agent_id: object, where: str) -> str | None:
        """The writable agent a write names (None for a proven-unknown id), or a refusal."""
        if not isinstance(agent_id, str):
            raise WriteRefused(f"{where}: agent-id {agent_id!r} is not a string; refused unsent.")
        if agent_id in self._absent:
            return None
        if not self.may_change(agent_id):
            raise WriteRefused(
                f"{where}: agent {agent_id} is not in AGENTSTATUS_WRITE_AGENTS; "
                "the kit never changes any other agent."
            )
        return agent_id

    def _status(self, body: Mapping[str, Any], where: str) -> None:
        if _is_logout(body.get("agent-status")) and not self.allow_logout:
            raise WriteRefused(
                f"{where}: LOGGED_OUT is not sent unless AGENTSTATUS_ALLOW_LOGOUT=1 "
                "(the API cannot bring an agent back from it)."
            )

    def check_single(self, agent_id: str, body: object) -> list[str]:
        """Refuse or allow a single set; returns the writable agents it may change."""
        where = f"PUT agent {agent_id}"
        touched = self._agent(agent_id, where)
        if isinstance(body, Mapping):
            self._status(body, where)
        return [] if touched is None else [touched]

    def check_bulk(self, method: str, body: object) -> list[str]:
        """Refuse or allow a bulk set; returns the writable agents it may change.

        A PUT on the bulk path is a single set of an agent called "bulk" on a target that
        follows the reference, so that id must be proven unknown (or writable) as well.
        """
        touched: list[str] = []
        if method.upper() == "PUT":
            named = self._agent(BULK_SEGMENT, "PUT .../agents/bulk")
            touched.extend([] if named is None else [named])
        if not isinstance(body, Mapping) or not isinstance(body.get("agents"), list):
            raise WriteRefused("a bulk body must be an object with an 'agents' array; refused.")
        for index, entry in enumerate(body["agents"]):
            where = f"bulk agents[{index}]"
            if not isinstance(entry, Mapping):
                raise WriteRefused(f"{where} is not an object; refused unsent.")
            named = self._agent(entry.get("agent-id"), where)
            self._status(entry, where)
            if named is not None and named not in touched:
                touched.append(named)
        return touched


@dataclass(frozen=True)
class RestoreProblem:
    """An agent the kit changed and could not put back: reported loudly, never hidden."""

    agent_id: str
    started: str
    now: str
    why: str

    def line(self) -> str:
        return f"{self.agent_id}: started {self.started}, now {self.now}: {self.why}"


def describe_agent(body: Mapping[str, Any] | None) -> str:
    """``5 WORK_OFFLINE, code 801/1726 Train``: an agent's status and reason code, for people."""
    if body is None:
        return "unknown (could not be read)"
    status = body.get("agent-status")
    try:
        text = AgentStatus(int(status)).label if status is not None else "no status"
    except (TypeError, ValueError):
        text = f"status {status!r}"
    list_field, item_field, short_field = STATUS_CODE_FIELDS
    if list_field in body:
        text += f", code {body.get(list_field)}/{body.get(item_field)}"
        if short_field in body:
            text += f" {body[short_field]}"
    return text


class RestoreLedger:
    """The starting state of every agent the kit wrote to, in the order first written."""

    def __init__(self) -> None:
        self._start: dict[str, dict[str, Any]] = {}
        self.problems: list[RestoreProblem] = []
        self.restored: list[str] = []

    def knows(self, agent_id: str) -> bool:
        return agent_id in self._start

    def remember(self, agent_id: str, body: Mapping[str, Any]) -> None:
        self._start.setdefault(agent_id, dict(body))

    def starts(self) -> dict[str, dict[str, Any]]:
        return dict(self._start)

    def forget(self, agent_ids: Iterable[str]) -> None:
        """Agents put back by other means (an emulator's reset): nothing left to restore."""
        for agent_id in agent_ids:
            self._start.pop(agent_id, None)
