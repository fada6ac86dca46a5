"""What the API returns and accepts, as frozen dataclasses in Python names.

Wire names (``agent-status``, ``status-code-list-id``, ...) appear only here, in the
``from_wire``/``to_wire`` pairs. Responses are read leniently: a field the client does not
know, or a known field with a type the contract does not give it, is kept in ``extra`` rather
than dropped or fatal, and a status number outside 0-11 is kept as a plain ``int``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

from client.errors import TransitionNotAllowedError
from schemas.rules import (
    AgentStatus,
    transition_refusal,
    unknown_status_name,
    unlisted_status_refusal,
)
from schemas.wire import STATUS_CODE_FIELDS, integral

EMPTY: Mapping[str, Any] = MappingProxyType({})


def _no_extra() -> Mapping[str, Any]:
    return EMPTY


class _PicklesExtra:
    """Pickling for a result with ``extra``: pickle cannot copy the read-only view, so the
    fields travel as a dict and the view is made again (errors carry results across processes).
    """

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Any]]

    def __reduce__(self) -> tuple[Any, ...]:
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return _with_extra, (type(self), {**values, "extra": dict(values["extra"])})


_Result = TypeVar("_Result", bound=_PicklesExtra)


def _with_extra(kind: type[_Result], values: dict[str, Any]) -> _Result:
    return kind(**{**values, "extra": MappingProxyType(values["extra"])})


AGENT_ID = "agent-id"
AGENT_STATUS = "agent-status"
LIST_ID, ITEM_ID, SHORT_CODE = STATUS_CODE_FIELDS
NAME = "name"
SUB_STATUS = "agent-sub-status"
CHANGE_STATUS = "change-status"
REASON = "reason"
MESSAGE = "message"


def status_of(number: int) -> AgentStatus | int:
    """The named status, or the bare number when the service sends one the table lacks."""
    try:
        return AgentStatus(number)
    except ValueError:
        return number


def status_label(status: int) -> str:
    """``"4 WAIT_TRANSACT"``, or ``"42 (unknown)"`` for a number outside the table."""
    known = status_of(status)
    return known.label if isinstance(known, AgentStatus) else f"{status} (unknown)"


def parse_status(text: str | int) -> int:
    """A status from a number or a name (``3``, ``"ON_BREAK"``, ``"on-break"``)."""
    number = integral(text)
    if number is not None:
        return number
    word = str(text).strip()
    if word.lstrip("-").isdigit():
        return int(word)
    try:
        return AgentStatus[word.upper().replace("-", "_")].value
    except KeyError:
        raise ValueError(unknown_status_name(word)) from None


def _split(
    data: Mapping[str, Any], expected: Mapping[str, type]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Known fields of the right type (an integral number as an int), and everything else
    (for ``extra``)."""
    known: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        kind = expected.get(key)
        number = integral(value) if kind is int else None
        if number is not None:
            known[key] = number
        elif kind is not None and kind is not int and isinstance(value, kind):
            known[key] = value
        else:
            extra[key] = value
    return known, extra


@dataclass(frozen=True, slots=True)
class StatusCode:
    """A reason code: the list, the item in it, and the item's short code (optional)."""

    list_id: int
    item_id: int
    short_code: str | None = None


