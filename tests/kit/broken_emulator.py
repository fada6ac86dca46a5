"""A deliberately broken emulator: one rule flipped, served on 127.0.0.1 until killed.

``python -m tests.kit.broken_emulator FLIP`` prints the emulator's root URL on its first line.
The flips patch the rule table or wrap backend functions in this process only, so production
code has no test-only switch, and the contract kit (run in another process) still holds the
true rules.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from mock_server.app import create_app
from mock_server.core import backend
from mock_server.core.errors import InvalidRequest
from mock_server.core.profiles import DEFAULT, Profile
from mock_server.serving.threaded import start_in_thread
from schemas.rules import ALLOWED_TRANSITIONS, AgentStatus, TransitionTable


def _backend_rules(source: AgentStatus, targets: frozenset[AgentStatus]) -> Profile:
    """The backend refuses by a table whose ``source`` row is ``targets`` (the true table
    is read-only, so the backend's own lookup is what is swapped)."""
    table = TransitionTable({**ALLOWED_TRANSITIONS, source: targets})
    backend.transition_refusal = table.refusal
    return DEFAULT


def logged_out_may_become_available() -> Profile:
    """1 LOGGED_OUT -> 4 WAIT_TRANSACT allowed (the diagram's one-way line made two-way)."""
    return _backend_rules(AgentStatus.LOGGED_OUT, frozenset({AgentStatus.WAIT_TRANSACT}))


def available_may_not_take_a_break() -> Profile:
    """4 WAIT_TRANSACT -> 3 ON_BREAK refused."""
    allowed = ALLOWED_TRANSITIONS[AgentStatus.WAIT_TRANSACT]
    return _backend_rules(AgentStatus.WAIT_TRANSACT, allowed - {AgentStatus.ON_BREAK})


def bulk_limit_ignored() -> Profile:
    """The default profile claims a limit of 100 entries; this emulator applies none."""
    return replace(DEFAULT, bulk_limit=None)


def status_code_list_not_checked() -> Profile:
    """A list not assigned to the agent's group is accepted."""
    original = backend._check_status_code

    def unchecked(tenant: Any, agent: Any, target: Any, change: Any) -> str | None:
        try:
            return original(tenant, agent, target, change)
        except InvalidRequest as refusal:
            if "status code list id is invalid" not in refusal.detail:
                raise
            short: str | None = tenant.status_code_lists[change.list_id].items.get(change.item_id)
            return short

    backend._check_status_code = unchecked
    return DEFAULT


def unknown_agent_is_500_in_bulk() -> Profile:
    """A bulk entry for an unknown agent answers change-status 500 instead of 404."""
    original = backend.AgentStatusBackend.set_agents_statuses

    def wrapped(self: Any, tenant_id: str, payload: object) -> list[backend.BulkOutcome]:
        return [
            replace(outcome, change_status=500) if outcome.change_status == 404 else outcome
            for outcome in original(self, tenant_id, payload)
        ]

    backend.AgentStatusBackend.set_agents_statuses = wrapped  # type: ignore[method-assign]
    return DEFAULT


FLIPS: dict[str, Callable[[], Profile]] = {
    "1->4 allowed": logged_out_may_become_available,
    "4->3 refused": available_may_not_take_a_break,
    "bulk limit ignored": bulk_limit_ignored,
    "status-code list not checked": status_code_list_not_checked,
    "unknown agent 500 in bulk": unknown_agent_is_500_in_bulk,
}


def main(flip: str) -> None:
    profile = FLIPS[flip]()
    server = start_in_thread(create_app(profile=profile))
    print(server.base_url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1])
