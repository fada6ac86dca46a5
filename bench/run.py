"""The benchmark: each serving mode and a bare Flask baseline under the same server, driven on
127.0.0.1 by a bounded load generator; large-tenant costs measured in-process.

Each endpoint is measured in groups back to back with its references (``PAIRS``, widened by
the peers): list demo, get one and set one with connections kept alive and with a new
connection per request. Then get one is measured again while 50 slow clients trickle their
headers (``bench.slow``), and status changes are streamed to 10 event readers
(``bench.events``). With ``BENCH_PEERS=1`` (``make bench PEERS=1``) WireMock and Prism
(``bench.peers``) are installed, started and measured in the same groups.

Results go to ``bench/results/latest.json`` and a chart ``bench/results/list-throughput.png``.
Targets are reported as pass/fail here, never asserted by the test suite.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests

from bench import events, peers
from bench.fixtures import bench_fixture, big_tenant_id
from bench.load import TIMEOUT_SECONDS, Request, Result, drive, generator_name
from bench.processes import stop_group
from bench.scale import measure_all
from bench.slow import SlowClients
from mock_server.serving.production import HTTP1_HEADER_READ_TIMEOUT_MS
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
SLOW_CLIENTS = 50
SLOW_INTERVAL = 1.0
"""Each slow client sends one more header line this often, and never the end of its headers."""
SLOW_ROUNDS = 3
"""Runs of get one beside the slow clients (and just before, without them); medians reported."""
SLOW_SECONDS = min(
    max(4.0, 2 * SECONDS), (HTTP1_HEADER_READ_TIMEOUT_MS / 1000 - 3 * SLOW_INTERVAL) / SLOW_ROUNDS
)
"""Each of those runs: all of them fit in the server's header read timeout, whatever
``BENCH_SECONDS`` says, so that no slow client is cut off meanwhile."""
PEER_WARMUP_SECONDS = 4.0
"""Extra load on each peer endpoint (both ways) once it started: a JVM compiles its hot paths
late, and WireMock served a third of its later speed over its first 20 s of load."""
WANT_PEERS = os.environ.get("BENCH_PEERS", "") not in ("", "0")
DEMO = "acmecorp01"
DEMO_AUTH = basic_authorization("myclientId", "nevertellanyone")
BOB = "agAQDqmvKiRbG4ekigNSmbbb"
BIN = Path(sys.executable).parent
MODES = {
    "granian, 1 worker, memory": ["--workers", "1"],
    "granian, 2 workers, SQLite": ["--workers", "2"],
}
NEW = ", new connection"
"""Suffix of an endpoint measured with a new connection per request."""
BOTH_WAYS = ("list demo (20 agents)", "get one", "set one")
"""Measured with keep-alive and with new connections, and against the peers."""


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
        stop_group(process)
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


def new_connections(requests_by_name: dict[str, Request]) -> dict[str, Request]:
    """The same requests, each on a new connection (``Connection: close``)."""
    return {
        f"{name}{NEW}": replace(request, new_connection=True)
        for name, request in requests_by_name.items()
    }


def peer_name(peer: str, endpoint: str) -> str:
    return f"{peer}: {endpoint}"


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
    (f"list demo (20 agents){NEW}", f"baseline get{NEW}"),
    (f"get one{NEW}", f"baseline get{NEW}"),
    (f"set one{NEW}", f"baseline put{NEW}"),
]
"""Each measured against its reference run right next to it (subject, reference)."""

Group = tuple[str, Sequence[str]]
"""An endpoint and its references, measured back to back (a pair, widened by the peers)."""


def groups_with(peer_names: Sequence[str]) -> list[Group]:
    """``PAIRS``, each of ``BOTH_WAYS`` also against the same endpoint on every peer."""
    both = {*BOTH_WAYS, *(f"{name}{NEW}" for name in BOTH_WAYS)}
    return [
        (subject, [reference, *(peer_name(p, subject) for p in peer_names if subject in both)])
        for subject, reference in PAIRS
    ]


def pair_name(subject: str, reference: str) -> str:
    return f"{subject} / {reference}"


def run_all(
    requests_by_name: dict[str, Request], groups: Sequence[Group] | None = None
) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """Every endpoint's median run, and every pair's median ratio (a group's subject over each
    of its references; ``groups`` defaults to ``PAIRS``).

    A group is measured back to back, its order rotated by one each round (a pair: the
    reference first in even rounds and second in odd ones), and its ratios taken per round: on
    a shared machine the speed drifts by tens of percent within a minute, which hits all runs
    of a group alike, and the median of the rounds ignores the rounds where it did not.
    """
    plan = list(groups) if groups is not None else [(s, [r]) for s, r in PAIRS]
    for name, request in requests_by_name.items():
        warm = requests.request(
            request.method, request.url, headers=request.headers, data=request.body, timeout=30
        )
        if not 200 <= warm.status_code < 300:
            raise RuntimeError(f"{name}: {warm.status_code} {warm.text[:200]}")
        drive(request, CONNECTIONS, WARMUP_SECONDS)
    runs: dict[str, list[Result]] = {name: [] for name in requests_by_name}
    pair_ratios: dict[str, list[float]] = {
        pair_name(subject, reference): []
        for subject, references in plan
        for reference in references
    }
    for round_number in range(ROUNDS):
        for subject, references in plan:
            members = [*references, subject]
            shift = round_number % len(members)
            order = members[shift:] + members[:shift]
            measured = {name: drive(requests_by_name[name], CONNECTIONS, SECONDS) for name in order}
            for name, run in measured.items():
                runs[name].append(run)
            for reference in references:
                ratio = (
                    measured[subject].requests_per_second / measured[reference].requests_per_second
                )
                pair_ratios[pair_name(subject, reference)].append(ratio)
    unmeasured = [name for name, measured_runs in runs.items() if not measured_runs]
    if unmeasured:
        raise RuntimeError(f"endpoints in no pair of PAIRS: {', '.join(unmeasured)}")
    results = {name: _median_result(measured_runs) for name, measured_runs in runs.items()}
    for name, figures in results.items():
        print(f"  {name:48} {_figures_line(figures)}", flush=True)
    return results, {name: statistics.median(values) for name, values in pair_ratios.items()}


def _figures_line(figures: dict[str, Any]) -> str:
    return (
        f"{figures['requests_per_second']:9.0f} req/s"
        f"  p50 {figures['p50_ms']:6.2f} ms  p99 {figures['p99_ms']:6.2f} ms"
        f"  failed {figures['failures']} (timed out {figures['timeouts']})"
        f"  p99 by run {', '.join(f'{p99:.1f}' for p99 in figures['p99_ms_of_each_run'])}"
    )


def _median_result(measured: list[Result]) -> dict[str, Any]:
    """Median requests/s, p50 and p99 of an endpoint's runs, and each run's p99 (a stall of
    the machine shows in one run's, tens of ms, next to the others); requests and failures
    summed."""
    return {
        "requests_per_second": round(statistics.median(r.requests_per_second for r in measured), 1),
        "p50_ms": round(statistics.median(r.p50_ms for r in measured), 2),
        "p99_ms": round(statistics.median(r.p99_ms for r in measured), 2),
        "p99_ms_of_each_run": [round(r.p99_ms, 2) for r in measured],
        "runs": len(measured),
        "requests": sum(r.requests for r in measured),
        "failures": sum(r.failures for r in measured),
        "timeouts": sum(r.timeouts for r in measured),
    }


def slow_client_run(request: Request) -> dict[str, Any]:
    """``request`` driven as usual, ``SLOW_ROUNDS`` times, while ``SLOW_CLIENTS`` connections
    to the same server trickle their headers, one line every ``SLOW_INTERVAL`` s, never
    finishing; and, as its reference, driven as often just before without them."""
    parts = urlsplit(request.url)
    alone_runs = [drive(request, CONNECTIONS, SLOW_SECONDS) for _ in range(SLOW_ROUNDS)]
    alone = {**_median_result(alone_runs), "seconds": SLOW_SECONDS}
    trickling = SlowClients(
        parts.hostname or "127.0.0.1", parts.port or 80, parts.path, SLOW_CLIENTS, SLOW_INTERVAL
    )
    with trickling as slow:
        time.sleep(SLOW_INTERVAL * 1.5)  # every slow client connected, a line or two sent
        runs = [drive(request, CONNECTIONS, SLOW_SECONDS) for _ in range(SLOW_ROUNDS)]
    beside = {**_median_result(runs), "seconds": SLOW_SECONDS}
    for name, figures in (("get one, just before, no slow clients", alone), (slow_name(), beside)):
        print(f"  {name:48} {_figures_line(figures)}")
    print(
        f"  {'':48} slow clients: {slow.connected} of {slow.connections} connected, "
        f"{slow.header_lines_sent} header lines sent in {slow.seconds:g} s, "
        f"{slow.closed_by_server} closed by the server ({slow.answered} with an answer)",
        flush=True,
    )
    return {"get one": beside, "get one, just before": alone, "slow_clients": slow.as_dict()}


def slow_name() -> str:
    return f"get one beside {SLOW_CLIENTS} slow clients"


def targets(
    mode: dict[str, dict[str, Any]],
    ratio: dict[str, float],
    slow: dict[str, Any] | None = None,
    peer_names: Sequence[str] = (),
) -> dict[str, bool]:
    """The targets, judged on keep-alive runs (the medians of their rounds); a peer's only when
    it was measured."""

    def of(subject: str, reference: str) -> float:
        return ratio[pair_name(subject, reference)]

    found = {
        "list demo >= 80% of baseline GET": of("list demo (20 agents)", "baseline get") >= 0.8,
        "get one >= 80% of baseline GET": of("get one", "baseline get") >= 0.8,
        "set one >= 70% of baseline PUT": of("set one", "baseline put") >= 0.7,
        "list 1,000 >= bare orjson list 1,000": of(
            "list 1,000 agents", "baseline list 1,000 (orjson)"
        )
        >= 1.0,
        "list demo p99 < 10 ms": mode["list demo (20 agents)"]["p99_ms"] < 10,
        "get one p99 < 10 ms": mode["get one"]["p99_ms"] < 10,
        "set one p99 < 10 ms": mode["set one"]["p99_ms"] < 10,
    }
    if slow is not None:
        beside = f"beside {slow['slow_clients']['connections']} slow clients"
        found[f"get one p99 < 20 ms {beside}"] = slow["get one"]["p99_ms"] < 20
        found[f"no request timed out or failed {beside}"] = slow["get one"]["failures"] == 0
    least = {
        peers.WIREMOCK: {"list demo (20 agents)": 0.8, "get one": 0.8, "set one": 0.5},
        peers.PRISM: {"list demo (20 agents)": 3.0, "get one": 3.0},
    }
    for peer in peer_names:
        for endpoint, times in least[peer].items():
            short = endpoint.split(" (")[0]
            found[f"{short} >= {times:g}x {peer}"] = (
                of(endpoint, peer_name(peer, endpoint)) >= times
            )
    return found


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


def start_peers(
    stack: ExitStack, emulator: dict[str, Request], directory: Path, report: dict[str, Any]
) -> dict[str, dict[str, Request]]:
    """Installs the peers (``bench/install-peers``), starts them in ``stack`` with the emulator's
    answers to ``BOTH_WAYS``, and warms them; each started peer's requests, by endpoint name.
    A peer that cannot be installed or started is left out, with one line saying why."""
    print("peers: installing (bench/install-peers) ...", flush=True)
    ready, missing = peers.install()
    chosen = {name: emulator[name] for name in BOTH_WAYS}
    # The set first: the agent the stubs answer for is then in the state the load leaves it in.
    answers = peers.capture({name: chosen[name] for name in ("set one", *BOTH_WAYS)})
    started_peers: dict[str, dict[str, Request]] = {}
    for name in peers.PEERS:
        if name in missing:
            print(f"peer {name}: not measured: {missing[name]}", flush=True)
            report["peers"][name] = {"measured": False, "why": missing[name]}
            continue
        path = ready[name]
        try:
            if name == peers.WIREMOCK:
                stubs = {endpoint: (chosen[endpoint], answers[endpoint]) for endpoint in BOTH_WAYS}
                own = stack.enter_context(peers.wiremock(path, stubs, directory))
            else:
                own = stack.enter_context(peers.prism(path, chosen, directory))
        except peers.PeerError as error:
            print(f"peer {name}: not measured: {error}", flush=True)
            report["peers"][name] = {"measured": False, "why": str(error)}
            continue
        both = own | new_connections(own)
        for request in both.values():
            drive(request, CONNECTIONS, PEER_WARMUP_SECONDS)
        base = urlsplit(next(iter(own.values())).url).netloc
        version = peers.version(name, path)
        print(f"peer {name} {version}: on {base}, warmed {PEER_WARMUP_SECONDS:g} s per endpoint")
        report["peers"][name] = {"measured": True, "version": version, "address": base}
        started_peers[name] = {peer_name(name, endpoint): both[endpoint] for endpoint in both}
    return started_peers


def table(report: dict[str, Any]) -> list[str]:
    """req/s (p99 ms) of every endpoint per mode, a peer's next to the emulator's."""
    modes = list(report["modes"])
    rows: dict[str, list[str]] = {}
    for column, results in enumerate(report["modes"].values()):
        on_peers = {
            peer_name(peer, endpoint): figures
            for peer, endpoints in results["peers"].items()
            for endpoint, figures in endpoints.items()
        }
        named: dict[str, dict[str, Any]] = dict(results["baseline"])
        for endpoint, figures in results["emulator"].items():
            named[endpoint] = figures
            for peer in results["peers"]:
                if peer_name(peer, endpoint) in on_peers:
                    named[peer_name(peer, endpoint)] = on_peers[peer_name(peer, endpoint)]
        slow = results["slow_clients"]
        named["get one, just before, no slow clients"] = slow["get one, just before"]
        named[slow_name()] = slow["get one"]
        for name, figures in named.items():
            cell = f"{figures['requests_per_second']:.0f} ({figures['p99_ms']:.1f})"
            if figures["failures"]:
                cell += f" [{figures['failures']} failed, {figures['timeouts']} timed out]"
            rows.setdefault(name, ["-"] * len(modes))[column] = cell
    lines = [f"| req/s (p99 ms) | {' | '.join(modes)} |", f"|---|{'---|' * len(modes)}"]
    lines += [f"| {name} | {' | '.join(cells)} |" for name, cells in rows.items()]
    return lines


def main() -> int:
    begun = time.monotonic()
    RESULTS.mkdir(exist_ok=True)
    print(
        f"load generator: {generator_name()}; {CONNECTIONS} connections, {SECONDS:g} s per run, "
        f"{ROUNDS} rounds; a request unanswered after {TIMEOUT_SECONDS} s has timed out"
    )
    report: dict[str, Any] = {
        "generator": generator_name(),
        "connections": CONNECTIONS,
        "seconds_per_run": SECONDS,
        "rounds": ROUNDS,
        "machine": machine(),
        "peers": {},
        "modes": {},
    }
    if not WANT_PEERS:
        print("peers: not measured (make bench PEERS=1 measures WireMock and Prism too)")
    with (
        tempfile.TemporaryDirectory(prefix="agentstatus-bench-") as directory,
        ExitStack() as peer_stack,
    ):
        fixture = Path(directory) / "bench-fixture.json"
        fixture.write_bytes(orjson.dumps(bench_fixture(1000, 10000)))
        peer_requests: dict[str, dict[str, Request]] | None = None
        for mode, flags in MODES.items():
            workers = flags[1]
            command = [
                str(BIN / "agentstatus-mock"),
                "serve",
                "--port",
                "0",
                "--fixture",
                str(fixture),
                "--quiet",
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
                bare |= new_connections(
                    {name: bare[name] for name in ("baseline get", "baseline put")}
                )
                own = emulator_requests(f"http://127.0.0.1:{emulator_port}")
                own |= new_connections({name: own[name] for name in BOTH_WAYS})
                if WANT_PEERS and peer_requests is None:
                    peer_requests = start_peers(peer_stack, own, Path(directory), report)
                measured_peers = peer_requests or {}
                on_peers = {n: r for named in measured_peers.values() for n, r in named.items()}
                print(f"{mode}:", flush=True)
                measured, ratio = run_all(
                    {**bare, **own, **on_peers}, groups_with(list(measured_peers))
                )
                slow = slow_client_run(own["get one"])
                fan_out = events.measure(f"http://127.0.0.1:{emulator_port}")
                print(f"  events to {fan_out['subscribers']} subscribers: {json.dumps(fan_out)}")
            results: dict[str, Any] = {
                "baseline": {name: measured[name] for name in bare},
                "emulator": {name: measured[name] for name in own},
                "peers": {
                    peer: {name.removeprefix(peer_name(peer, "")): measured[name] for name in named}
                    for peer, named in measured_peers.items()
                },
                "slow_clients": slow,
                "events": fan_out,
            }
            results["ratios"] = {key: round(value, 3) for key, value in ratio.items()}
            results["targets"] = targets(results["emulator"], ratio, slow, list(measured_peers))
            report["modes"][mode] = results
    print("large tenants (in-process):", flush=True)
    report["scale"] = measure_all()
    for row in report["scale"]:
        print(f"  {json.dumps(row)}")
    report["chart"] = chart(report, RESULTS / "list-throughput.png")
    report["runtime_seconds"] = round(time.monotonic() - begun, 1)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    print()
    print("\n".join(table(report)))
    for mode, results in report["modes"].items():
        print(f"{mode}:")
        width = max(len(key) for key in [*results["ratios"], *results["targets"]]) + 8
        for key, value in results["ratios"].items():
            print(f"  {key:{width}} {value:6.2f}")
        for key, passed in results["targets"].items():
            print(f"  {'target ' + key:{width}} {'PASS' if passed else 'FAIL'}")
    print(
        f"chart: {report['chart']}; results: {RESULTS / 'latest.json'}; "
        f"{report['runtime_seconds']} s"
    )
    return 0
