"""The benchmark: each serving mode and a bare Flask baseline under the same server, driven on
127.0.0.1 by a bounded load generator; large-tenant costs measured in-process.

Results go to ``bench/results/latest.json`` and a chart ``bench/results/list-throughput.png``.
Targets are reported as pass/fail here, never asserted by the test suite.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import requests

from bench.fixtures import bench_fixture, big_tenant_id
from bench.load import Request, Result, drive, generator_name
from bench.scale import measure_all
from schemas.wire import API_BASE, agents_path, basic_authorization

RESULTS = Path(__file__).parent / "results"
SECONDS = float(os.environ.get("BENCH_SECONDS", "2"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "4"))
"""Each pair (``PAIRS``) is measured this many times; medians are reported."""
WARMUP_SECONDS = 1.0
"""Load before each measured run, discarded: a server's first seconds after it announces its
port are several times slower (workers still starting), which made whichever endpoint ran
first look slow, e.g. the baseline GET at a third of its speed."""
CONNECTIONS = 16
DEMO = "acmecorp01"
DEMO_AUTH = basic_authorization("myclientId", "nevertellanyone")
BOB = "agAQDqmvKiRbG4ekigNSmbbb"
BIN = Path(sys.executable).parent
MODES = {
    "werkzeug, 1 process, memory": ["--workers", "1"],
    "gunicorn, 2 workers, SQLite": ["--workers", "2"],
}


@contextmanager
def started(command: list[str], marker: str) -> Iterator[int]:
    """A server subprocess in its own process group; yields the port it printed."""
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        if process.stdout is None:  # Popen was given stdout=PIPE
            raise RuntimeError(f"{command[0]}: no output to read")
        for line in process.stdout:
            if marker in line:
                port = int(line.strip().rsplit(":", 1)[-1].split("/")[0].split()[-1])
                break
        else:
            raise RuntimeError(f"{command[0]} did not start")
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


def _big_auth(size: int) -> str:
    return basic_authorization(f"bench{size}user", f"bench{size}token")


def emulator_requests(base: str) -> dict[str, Request]:
    json_type = {"Content-Type": "application/json"}
    demo = {"Authorization": DEMO_AUTH}
    agents = f"{base}{API_BASE}{agents_path(DEMO)}"
    bulk_body = {"agents": [{"agent-id": f"ag1000x{n:07d}", "agent-status": 4} for n in range(100)]}
    big = {size: f"{base}{API_BASE}{agents_path(big_tenant_id(size))}" for size in (1000, 10000)}
    return {
        "list demo (20 agents)": Request("GET", agents, demo),
        "list 1,000 agents": Request("GET", big[1000], {"Authorization": _big_auth(1000)}),
        "list 10,000 agents": Request("GET", big[10000], {"Authorization": _big_auth(10000)}),
        "get one": Request("GET", f"{agents}/{BOB}", demo),
        "set one": Request("PUT", f"{agents}/{BOB}", {**demo, **json_type}, b'{"agent-status": 4}'),
        "bulk of 100": Request(
            "PUT",
            f"{big[1000]}/bulk",
            {"Authorization": _big_auth(1000), **json_type},
            orjson.dumps(bulk_body),
        ),
    }


def baseline_requests(base: str) -> dict[str, Request]:
    return {
        "baseline get": Request("GET", f"{base}/tiny/agent-1", {}),
        "baseline put": Request(
            "PUT",
            f"{base}/tiny/agent-1",
            {"Content-Type": "application/json"},
            b'{"agent-status": 4}',
        ),
        "baseline list 1,000 (json)": Request("GET", f"{base}/list/json", {}),
        "baseline list 1,000 (orjson)": Request("GET", f"{base}/list/orjson", {}),
    }


PAIRS: list[tuple[str, str]] = [
    ("list demo (20 agents)", "baseline get"),
    ("get one", "baseline get"),
    ("set one", "baseline put"),
    ("bulk of 100", "baseline put"),
    ("list 1,000 agents", "baseline list 1,000 (orjson)"),
    ("list 10,000 agents", "baseline get"),
    ("baseline list 1,000 (orjson)", "baseline get"),
    ("baseline list 1,000 (json)", "baseline get"),
]
"""Each measured against its reference run right next to it (subject, reference)."""


def pair_name(subject: str, reference: str) -> str:
    return f"{subject} / {reference}"


def run_all(
    requests_by_name: dict[str, Request],
) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """Every endpoint's median run, and every pair's median ratio.

    A pair is measured back to back, the reference first in even rounds and second in odd ones,
    and its ratio taken per round: on a shared machine the speed drifts by tens of percent
    within a minute, which hits both runs of a pair alike, and the median of the rounds ignores
    the rounds where it did not.
    """
    for name, request in requests_by_name.items():
        warm = requests.request(
            request.method, request.url, headers=request.headers, data=request.body, timeout=30
        )
        if not 200 <= warm.status_code < 300:
            raise RuntimeError(f"{name}: {warm.status_code} {warm.text[:200]}")
        drive(request, CONNECTIONS, WARMUP_SECONDS)
    runs: dict[str, list[Result]] = {name: [] for name in requests_by_name}
    pair_ratios: dict[str, list[float]] = {pair_name(*pair): [] for pair in PAIRS}
    for round_number in range(ROUNDS):
        for subject, reference in PAIRS:
            order = [reference, subject] if round_number % 2 == 0 else [subject, reference]
            measured = {name: drive(requests_by_name[name], CONNECTIONS, SECONDS) for name in order}
            for name, run in measured.items():
                runs[name].append(run)
            ratio = measured[subject].requests_per_second / measured[reference].requests_per_second
            pair_ratios[pair_name(subject, reference)].append(ratio)
    unmeasured = [name for name, measured_runs in runs.items() if not measured_runs]
    if unmeasured:
        raise RuntimeError(f"endpoints in no pair of PAIRS: {', '.join(unmeasured)}")
    results = {name: _median_result(measured_runs) for name, measured_runs in runs.items()}
    for name, figures in results.items():
        print(
            f"  {name:32} {figures['requests_per_second']:9.0f} req/s"
            f"  p50 {figures['p50_ms']:6.2f} ms  p99 {figures['p99_ms']:6.2f} ms"
            f"  non-2xx {figures['failures']}",
            flush=True,
        )
    return results, {name: statistics.median(values) for name, values in pair_ratios.items()}


def _median_result(measured: list[Result]) -> dict[str, Any]:
    """Median requests/s, p50 and p99 of an endpoint's runs; requests and failures summed."""
    return {
        "requests_per_second": round(statistics.median(r.requests_per_second for r in measured), 1),
        "p50_ms": round(statistics.median(r.p50_ms for r in measured), 2),
        "p99_ms": round(statistics.median(r.p99_ms for r in measured), 2),
        "runs": len(measured),
        "requests": sum(r.requests for r in measured),
        "failures": sum(r.failures for r in measured),
    }


