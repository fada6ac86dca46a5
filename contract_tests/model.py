"""The model the checks compare the target with: the rule table of ``schemas.rules``, applied.

Nothing here re-types a rule: whether a change is allowed is ``can_transition``, and which
statuses can be set at all is ``SETTABLE``. What the model adds is what a change must do to an
agent as the API shows it, and the words a failure uses to name the rule that broke.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from schemas.rules import SETTABLE, AgentStatus, can_transition
from schemas.wire import STATUS_CODE_FIELDS

STATE_FIELDS = ("agent-status", *STATUS_CODE_FIELDS)
CODE_KINDS = ("none", "valid", "bad_list", "bad_item", "bad_short")
CODE_WORDS = {
    "none": "no status code",
    "valid": "a status code of the agent's group",
    "bad_list": "a status-code list not assigned to the agent's group",
    "bad_item": "a status-code item not in its list",
    "bad_short": "a short code that is not the item's",
}


@dataclass(frozen=True)
class StatusCode:
    """A reason code as the API takes it: list, item and (optionally) the item's short code.

    Not ``client.models.StatusCode``: the kit checks live tenants that the client is also
    checked against, so it builds what it sends without the client's code (a bug there must
    not hide in both)."""

    list_id: int
    item_id: int
    short_code: str | None

    def fields(self) -> dict[str, Any]:
        """The code as a body's status-code fields (no short-code field when it has none)."""
        values = (self.list_id, self.item_id, self.short_code)
        return {
            name: value
            for name, value in zip(STATUS_CODE_FIELDS, values, strict=True)
            if value is not None
        }


def label(status: int) -> str:
    try:
        return AgentStatus(status).label
    except ValueError:
        return f"{status} (no such status)"


@dataclass(frozen=True)
class ModelAgent:
    """What the target must show for one agent: its status, and its code when known."""

    status: int
    code_fields: dict[str, Any] | None
    """The exact status-code fields it must show; None where the vendor leaves it open."""

    @classmethod
    def read(cls, body: Mapping[str, Any]) -> ModelAgent:
        return cls(int(body["agent-status"]), {k: body[k] for k in STATUS_CODE_FIELDS if k in body})

    def mismatch(self, body: Mapping[str, Any], *, code_may_be_hidden: bool = False) -> str | None:
        """How the agent as read differs from the model, or None. ``code_may_be_hidden``: after
        a change, showing no status code at all is only a finding (``code_hidden``)."""
        if body.get("agent-status") != self.status:
            return f"status {label(body.get('agent-status', -1))}, model {label(self.status)}"
        shown = {k: body[k] for k in STATUS_CODE_FIELDS if k in body}
        if self.code_fields is None or shown == self.code_fields:
            return None
        if code_may_be_hidden and not shown:
            return None
        return f"status code {shown}, model {self.code_fields}"

    def code_hidden(self, body: Mapping[str, Any]) -> bool:
        """The agent shows no status code where the model has one. Neither vendor document
        says a read shows the code a change set (the emulator's choice): a finding."""
        return bool(self.code_fields) and not any(k in body for k in STATUS_CODE_FIELDS)


@dataclass(frozen=True)
class Expectation:
    """What one change must get: the answer the emulator gives, the rule behind it in words,
    and, where the vendor leaves the case open, the choice it falls under."""

    status: int
    rule: str
    shape: bool = False
    """Refused for the request's shape (a required field, an unsettable status): a bulk may
    refuse the whole request for it instead of the one entry."""
    open_point: str | None = None
    """A key of ``contract_tests.findings.CHOICES`` when the vendor documents leave the answer
    open: another of ``open_answers`` is a finding, not a failure."""
    open_answers: frozenset[int] = frozenset()

    def failure(self, answered: int) -> str | None:
        """Why ``answered`` breaks the rule, or None (also another answer the vendor allows).

        Neither document names the status of a refused change: where a refusal is expected,
        any client error but 401 and 403 refuses."""
        if answered == self.status or answered in self.open_answers:
            return None
        if self.status in REFUSALS and answered in REFUSALS:
            return None
        return f"{self.rule}, but the target answered {answered}"

    def finding(self, answered: int) -> str | None:
        """The choice of the emulator's that ``answered`` (an allowed answer) differs from."""
        if answered == self.status:
            return None
        if answered in self.open_answers:
            return self.open_point
        return REFUSAL_STATUS

    def after(
        self, agent: ModelAgent, target: int, code: StatusCode | None, answered: int | None = None
    ) -> ModelAgent:
        """The agent after the change was answered ``answered`` (by default the expected one)."""
        if (self.status if answered is None else answered) != 200:
            return agent
        if code is None or self.open_point == SHORT_CODE:
            return ModelAgent(target, None)  # which code it shows is checked on its own
        return ModelAgent(target, code.fields())


# Client errors that refuse a change (401 and 403 refuse the caller, not the change).
REFUSALS = frozenset(range(400, 500)) - {401, 403}
REFUSAL_STATUS = "refusal_status"
SHORT_CODE = "short_code_check"
ACCEPTED_OR_REFUSED = frozenset({200}) | REFUSALS
SAME_STATUS = "same_status"
UNKNOWN_AGENT = Expectation(
    404,
    "an entry naming an unknown agent must be refused (and changes no one)",
    open_point="unknown_agent_in_bulk",
    open_answers=REFUSALS,
)


def expect(
    current: int,
    target: int,
    code_kind: str,
    code: StatusCode | None,
    codes_required: bool | None,
) -> Expectation:
    """The rule table's verdict on ``current -> target`` with the given status code.

    ``codes_required`` None: the probes could not tell whether the target requires the
    status-code fields, so a change without them may be accepted or refused.
    """
    move = f"{label(current)} -> {label(target)} with {CODE_WORDS[code_kind]}"
    try:
        settable = AgentStatus(target) in SETTABLE
    except ValueError:
        settable = False
    if not settable:
        return Expectation(400, f"{move}: {label(target)} cannot be set through the API", True)
    incomplete = code is None or code.short_code is None
    if codes_required and incomplete:
        return Expectation(400, f"{move}: this target requires all status-code fields", True)
    if codes_required is None and incomplete:
        # A refusal may be for the missing fields: not evidence of any one open point.
        verdict = expect(current, target, code_kind, code, False)
        return replace(
            verdict, open_point=None, open_answers=verdict.open_answers | ACCEPTED_OR_REFUSED
        )
    if code_kind == "bad_short" and can_transition(current, target):
        # The emulator refuses it; a target may take the item and keep its own short code.
        return Expectation(
            400,
            f"{move}: refused, or the item's own short code kept",
            open_point=SHORT_CODE,
            open_answers=frozenset({200}),
        )
    if code_kind not in ("none", "valid"):
        return Expectation(400, f"{move}: {CODE_WORDS[code_kind]} must be refused")
    if current == target:
        # Not drawn in the vendor's diagram: the emulator allows it for 3, 4 and 5 only.
        answer = 200 if can_transition(current, target) else 400
        return Expectation(
            answer,
            f"{move}: the diagram does not draw it",
            open_point=SAME_STATUS,
            open_answers=ACCEPTED_OR_REFUSED,
        )
    if not can_transition(current, target):
        return Expectation(400, f"{move}: the rule table refuses this transition")
    return Expectation(200, f"{move}: the rule table allows this transition")
