"""The agent statuses and the transition table: the one copy of the rules in the project.

The emulator enforces these rules, the client offers them as a local pre-check and the
contract tests use them as the model of a Hypothesis state machine. Nobody re-types them.

Source: ``allowed-transitions.png`` in the vendor's guide (see ``../shared/reference``).
Setting an agent to the status it already has is not drawn in the diagram; this project
allows it for the three joined statuses (it is how an agent on break gets a new reason code)
and refuses it for LOGGED_OUT, which the API cannot leave.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from types import MappingProxyType
from typing import Final, cast


class AgentStatus(IntEnum):
    """The twelve agent statuses, with the vendor's names."""

    UNKNOWN = 0
    LOGGED_OUT = 1
    LOGGED_IN = 2
    ON_BREAK = 3
    WAIT_TRANSACT = 4
    WORK_OFFLINE = 5
    TRANSACT_OFFERED = 6
    PROCESS_TRANSACT = 7
    POST_PROCESS = 8
    BUSY = 9
    DIRECT_CALL = 10
    ON_EMAIL = 11

    @property
    def settable(self) -> bool:
        """Whether the API accepts this status as a target at all."""
        return self in SETTABLE

    @property
    def label(self) -> str:
        """``"4 WAIT_TRANSACT"``: the form every refusal message uses."""
        return f"{self.value} {self.name}"


def status_numbers() -> str:
    """The numbers of the known statuses, runs collapsed: ``"0-11"``."""
    numbers = sorted(int(status) for status in AgentStatus)
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return ", ".join(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]) for run in runs)


def _listing(statuses: Iterable[AgentStatus], *, labelled: bool) -> str:
    """``"1, 3, 4 and 5"`` (or with the names: ``"1 LOGGED_OUT, 3 ON_BREAK, ..."``)."""
    words = [status.label if labelled else str(status.value) for status in sorted(statuses)]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def unknown_status_name(word: str) -> str:
    """Why ``word`` names no status: the numbers and names there are."""
    names = ", ".join(status.name for status in AgentStatus)
    return f"unknown status {word!r}; use a number {status_numbers()} or one of {names}"


@dataclass(frozen=True, slots=True)
class TransitionTable:
    """from-status -> the statuses the API may move an agent to (anything absent is refused),
    and everything said about it, derived from those rows and nothing else: a table with other
    rows (a test's) has its own settable statuses and its own refusal messages.

    The rows are read-only (frozensets in a ``MappingProxyType``), so what is derived from them
    at construction can never go stale.
    """

    rows: Mapping[AgentStatus, frozenset[AgentStatus]]
    settable: frozenset[AgentStatus] = field(init=False)
    """The statuses the API accepts as a target at all: every status some row leads to."""
    repeatable: frozenset[AgentStatus] = field(init=False)
    """The statuses an agent can be set to again (a new reason code): each is its own target."""
    changeable: frozenset[AgentStatus] = field(init=False)
    """The statuses an agent can be moved from: those with a row."""

    def __post_init__(self) -> None:
        rows = MappingProxyType(
            {
                AgentStatus(source): frozenset(map(AgentStatus, targets))
                for source, targets in self.rows.items()
            }
        )
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "settable", frozenset[AgentStatus]().union(*rows.values()))
        object.__setattr__(
            self,
            "repeatable",
            frozenset(source for source, targets in rows.items() if source in targets),
        )
        object.__setattr__(self, "changeable", frozenset(rows))

    def allows(self, current: int, target: int) -> bool:
        """True when the API allows moving an agent from ``current`` to ``target`` (a number
        that is no status is in no row and no set)."""
        # An IntEnum hashes and compares as its number: plain numbers look the rows up directly,
        # without building enum members on every set.
        rows = cast("Mapping[int, frozenset[int]]", self.rows)
        return target in rows.get(current, frozenset())

    def refusal(self, current: int, target: int) -> str | None:
        """Why the API refuses ``current`` -> ``target``, or None when it is allowed."""
        if self.allows(current, target):
            return None
        try:
            destination = AgentStatus(target)
        except ValueError:
            return f"agent-status {target} is not a known status ({status_numbers()})."
        if destination not in self.settable:
            return (
                f"agent-status {destination.label} cannot be set through the API; "
                f"only {_listing(self.settable, labelled=True)} can."
            )
        try:
            source = AgentStatus(current)
        except ValueError:
            return (
                f"The agent's status {current} is not a known status ({status_numbers()}); "
                "it cannot be changed."
            )
        if source == AgentStatus.LOGGED_OUT and source not in self.changeable:
            return (
                f"The agent is {source.label}; an agent logged out cannot be changed "
                f"through the API (refused: {source.label} -> {destination.label})."
            )
        return (
            f"The transition {source.label} -> {destination.label} is not allowed through the API; "
            f"it is allowed only from {self.changeable_from()}."
        )

    def unknown_status(self, number: int) -> str:
        """Why ``agent-status`` ``number`` is refused when it is no status at all."""
        return (
            f"agent-status {number} is not a known status; statuses are {status_numbers()} "
            f"and only {_listing(self.settable, labelled=False)} can be set."
        )

    def unlisted_status(self, current: int) -> str:
        """Why an agent whose status ``current`` is no status cannot be changed."""
        return (
            f"The agent's status {current} is not in the rule table; the API allows changes "
            f"only from {self.changeable_from()}."
        )

    def changeable_from(self) -> str:
        """``"3 ON_BREAK, 4 WAIT_TRANSACT and 5 WORK_OFFLINE"``: the statuses with a row."""
        return _listing(self.changeable, labelled=True)


RULES: Final = TransitionTable(
    {
        AgentStatus.ON_BREAK: frozenset(
            {
                AgentStatus.ON_BREAK,
                AgentStatus.WAIT_TRANSACT,
                AgentStatus.WORK_OFFLINE,
                AgentStatus.LOGGED_OUT,
            }
        ),
        AgentStatus.WAIT_TRANSACT: frozenset(
            {
                AgentStatus.WAIT_TRANSACT,
                AgentStatus.ON_BREAK,
                AgentStatus.WORK_OFFLINE,
                AgentStatus.LOGGED_OUT,
            }
        ),
        AgentStatus.WORK_OFFLINE: frozenset(
            {
                AgentStatus.WORK_OFFLINE,
                AgentStatus.ON_BREAK,
                AgentStatus.WAIT_TRANSACT,
                AgentStatus.LOGGED_OUT,
            }
        ),
    }
)
"""The table of allowed-transitions.png. Everything below is this table's, under the names the
project imports; none is a second copy that could disagree with it."""

ALLOWED_TRANSITIONS: Final = RULES.rows
SETTABLE: Final = RULES.settable
REPEATABLE: Final = RULES.repeatable
"""The joined statuses (3, 4, 5): each can be set again (a new reason code) and moved to the
others, so setting one of them is always safe to repeat."""
can_transition: Final = RULES.allows
transition_refusal: Final = RULES.refusal
unknown_status_refusal: Final = RULES.unknown_status
unlisted_status_refusal: Final = RULES.unlisted_status

# The status-code pair the service shows for an agent logged out without a reason code.
LOGGED_OUT_STATUS_CODE_LIST_ID = -1
LOGGED_OUT_STATUS_CODE_ITEM_ID = 1
