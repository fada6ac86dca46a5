"""The test double's in-process costs against the ``responses`` library (PyPI ``responses``).

Two figures, each a ratio to what ``responses`` costs for the same thing, with the targets
of the issue (reported as PASS/FAIL here, never asserted by the test suite):

- **one GET in-process**: ``emulate()`` answering a GET of one agent, through a
  ``requests.Session``, against ``responses`` giving a canned answer with the same status,
  body and content type through the same kind of session. Batches of calls alternate between
  the two; the figure is the median per-call time over the batches. Target: at most 1.0x.
- **a pytest test with the plugin**: pytest runs, in a subprocess, two generated files of
  ``PLUGIN_TESTS`` tests each: one whose tests activate ``responses`` (``@responses.activate``),
  register one canned answer and make one GET; one whose tests take the plugin's
  ``agentstatus_emulator`` fixture (a fresh tenant per test, deleted afterwards) and make one
  GET of an agent (with ``requests``, so the plugin answers it in-process). The figure is
  the wall time of pytest's whole test loop (every setup, call and teardown, the plugin's
  first start of its emulator included; it stops the emulator when pytest unconfigures,
  after the loop, which the process figure below holds) divided by the number of tests,
  median over ``PLUGIN_RUNS`` alternating runs of each file. Both runs load the same plugins
  (autoload off, the ``agentstatus`` plugin given with ``-p``), so neither carries another
  plugin's per-test hooks. Target: at most 1.3x.

The targets are judged on wall time. Each figure is also given in CPU time (the calling
thread's for the GET; the pytest process's for the plugin, its server thread included), which
moves less on a shared machine, and the plugin's also as the whole pytest process's wall time
per test (interpreter start, imports and collection included), which hides per-test costs.

``python -m bench.inprocess`` prints the figures; ``measure_inprocess()`` returns them.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from mock_server.harness.inprocess import emulate

BOB = "agAQDqmvKiRbG4ekigNSmbbb"
GET_BATCHES = int(os.environ.get("BENCH_INPROCESS_BATCHES", "21"))
GET_CALLS = int(os.environ.get("BENCH_INPROCESS_CALLS", "300"))
"""Calls per batch; each batch is timed whole, after ``WARMUP_CALLS`` untimed ones."""
WARMUP_CALLS = 30
PLUGIN_TESTS = int(os.environ.get("BENCH_PLUGIN_TESTS", "300"))
PLUGIN_RUNS = int(os.environ.get("BENCH_PLUGIN_RUNS", "5"))
GET_TARGET = 1.0
PLUGIN_TARGET = 1.3
PYTEST_SECONDS = 600


def _responses() -> Any:
    """The ``responses`` library (the ``bench`` extra), imported only when measured, so that a
    test install (``.[dev]``, where mypy also reads this file) does not need it."""
    try:
        return importlib.import_module("responses")
    except ImportError:
        raise SystemExit("bench.inprocess needs `responses`: pip install -e '.[bench]'") from None


def _timed_batch(call: Callable[[], object], calls: int) -> tuple[float, float]:
    """Per-call wall and thread-CPU microseconds of ``calls`` calls."""
    for _ in range(WARMUP_CALLS):
        call()
    gc.collect()
    wall, cpu = time.perf_counter(), time.thread_time()
    for _ in range(calls):
        call()
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    return wall / calls * 1e6, cpu / calls * 1e6


def _emulated_batch(calls: int) -> tuple[tuple[float, float], str, bytes, str]:
    with emulate() as emulator, requests.Session() as session:
        url, auth = f"{emulator.agents_url}/{BOB}", emulator.auth
        first = session.get(url, auth=auth, timeout=10)
        if first.status_code != 200:
            raise RuntimeError(f"GET {url} in-process answered {first.status_code}")

        def call() -> None:
            session.get(url, auth=auth, timeout=10).json()

        costs = _timed_batch(call, calls)
        return costs, url, first.content, first.headers["Content-Type"]


def _responses_batch(calls: int, url: str, body: bytes, content_type: str) -> tuple[float, float]:
    auth = ("myclientId", "nevertellanyone")
    with _responses().RequestsMock() as mocked, requests.Session() as session:
        mocked.get(url, body=body, status=200, content_type=content_type)

        def call() -> None:
            session.get(url, auth=auth, timeout=10).json()

        return _timed_batch(call, calls)


def measure_get(batches: int = GET_BATCHES, calls: int = GET_CALLS) -> dict[str, Any]:
    """One GET of one agent: ``emulate()`` against ``responses``, alternating batches."""
    emulated: list[tuple[float, float]] = []
    canned: list[tuple[float, float]] = []
    url = ""
    body = b""
    for _ in range(batches):
        costs, url, body, content_type = _emulated_batch(calls)
        emulated.append(costs)
        canned.append(_responses_batch(calls, url, body, content_type))
    result: dict[str, Any] = {
        "url": url,
        "body_bytes": len(body),
        "batches": batches,
        "calls_per_batch": calls,
    }
    for kind, index in (("wall", 0), ("cpu", 1)):
        mine = statistics.median(costs[index] for costs in emulated)
        theirs = statistics.median(costs[index] for costs in canned)
        result[f"emulate_{kind}_us"] = round(mine, 1)
        result[f"responses_{kind}_us"] = round(theirs, 1)
        result[f"ratio_{kind}"] = round(mine / theirs, 3)
    return result


TIMING_CONFTEST = """\
import json
import os
import statistics
import time

