"""The report of a run, as JSON and for people: the disputed points (``conformance``), the
findings, what broke the vendor contract, and the run's safety record."""

from __future__ import annotations

import datetime
import json
from typing import Any


def render_markdown(report: dict[str, Any]) -> str:
    """The report for people: one row per disputed point, then what broke and what stayed."""
    lines = [
        "# Agent Status API conformance report",
        "",
        f"Target: {report['target']}  ",
        f"Generated: {report['generated']}",
        "",
        "| point | observed | follows | how probed | evidence |",
        "|---|---|---|---|---|",
    ]
    for point in report["points"]:
        cells = [
            point["title"],
            json.dumps(point["observed"]),
            point["variant"],
            point["how"],
            str(point["evidence"]),
        ]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    lines += [
        "",
        "## Differs from the emulator",
        "",
        "What the vendor documents allow but the emulator chose otherwise (docs/DECISIONS.md):",
        "findings, not failures. Each row says what to change in the emulator, or which",
        "profile already answers the same.",
        "",
    ]
    if report["findings"]:
        lines += [
            "| point | the emulator | this target | seen | evidence | to match it |",
            "|---|---|---|---|---|---|",
        ]
        for finding in report["findings"]:
            cells = [
                finding["title"],
                finding["emulator"],
                finding["observed"],
                f"{finding['count']}x",
                " / ".join(finding["evidence"]),
                finding["change"],
            ]
            lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    else:
        lines.append("none")
    lines += ["", "## Vendor contract violations", ""]
    lines += [f"- {v}" for v in report["contract_violations"]] or ["none"]
    lines += ["", "## Agents changed and not put back", ""]
    lines += [f"- **{line}**" for line in report["not_restored"]] or ["none"]
    lines += ["", "## Checks not applicable to this target", ""]
    lines += [f"- {line}" for line in report["not_applicable"]] or ["none"]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def assemble(
    conformance: dict[str, Any] | None,
    target: str,
    not_restored: list[str],
    restored: list[str],
    not_applicable: list[str],
    findings: list[dict[str, Any]],
) -> dict[str, Any]:
    """The whole report as JSON: the probes (if they ran) and the run's safety record."""
    base = conformance or {"target": target, "points": [], "contract_violations": []}
    return {
        **base,
        "generated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "restored": restored,
        "not_restored": not_restored,
        "not_applicable": not_applicable,
        "findings": findings,
    }
