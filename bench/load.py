"""A bounded load generator: wrk when installed, else a Python one (slower, so it says so).

Both keep ``connections`` connections busy for ``seconds`` against 127.0.0.1 and report
requests/s, p50 and p99 latency, the count of answers outside 2xx plus socket errors, and the
count of requests that timed out (no answer within ``TIMEOUT_SECONDS``). A connection is kept
alive across requests, or, for a ``Request`` with ``new_connection``, opened for each request
and closed after its answer (``Connection: close``: the server closes it, the client reconnects).
"""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}
TIMEOUT_SECONDS = 2
"""A request still unanswered after this counts as timed out (wrk's default, made explicit)."""


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes = b""
    new_connection: bool = False
    """A new connection per request (``Connection: close``) instead of one kept alive."""

    def sent_headers(self) -> dict[str, str]:
        return {**self.headers, "Connection": "close"} if self.new_connection else self.headers


@dataclass(frozen=True)
class Result:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int
    """Answers outside 2xx, plus socket errors (connect, read, write, timeout)."""
    timeouts: int = 0
    """Requests without an answer within ``TIMEOUT_SECONDS`` (counted in ``failures`` too)."""


def generator_name() -> str:
    return "wrk" if shutil.which("wrk") else "python"


def drive(request: Request, connections: int, seconds: float) -> Result:
    if shutil.which("wrk"):
        return _wrk(request, connections, seconds)
    return _python(request, connections, seconds)


def _wrk(request: Request, connections: int, seconds: float) -> Result:
    body = request.body.decode().replace("\\", "\\\\").replace('"', '\\"')
    lines = [f'wrk.method = "{request.method}"', f'wrk.body = "{body}"']
    lines += [
        f'wrk.headers["{name}"] = "{value}"' for name, value in request.sent_headers().items()
    ]
    with tempfile.TemporaryDirectory() as directory:
        script = Path(directory) / "request.lua"
        script.write_text("\n".join(lines) + "\n")
        command = [
            "wrk",
            "-t",
            "2",
            "-c",
            str(connections),
            "-d",
            f"{max(1, round(seconds))}s",
            "--latency",
            "--timeout",
            f"{TIMEOUT_SECONDS}s",
        ]
        output = subprocess.run(
            [*command, "-s", str(script), request.url],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=True,
        ).stdout
    total = re.search(r"(\d+) requests in", output)
    failures = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return Result(
        requests_per_second=float(_match(r"Requests/sec:\s+([\d.]+)", output)),
        p50_ms=_latency(output, "50%"),
        p99_ms=_latency(output, "99%"),
        requests=int(total.group(1)) if total else 0,
        failures=(int(failures.group(1)) if failures else 0)
        + (sum(int(n) for n in errors.groups()) if errors else 0),
        timeouts=int(errors.group(4)) if errors else 0,
    )


def _match(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    if found is None:
        raise RuntimeError(f"wrk output without {pattern!r}:\n{text}")
    return found.group(1)


def _latency(output: str, percentile: str) -> float:
    found = re.search(rf"^\s+{percentile}\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
    if found is None:
        raise RuntimeError(f"wrk output without the {percentile} latency:\n{output}")
    return float(found.group(1)) * UNITS[found.group(2)]


def _python(request: Request, connections: int, seconds: float) -> Result:
    parts = urlsplit(request.url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = request.sent_headers()
    deadline = time.monotonic() + seconds
    latencies: list[list[float]] = [[] for _ in range(connections)]
    failures = [0] * connections
    timeouts = [0] * connections

    def worker(index: int) -> None:
        connection: http.client.HTTPConnection | None = None
        while time.monotonic() < deadline:
            started = time.perf_counter()  # a new connection's connect is part of its request
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(
                        parts.hostname or "", parts.port, timeout=TIMEOUT_SECONDS
                    )
                connection.request(request.method, path, body=request.body or None, headers=headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as error:
                failures[index] += 1
                timeouts[index] += isinstance(error, TimeoutError)
                if connection is not None:
                    connection.close()
                connection = None
                continue
            latencies[index].append((time.perf_counter() - started) * 1000)
            if not 200 <= response.status < 300:
                failures[index] += 1
            if request.new_connection or response.will_close:
                connection.close()
                connection = None
        if connection is not None:
            connection.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    ordered = sorted(latency for per_thread in latencies for latency in per_thread)
    count = len(ordered)
    if count == 0:  # nothing answered: no percentile is better than the whole run
        ordered = [elapsed * 1000]
    return Result(
        requests_per_second=count / elapsed,
        p50_ms=ordered[len(ordered) // 2],
        p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        requests=count,
        failures=sum(failures),
        timeouts=sum(timeouts),
    )