import pytest

PHASES = {}
TESTS = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtestloop(session):
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    with open(os.environ["BENCH_TIMING_FILE"], "w", encoding="utf-8") as out:
        json.dump({"wall": wall, "cpu": cpu, "tests": session.testscollected, "phases": PHASES,
                   "median_test": statistics.median(TESTS.values())}, out)


def pytest_runtest_logreport(report):
    PHASES[report.when] = PHASES.get(report.when, 0.0) + report.duration
    TESTS[report.nodeid] = TESTS.get(report.nodeid, 0.0) + report.duration
"""

RESPONSES_TESTS = """\
import requests
import responses

URL = {url!r}
BODY = {body!r}
AUTH = ("myclientId", "nevertellanyone")

"""

RESPONSES_TEST = """

@responses.activate
def test_get_{index}():
    responses.get(URL, body=BODY, status=200, content_type="application/json")
    got = requests.get(URL, auth=AUTH, timeout=10)
    assert got.status_code == 200 and got.json()["agent-status"] == 4
"""

PLUGIN_TESTS_HEAD = """\
import requests

AGENT = {agent!r}

"""

PLUGIN_TEST = """

def test_get_{index}(agentstatus_emulator):
    emulator = agentstatus_emulator
    got = requests.get(f"{{emulator.agents_url}}/{{AGENT}}", auth=emulator.auth, timeout=10)
    assert got.status_code == 200 and got.json()["agent-status"] == 4
