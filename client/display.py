"""What ``agentstatus`` prints: tables for people, JSON for scripts, a progress bar on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from client.errors import AgentStatusError, ChangeRejectedError
from client.models import Agent, BulkResult, ChangeOutcome, status_label

PROGRESS_WIDTH = 30


class ProgressBar:
    """``[#####.....] 120/250 agents`` on one line of stderr, redrawn after each chunk."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream = stream
        self.total = total
        self(0, total)

    def __call__(self, done: int, total: int) -> None:
        filled = PROGRESS_WIDTH * done // total if total else PROGRESS_WIDTH
        bar = "#" * filled + "." * (PROGRESS_WIDTH - filled)
        self.stream.write(f"\r[{bar}] {done}/{total} agents")
        self.stream.flush()

    def finish(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart, trailing blanks trimmed."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]
    return "\n".join(lines)


def show_agents(agents: Sequence[Agent], as_json: bool, *, single: bool = False) -> None:
    """The agents as a table, or as the API's JSON (one object when ``single``)."""
    if as_json:
        document: object = agents[0].to_wire() if single else [a.to_wire() for a in agents]
        print(json.dumps(document, indent=2))
        return
    rows = [
        [
            agent.agent_id,
            agent.status_label,
            agent.name or "",
            _code_text(agent),
            agent.sub_status or "",
        ]
        for agent in agents
    ]
    print(table(["AGENT ID", "STATUS", "NAME", "STATUS CODE", "SUB-STATUS"], rows))


def _code_text(agent: Agent) -> str:
    code = agent.status_code
    if code is None:
        return ""
    return f"{code.list_id}/{code.item_id}" + (f" {code.short_code}" if code.short_code else "")


def show_set(outcome: ChangeOutcome, as_json: bool) -> None:
    """One line saying what the agent was set to and what the service said."""
    if as_json:
        print(json.dumps(outcome.to_wire(), indent=2))
        return
    target = outcome.change.status if outcome.change is not None else None
    label = status_label(target) if target is not None else "its status"
    said = ": ".join(part for part in (outcome.reason, outcome.message) if part)
    print(f"{outcome.agent_id} set to {label}" + (f" ({said})" if said else ""))


def show_bulk(
    result: BulkResult,
    as_json: bool,
    *,
    to: TextIO | None = None,
    interrupted: Mapping[str, object] | None = None,
) -> None:
    """Each entry's result, then the counts; ``to`` is stderr for a partial result in JSON
    mode, so that stdout holds only the error document. ``interrupted`` (how far a bulk run
    got when it was stopped) goes into the JSON document, and makes it not ``ok``."""
    stream = to or sys.stdout
    if as_json:
        document: dict[str, object] = {
            "ok": result.ok and interrupted is None,
            "succeeded": len(result.succeeded),
            "failed": len(result.failed),
            "results": [entry.to_wire() for entry in result],
        }
        if interrupted is not None:
            document["interrupted"] = dict(interrupted)
        print(json.dumps(document, indent=2), file=stream)
        return
    rows = [
        [entry.agent_id, str(entry.change_status or "-"), entry.reason or ""] for entry in result
    ]
    print(table(["AGENT ID", "RESULT", "REASON"], rows), file=stream)
    print(
        f"{len(result)} changes: {len(result.succeeded)} succeeded, {len(result.failed)} failed",
        file=stream,
    )


def show_error(error: AgentStatusError, as_json: bool) -> None:
    """The error on stderr, and as a JSON document on stdout for scripts."""
    if as_json:
        document = {
            "error": {
                "type": type(error).__name__,
                "status": error.status,
                "message": str(error),
                "request-id": error.request_id,
            }
        }
        print(json.dumps(document, indent=2))
    what = "refused" if isinstance(error, ChangeRejectedError) else "error"
    print(f"agentstatus: {what}: {error}", file=sys.stderr)