@dataclass(frozen=True, slots=True)
class Agent(_PicklesExtra):
    """One agent as the API shows it. ``status`` is an ``AgentStatus`` unless unknown."""

    agent_id: str
    status: AgentStatus | int
    name: str | None = None
    sub_status: str | None = None
    status_code_list_id: int | None = None
    status_code_item_id: int | None = None
    status_code_short_code: str | None = None
    extra: Mapping[str, Any] = field(default_factory=_no_extra, hash=False)

    @property
    def status_code(self) -> StatusCode | None:
        if self.status_code_list_id is None or self.status_code_item_id is None:
            return None
        return StatusCode(
            self.status_code_list_id, self.status_code_item_id, self.status_code_short_code
        )

    @property
    def status_label(self) -> str:
        return status_label(self.status)

    @classmethod
    def from_wire(cls, data: object) -> Agent:
        """An agent from its JSON object; ValueError when it lacks an id or a status."""
        if not isinstance(data, Mapping):
            raise ValueError(f"an agent must be a JSON object, got {type(data).__name__}")
        known, extra = _split(
            data,
            {
                AGENT_ID: str,
                AGENT_STATUS: int,
                NAME: str,
                SUB_STATUS: str,
                LIST_ID: int,
                ITEM_ID: int,
                SHORT_CODE: str,
            },
        )
        for required in (AGENT_ID, AGENT_STATUS):
            if required not in known:
                raise ValueError(f"an agent must have {required}: {dict(data)!r:.200}")
        return cls(
            agent_id=known[AGENT_ID],
            status=status_of(known[AGENT_STATUS]),
            name=known.get(NAME),
            sub_status=known.get(SUB_STATUS),
            status_code_list_id=known.get(LIST_ID),
            status_code_item_id=known.get(ITEM_ID),
            status_code_short_code=known.get(SHORT_CODE),
            extra=MappingProxyType(extra),
        )

    def to_wire(self) -> dict[str, Any]:
        """The agent in the API's JSON form, absent fields omitted, extra fields kept."""
        body: dict[str, Any] = {AGENT_ID: self.agent_id, AGENT_STATUS: int(self.status)}
        for key, value in (
            (LIST_ID, self.status_code_list_id),
            (ITEM_ID, self.status_code_item_id),
            (SHORT_CODE, self.status_code_short_code),
            (NAME, self.name),
            (SUB_STATUS, self.sub_status),
        ):
            if value is not None:
                body[key] = value
        body.update(self.extra)
        return body


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One requested change. ``status`` None keeps the agent's status (bulk only)."""

    agent_id: str
    status: int | None
    status_code: StatusCode | None = None

    def body(self) -> dict[str, Any]:
        """The fields of a set request, without the agent id (the single set's body)."""
        body: dict[str, Any] = {}
        if self.status is not None:
            body[AGENT_STATUS] = int(self.status)
        if self.status_code is not None:
            body[LIST_ID] = self.status_code.list_id
            body[ITEM_ID] = self.status_code.item_id
            if self.status_code.short_code is not None:
                body[SHORT_CODE] = self.status_code.short_code
        return body

    def to_wire(self) -> dict[str, Any]:
        """One entry of a bulk request."""
        return {AGENT_ID: self.agent_id, **self.body()}

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> StatusChange:
        """A change from a bulk entry; numbers may be text (CSV), a status may be a name."""
        agent_id = data.get(AGENT_ID)
        if not isinstance(agent_id, str) or not agent_id.strip():
            raise ValueError(f"{AGENT_ID} is required")
        raw_status = _blank_to_none(data.get(AGENT_STATUS))
        status = None if raw_status is None else parse_status(raw_status)
        list_id = _optional_int(data.get(LIST_ID), LIST_ID)
        item_id = _optional_int(data.get(ITEM_ID), ITEM_ID)
        short_code = _blank_to_none(data.get(SHORT_CODE))
        if short_code is not None and not isinstance(short_code, str):
            raise ValueError(f"{SHORT_CODE} must be text, got {short_code!r}")
        if list_id is None and item_id is None:
            if short_code is not None:
                raise ValueError(f"{SHORT_CODE} needs {LIST_ID} and {ITEM_ID}")
            return cls(agent_id.strip(), status)
        if list_id is None or item_id is None:
            raise ValueError(f"{LIST_ID} and {ITEM_ID} go together")
        return cls(agent_id.strip(), status, StatusCode(list_id, item_id, short_code))


def _blank_to_none(value: object) -> Any:
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


def _optional_int(value: object, name: str) -> int | None:
    value = _blank_to_none(value)
    if value is None:
        return None
    number = integral(value)
    if number is not None:
        return number
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValueError(f"{name} must be an integer, got {value!r}")


@dataclass(frozen=True, slots=True)
class ChangeOutcome(_PicklesExtra):
    """What the service said about one change; ``change_status`` None: it said nothing."""

    agent_id: str
    change_status: int | None
    reason: str | None = None
    message: str | None = None
    change: StatusChange | None = None
    extra: Mapping[str, Any] = field(default_factory=_no_extra, hash=False)

    @property
    def ok(self) -> bool:
        return self.change_status is not None and 200 <= self.change_status < 300

    @classmethod
    def from_wire(cls, data: Mapping[str, Any], change: StatusChange) -> ChangeOutcome:
        known, extra = _split(data, {AGENT_ID: str, CHANGE_STATUS: int, REASON: str, MESSAGE: str})
        return cls(
            agent_id=known.get(AGENT_ID, change.agent_id),
            change_status=known.get(CHANGE_STATUS),
            reason=known.get(REASON),
            message=known.get(MESSAGE),
            change=change,
            extra=MappingProxyType(extra),
        )

    def to_wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {AGENT_ID: self.agent_id, CHANGE_STATUS: self.change_status}
        if self.reason is not None:
            body[REASON] = self.reason
        if self.message is not None:
            body[MESSAGE] = self.message
        body.update(self.extra)
        return body


@dataclass(frozen=True, slots=True)
class BulkResult:
    """The outcome of every change of a bulk call, in the order the caller gave them."""

    entries: tuple[ChangeOutcome, ...]

    @property
    def ok(self) -> bool:
        return all(entry.ok for entry in self.entries)

    @property
    def succeeded(self) -> tuple[ChangeOutcome, ...]:
        return tuple(entry for entry in self.entries if entry.ok)

    @property
    def failed(self) -> tuple[ChangeOutcome, ...]:
        return tuple(entry for entry in self.entries if not entry.ok)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[ChangeOutcome]:
        return iter(self.entries)


def check_transition(agent: Agent | int, target: int) -> None:
    """Refuse locally, before sending, a change the rule table forbids.

    ``agent`` is an ``Agent`` (as just read) or its current status number.
    """
    current = agent.status if isinstance(agent, Agent) else agent
    if not isinstance(status_of(current), AgentStatus):
        raise TransitionNotAllowedError(unlisted_status_refusal(current))
    refusal = transition_refusal(current, target)
    if refusal is not None:
        raise TransitionNotAllowedError(refusal)
