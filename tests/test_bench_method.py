"""The benchmark's arithmetic: pairs measured back to back, order alternating by round, and
medians reported, so that one disturbed round moves neither a ratio nor a figure."""

from __future__ import annotations

from typing import Any

import pytest

from bench import run
from bench.load import Request, Result


class Warm:
    status_code = 200
    text = ""


def test_pairs_alternate_and_report_medians(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "PAIRS", [("get one", "baseline get")])
    monkeypatch.setattr(run, "ROUNDS", 4)
    monkeypatch.setattr(run.requests, "request", lambda *args, **kwargs: Warm())
    subject_speeds = iter([80.0, 90.0, 5.0, 85.0])  # round 3 was disturbed on one side only
    order: list[str] = []

    def drive(request: Request, connections: int, seconds: float) -> Result:
        if seconds == run.WARMUP_SECONDS:
            return Result(1.0, 1.0, 1.0, 1, 0)
        order.append(request.url)
        speed = next(subject_speeds) if request.url == "get one" else 100.0
        return Result(speed, 1000 / speed, 2000 / speed, int(speed), 0)

    monkeypatch.setattr(run, "drive", drive)
    requests_by_name: dict[str, Any] = {
        name: Request("GET", name, {}) for name in ("baseline get", "get one")
    }
    figures, ratios = run.run_all(requests_by_name)

    assert order == ["baseline get", "get one", "get one", "baseline get"] * 2
    assert ratios == {"get one / baseline get": pytest.approx(0.825)}
    assert figures["get one"]["requests_per_second"] == 82.5
    assert figures["get one"]["runs"] == 4
    assert figures["baseline get"]["p99_ms"] == 20.0
    assert figures["get one"]["p99_ms_of_each_run"] == [25.0, 22.22, 400.0, 23.53]
