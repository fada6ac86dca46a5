"""The report of a replay: for people, what was mapped and one block per exchange that
differs; for scripts (``--json``), the same as a document; both end with the counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mock_server.live.recording import shown_path
from mock_server.live.replay.run import Outcome, ReplayRun


def render(replay: ReplayRun, outcomes: Sequence[Outcome], recording: str) -> str:
    """The human report: what was mapped, one block per exchange that differs, a summary."""
    lines = [
        f"Replayed {recording} against the emulator (profile {replay.profile}); tenants: "
        + (", ".join(f"{live} -> {emu}" for live, emu in replay.ids.tenants.items()) or "-")
    ]
    if replay.ids.agents:
        mapped = ", ".join(f"{live} -> {emu}" for live, emu in replay.ids.agents.items())
        lines.append(f"Agents mapped: {mapped}")
    for outcome in outcomes:
        if not outcome.differences:
            continue
        lines.append("")
        mapped = shown_path(outcome.replayed_path)
        replayed = "" if outcome.replayed_path == outcome.path else f" (as {mapped})"
        lines.append(f"#{outcome.number} {outcome.method} {shown_path(outcome.path)}{replayed}")
        lines += [f"  {difference.describe()}" for difference in outcome.differences]
    lines += ["", summary_line(replay, outcomes)]
    return "\n".join(lines)


def report_json(
    replay: ReplayRun, outcomes: Sequence[Outcome], recording: str, fixture: str | None
) -> dict[str, Any]:
    """The report for scripts: the mappings, the counts, each exchange that differs."""
    return {
        "recording": recording,
        "profile": replay.profile,
        "fixture": fixture,
        "tenant-map": replay.ids.tenants,
        "agent-map": replay.ids.agents,
        "summary": summary(replay, outcomes),
        "exchanges": [outcome.to_json() for outcome in outcomes if outcome.differences],
    }


def summary(replay: ReplayRun, outcomes: Sequence[Outcome]) -> dict[str, int]:
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


def summary_line(replay: ReplayRun, outcomes: Sequence[Outcome]) -> str:
    counts = summary(replay, outcomes)
    return (
        f"{counts['replayed']} exchanges replayed ({counts['skipped']} unanswered skipped): "
        f"{counts['differing']} differ, {counts['informational-only']} differ only in reasons, "
        f"{counts['same']} the same."
    )
