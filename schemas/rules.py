"""The agent statuses and the transition table: the one copy of the rules in the project.

The emulator enforces these rules, the client offers them as a local pre-check and the
contract tests use them as the model of a Hypothesis state machine. Nobody re-types them.

Source: ``allowed-transitions.png`` in the vendor's guide (see ``../shared/reference``).
Setting an agent to the status it already has is not drawn in the diagram; this project
allows it for the three joined statuses (it is how an agent on break gets a new reason code)
and refuses it for LOGGED_OUT, which the API cannot leave.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import cast


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


SETTABLE: frozenset[AgentStatus] = frozenset(
    {
        AgentStatus.LOGGED_OUT,
        AgentStatus.ON_BREAK,
        AgentStatus.WAIT_TRANSACT,
        AgentStatus.WORK_OFFLINE,
    }
)

# from-status -> the statuses the API may move an agent to. Anything absent is refused.
ALLOWED_TRANSITIONS: dict[AgentStatus, frozenset[AgentStatus]] = {
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

# The status-code pair the service shows for an agent logged out without a reason code.
LOGGED_OUT_STATUS_CODE_LIST_ID = -1
LOGGED_OUT_STATUS_CODE_ITEM_ID = 1


def can_transition(current: int, target: int) -> bool:
    """True when the API allows moving an agent from ``current`` to ``target`` (a number that
    is no status is in no row and no set)."""
    # An IntEnum hashes and compares as its number: plain numbers look the table up directly,
    # without building enum members on every set.
    allowed = cast("Mapping[int, frozenset[int]]", ALLOWED_TRANSITIONS)
    return target in allowed.get(current, frozenset())


def transition_refusal(current: int, target: int) -> str | None:
    """Why the API refuses ``current`` -> ``target``, or None when it is allowed."""
    if can_transition(current, target):
        return None
    try:
        destination = AgentStatus(target)
    except ValueError:
        return f"agent-status {target} is not a known status (0-11)."
    if not destination.settable:
        return (
            f"agent-status {destination.label} cannot be set through the API; "
            "only 1 LOGGED_OUT, 3 ON_BREAK, 4 WAIT_TRANSACT and 5 WORK_OFFLINE can."
        )
    try:
        source = AgentStatus(current)
    except ValueError:
        return f"The agent's status {current} is not a known status (0-11); it cannot be changed."
    if source == AgentStatus.LOGGED_OUT:
        return (
            f"The agent is {source.label}; an agent logged out cannot be changed "
            f"through the API (refused: {source.label} -> {destination.label})."
        )
    return (
        f"The transition {source.label} -> {destination.label} is not allowed through the API; "
        "it is allowed only from 3 ON_BREAK, 4 WAIT_TRANSACT and 5 WORK_OFFLINE."
    )


REPEATABLE: frozenset[AgentStatus] = frozenset(
    status for status in AgentStatus if can_transition(status, status)
)
"""The joined statuses (3, 4, 5): each can be set again (a new reason code) and moved to the
others, so setting one of them is always safe to repeat."""