def targets(mode: dict[str, dict[str, Any]], ratio: dict[str, float]) -> dict[str, bool]:
    def of(subject: str, reference: str) -> float:
        return ratio[pair_name(subject, reference)]

    return {
        "list demo >= 80% of baseline GET": of("list demo (20 agents)", "baseline get") >= 0.8,
        "get one >= 80% of baseline GET": of("get one", "baseline get") >= 0.8,
        "set one >= 70% of baseline PUT": of("set one", "baseline put") >= 0.7,
        "list 1,000 >= bare orjson list 1,000": of(
            "list 1,000 agents", "baseline list 1,000 (orjson)"
        )
        >= 1.0,
        "get one p99 < 10 ms": mode["get one"]["p99_ms"] < 10,
        "set one p99 < 10 ms": mode["set one"]["p99_ms"] < 10,
    }


def machine() -> dict[str, Any]:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    return {
        "nproc": os.cpu_count(),
        "lscpu": lscpu.splitlines()[:10],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def chart(report: dict[str, Any], path: Path) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed (pip install -e '.[bench]'): no chart"
    sizes = [20, 1000, 10000]
    names = ["list demo (20 agents)", "list 1,000 agents", "list 10,000 agents"]
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for mode, results in report["modes"].items():
        axes.plot(
            sizes, [results["emulator"][n]["requests_per_second"] for n in names], "o-", label=mode
        )
        orjson_rps = results["baseline"]["baseline list 1,000 (orjson)"]["requests_per_second"]
        axes.plot(
            [1000], [orjson_rps], "x", markersize=10, label=f"bare Flask orjson 1,000 ({mode})"
        )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("agents in the tenant")
    axes.set_ylabel("list requests/s")
    axes.set_title(f"GET agents: throughput vs tenant size ({CONNECTIONS} connections)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return str(path)


def main() -> int:
    begun = time.monotonic()
    RESULTS.mkdir(exist_ok=True)
    print(f"load generator: {generator_name()}; {CONNECTIONS} connections, {SECONDS:g} s per run")
    report: dict[str, Any] = {
        "generator": generator_name(),
        "connections": CONNECTIONS,
        "seconds_per_run": SECONDS,
        "rounds": ROUNDS,
        "machine": machine(),
        "modes": {},
    }
    with tempfile.TemporaryDirectory(prefix="agentstatus-bench-") as directory:
        fixture = Path(directory) / "bench-fixture.json"
        fixture.write_bytes(orjson.dumps(bench_fixture(1000, 10000)))
        for mode, flags in MODES.items():
            workers = flags[1]
            print(f"{mode}:", flush=True)
            command = [
                str(BIN / "agentstatus-mock"),
                "serve",
                "--port",
                "0",
                "--fixture",
                str(fixture),
                *flags,
            ]
            if workers != "1":
                command += ["--state", str(Path(directory) / f"state-{workers}.sqlite")]
            with (
                started(
                    [sys.executable, "-m", "bench.baseline", "--workers", workers], "listening on"
                ) as baseline_port,
                started(command, "Agent Status API emulator on") as emulator_port,
            ):
                bare = baseline_requests(f"http://127.0.0.1:{baseline_port}")
                measured, ratio = run_all(
                    {**bare, **emulator_requests(f"http://127.0.0.1:{emulator_port}")}
                )
            baseline = {name: result for name, result in measured.items() if name in bare}
            emulator = {name: result for name, result in measured.items() if name not in bare}
            results: dict[str, Any] = {"baseline": baseline, "emulator": emulator}
            results["ratios"] = {key: round(value, 3) for key, value in ratio.items()}
            results["targets"] = targets(emulator, ratio)
            report["modes"][mode] = results
    print("large tenants (in-process):", flush=True)
    report["scale"] = measure_all()
    for row in report["scale"]:
        print(f"  {json.dumps(row)}")
    report["chart"] = chart(report, RESULTS / "list-throughput.png")
    report["runtime_seconds"] = round(time.monotonic() - begun, 1)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    print()
    for mode, results in report["modes"].items():
        print(f"{mode}:")
        for key, value in results["ratios"].items():
            print(f"  {key:52} {value:6.2f}")
        for key, passed in results["targets"].items():
            print(f"  target {key:45} {'PASS' if passed else 'FAIL'}")
    print(
        f"chart: {report['chart']}; results: {RESULTS / 'latest.json'}; "
        f"{report['runtime_seconds']} s"
    )
    return 0
