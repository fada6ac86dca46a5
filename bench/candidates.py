"""How ``serve``'s server was chosen: the same emulator under each candidate, side by side.

``python -m bench.candidates`` (after ``pip install -e '.[bench]'``, which brings gunicorn
for the comparison) starts the demo emulator under each candidate in turn, measures list demo,
get one and set one with the bench's load generator (16 keep-alive connections), and checks
whether four connections that never finish their headers stop it from answering anyone else.
Each candidate is measured in ``ROUNDS`` rounds, in a different order each round; medians are
printed as the Markdown table of ``docs/serving.md``.

Candidates: Werkzeug's threaded server (the old default), gunicorn's sync workers (the old
``--workers N``), granian's WSGI interface (one blocking thread, its fastest setting), and
granian's RSGI interface through ``mock_server.serving.rsgi`` (what ``serve`` runs).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from bench.load import Request, drive
from schemas.wire import API_BASE, agents_path, basic_authorization

DEMO = "acmecorp01"
JANE = "ag0XgxWZr7TzqWFhxboBGj1g"
AUTH = basic_authorization("myclientId", "nevertellanyone")
CANDIDATES = {
    "werkzeug threaded, 1 process": ("werkzeug", 1),
    "gunicorn sync, 2 workers": ("gunicorn", 2),
    "granian WSGI, 1 worker": ("granian-wsgi", 1),
    "granian WSGI, 2 workers": ("granian-wsgi", 2),
    "granian RSGI (serve), 1 worker": ("granian-rsgi", 1),
    "granian RSGI (serve), 2 workers": ("granian-rsgi", 2),
}
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
SLOW_CONNECTIONS = 4


def build_app(workers: int, state: str | None) -> Any:
    from mock_server.app import create_app
    from mock_server.core.sqlite_store import SQLiteStore

    return create_app(None, store=None if state is None else SQLiteStore(state))


def serve(server: str, workers: int, port: int, state: str | None) -> None:
    """In the child: serve the demo emulator under ``server``."""
    if server == "werkzeug":
        from werkzeug.serving import make_server

        make_server("127.0.0.1", port, build_app(workers, state), threaded=True).serve_forever()
        return
    if server == "gunicorn":
        from gunicorn.app.base import BaseApplication

        app = build_app(workers, state)

        class Gunicorn(BaseApplication):  # type: ignore[misc,unused-ignore]
            def load_config(self) -> None:
                for key, value in {
                    "bind": f"127.0.0.1:{port}",
                    "workers": workers,
                    "worker_class": "sync",
                    "loglevel": "warning",
                }.items():
                    self.cfg.set(key, value)

            def load(self) -> Any:
                return app

        Gunicorn().run()
        return
    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server import Server

    if server == "granian-wsgi":
        os.environ["CANDIDATE_STATE"] = state or ""
        Server(
            "bench.candidates:wsgi_app",
            address="127.0.0.1",
            port=port,
            interface=Interfaces.WSGI,
            workers=workers,
            blocking_threads=1,
            log_level=LogLevels.warning,
        ).serve()
        return
    command = [str(Path(sys.executable).parent / "agentstatus-mock"), "serve", "--quiet"]
    command += ["--port", str(port), "--workers", str(workers)]
    os.execv(command[0], command)


def wsgi_app(environ: Any, start_response: Any) -> Any:
    """granian's WSGI target: the app, built once per worker on first use."""
    global _WSGI
    if _WSGI is None:
        _WSGI = build_app(2, os.environ.get("CANDIDATE_STATE") or None)
    return _WSGI(environ, start_response)


_WSGI: Any = None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def started(server: str, workers: int) -> Iterator[str]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="agentstatus-candidate-") as directory:
        state = None if workers == 1 else str(Path(directory) / "state.sqlite")
        if state is not None:
            build_app(workers, state)  # seeded once, before the workers race to do it
        command = [sys.executable, "-m", "bench.candidates", "--serve", server]
        command += ["--workers", str(workers), "--port", str(port), "--state", state or ""]
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    requests.get(f"{base}/__admin/tenants", timeout=1)
                    break
                except requests.ConnectionError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{server} did not start") from None
                    time.sleep(0.1)
            yield base
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def requests_for(base: str) -> dict[str, Request]:
    agents = f"{base}{API_BASE}{agents_path(DEMO)}"
    headers = {"Authorization": AUTH}
    body = b'{"agent-status": 5, "status-code-list-id": -1, "status-code-item-id": 1}'
    return {
        "list demo": Request("GET", agents, headers),
        "get one": Request("GET", f"{agents}/{JANE}", headers),
        "set one": Request(
            "PUT", f"{agents}/{JANE}", {**headers, "Content-Type": "application/json"}, body
        ),
    }


def survives_slow_clients(base: str) -> bool:
    """Whether a request is answered while connections that never end their headers are open."""
    host, port = base.removeprefix("http://").split(":")
    trickling = [socket.create_connection((host, int(port))) for _ in range(SLOW_CONNECTIONS)]
    try:
        for connection in trickling:
            connection.sendall(b"GET /__admin/tenants HTTP/1.1\r\nHo")
        time.sleep(0.5)
        try:
            fresh = {"Connection": "close"}
            return requests.get(f"{base}/__admin/tenants", headers=fresh, timeout=5).ok
        except requests.RequestException:
            return False
    finally:
        for connection in trickling:
            connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.candidates")
    parser.add_argument("--serve")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--state", default="")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.workers, args.port, args.state or None)
        return 0
    figures: dict[str, dict[str, list[tuple[float, float]]]] = {name: {} for name in CANDIDATES}
    slow: dict[str, bool] = {}
    names = list(CANDIDATES)
    for round_number in range(ROUNDS):
        order = names[round_number % len(names) :] + names[: round_number % len(names)]
        for name in order:
            server, workers = CANDIDATES[name]
            with started(server, workers) as base:
                for endpoint, request in requests_for(base).items():
                    drive(request, 16, 1.0)  # warm-up, discarded
                    result = drive(request, 16, SECONDS)
                    runs = figures[name].setdefault(endpoint, [])
                    runs.append((result.requests_per_second, result.p99_ms))
                slow[name] = survives_slow_clients(base) and slow.get(name, True)
            print(f"round {round_number + 1}: {name} measured", file=sys.stderr, flush=True)
    endpoints = ["list demo", "get one", "set one"]
    print("| server | " + " | ".join(endpoints) + " | 4 slow clients |")
    print("|---|" + "---|" * (len(endpoints) + 1))
    for name in names:
        cells = []
        for endpoint in endpoints:
            runs = figures[name][endpoint]
            rate = statistics.median(run[0] for run in runs)
            p99 = statistics.median(run[1] for run in runs)
            cells.append(f"{rate:,.0f} ({p99:.1f})")
        answered = "answered" if slow[name] else "**no answer**"
        print(f"| {name} | " + " | ".join(cells) + f" | {answered} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