"""


def _write_suites(directory: Path, tests: int, url: str, body: bytes) -> dict[str, Path]:
    (directory / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    (directory / "conftest.py").write_text(TIMING_CONFTEST)
    with_responses = directory / "test_with_responses.py"
    with_responses.write_text(
        RESPONSES_TESTS.format(url=url, body=body)
        + "".join(RESPONSES_TEST.format(index=index) for index in range(tests))
    )
    with_plugin = directory / "test_with_plugin.py"
    with_plugin.write_text(
        PLUGIN_TESTS_HEAD.format(agent=BOB)
        + "".join(PLUGIN_TEST.format(index=index) for index in range(tests))
    )
    return {"responses": with_responses, "plugin": with_plugin}


def _run_suite(directory: Path, suite: Path, tests: int) -> dict[str, Any]:
    timing = directory / f"{suite.stem}.timing.json"
    timing.unlink(missing_ok=True)
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "BENCH_TIMING_FILE": str(timing)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "mock_server.harness.pytest_plugin"]
    started = time.perf_counter()
    finished = subprocess.run(
        [*command, suite.name],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=PYTEST_SECONDS,
        check=False,
    )
    process_seconds = time.perf_counter() - started
    if finished.returncode != 0 or not timing.exists():
        raise RuntimeError(f"pytest {suite.name} failed:\n{finished.stdout}\n{finished.stderr}")
    measured: dict[str, Any] = json.loads(timing.read_text())
    measured["process"] = process_seconds
    if measured["tests"] != tests:
        raise RuntimeError(f"pytest {suite.name} collected {measured['tests']} tests, not {tests}")
    return measured


def measure_plugin(tests: int = PLUGIN_TESTS, runs: int = PLUGIN_RUNS) -> dict[str, Any]:
    """Per-test time of a pytest test using the plugin's fixture against one using
    ``responses``, each file run ``runs`` times, alternately."""
    _responses()  # the generated tests import it: say so now if it is missing
    with emulate() as emulator, requests.Session() as session:
        url = f"{emulator.agents_url}/{BOB}"
        body = session.get(url, auth=emulator.auth, timeout=10).content
    measured: dict[str, list[dict[str, Any]]] = {"responses": [], "plugin": []}
    with tempfile.TemporaryDirectory(prefix="agentstatus-bench-plugin-") as name:
        directory = Path(name)
        suites = _write_suites(directory, tests, url, body)
        for _ in range(runs):
            for kind, suite in suites.items():
                measured[kind].append(_run_suite(directory, suite, tests))
    result: dict[str, Any] = {"tests_per_run": tests, "runs": runs}
    for kind, rows in measured.items():
        result[f"{kind}_wall_ms_per_test"] = round(
            statistics.median(row["wall"] for row in rows) / tests * 1e3, 3
        )
        result[f"{kind}_cpu_ms_per_test"] = round(
            statistics.median(row["cpu"] for row in rows) / tests * 1e3, 3
        )
        result[f"{kind}_process_ms_per_test"] = round(
            statistics.median(row["process"] for row in rows) / tests * 1e3, 3
        )
        result[f"{kind}_median_test_ms"] = round(
            statistics.median(row["median_test"] for row in rows) * 1e3, 3
        )
        result[f"{kind}_phases_ms_per_test"] = {
            phase: round(
                statistics.median(row["phases"].get(phase, 0.0) for row in rows) / tests * 1e3, 3
            )
            for phase in ("setup", "call", "teardown")
        }
    for kind in ("wall", "cpu", "process"):
        result[f"ratio_{kind}"] = round(
            result[f"plugin_{kind}_ms_per_test"] / result[f"responses_{kind}_ms_per_test"], 3
        )
    result["ratio_median_test"] = round(
        result["plugin_median_test_ms"] / result["responses_median_test_ms"], 3
    )
    return result


def measure_inprocess() -> dict[str, Any]:
    """Both figures and the two targets (judged on wall time)."""
    get = measure_get()
    plugin = measure_plugin()
    return {
        "get_one": get,
        "plugin_per_test": plugin,
        "targets": {
            f"in-process GET <= {GET_TARGET:g}x responses": get["ratio_wall"] <= GET_TARGET,
            f"plugin per-test <= {PLUGIN_TARGET:g}x responses": plugin["ratio_wall"]
            <= PLUGIN_TARGET,
        },
    }


def main() -> int:
    report = measure_inprocess()
    get, plugin = report["get_one"], report["plugin_per_test"]
    print(
        f"one GET ({get['body_bytes']} bytes), median of {get['batches']} batches of "
        f"{get['calls_per_batch']} calls:"
    )
    for kind in ("wall", "cpu"):
        print(
            f"  {kind:4}: emulate() {get[f'emulate_{kind}_us']:8.1f} us   responses "
            f"{get[f'responses_{kind}_us']:8.1f} us   ratio {get[f'ratio_{kind}']:.3f}"
        )
    print(f"pytest per test, median of {plugin['runs']} runs of {plugin['tests_per_run']} tests:")
    for kind in ("wall", "cpu", "process"):
        print(
            f"  {kind:7}: plugin {plugin[f'plugin_{kind}_ms_per_test']:8.3f} ms   responses "
            f"{plugin[f'responses_{kind}_ms_per_test']:8.3f} ms   "
            f"ratio {plugin[f'ratio_{kind}']:.3f}"
        )
    print(
        f"  median test (setup+call+teardown, no session start/stop): plugin "
        f"{plugin['plugin_median_test_ms']:.3f} ms   responses "
        f"{plugin['responses_median_test_ms']:.3f} ms   ratio {plugin['ratio_median_test']:.3f}"
    )
    for kind in ("plugin", "responses"):
        phases = plugin[f"{kind}_phases_ms_per_test"]
        print(f"  {kind} phases (ms per test): " + ", ".join(f"{k} {v}" for k, v in phases.items()))
    for name, passed in report["targets"].items():
        print(f"  target {name:40} {'PASS' if passed else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
