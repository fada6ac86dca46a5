"""The peers of ``make bench PEERS=1``, measured with the same generator in the same run:

- WireMock's standalone server (the jar of the npm registry's ``wiremock`` package, run with
  Java), serving the emulator's own answers to list demo, get one and set one, byte for byte,
  as static stubs (mappings files) that match the method, the path, the ``Authorization``
  header and, for the set, the JSON body; its request journal is bounded like the emulator's.
- Prism (``@stoplight/prism-cli``) mocking the vendor reference, ``schemas/official-openapi.json``
  (its paths have no ``/api/v1``; Prism checks the Basic credentials' presence and validates
  the set's body, and answers with the document's examples).

``bench/install-peers`` installs them (idempotent, bounded); a peer it cannot install, or that
does not start, is left out with one line saying why. Each runs in its own process group on a
free port of 127.0.0.1 and is stopped, whatever happens, when the bench leaves its context.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests

from bench.load import Request
from bench.processes import free_port, stop_group
from mock_server.testdouble.journal import DEFAULT_JOURNAL_SIZE
from schemas.wire import API_BASE

HERE = Path(__file__).parent
INSTALL_SCRIPT = HERE / "install-peers"
PEERS_DIRECTORY = HERE / ".peers"
VENDOR_DOCUMENT = HERE.parent / "schemas" / "official-openapi.json"
INSTALL_SECONDS = 1500.0
"""install-peers bounds each of its steps (npm, apt-get); this bounds the whole script."""
START_SECONDS = 60.0
"""A peer not answering within this after its start is left out."""
WIREMOCK = "wiremock"
PRISM = "prism"
PEERS = (WIREMOCK, PRISM)


class PeerError(Exception):
    """A peer that could not be started or does not answer as it should: left out."""


@dataclass(frozen=True)
class Answer:
    body: bytes
    content_type: str


def install() -> tuple[dict[str, Path], dict[str, str]]:
    """Runs ``bench/install-peers``: the path of each installed peer, and why each other is not."""
    ready: dict[str, Path] = {}
    missing: dict[str, str] = {}
    try:
        lines = subprocess.run(
            [str(INSTALL_SCRIPT), str(PEERS_DIRECTORY)],
            capture_output=True,
            text=True,
            timeout=INSTALL_SECONDS,
            check=False,
        ).stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired) as error:
        lines = []
        why = f"{INSTALL_SCRIPT.name} did not finish: {error}"
        missing = dict.fromkeys(PEERS, why)
    for line in lines:
        word, _, rest = line.partition(" ")
        if word == "ready":
            name, _, path = rest.partition(" ")
            ready[name] = Path(path)
        elif word == "missing":
            name, _, why = rest.partition(": ")
            missing[name] = why
    for name in PEERS:
        if name not in ready and name not in missing:
            missing[name] = f"{INSTALL_SCRIPT.name} said nothing of it"
    if PRISM in ready and not VENDOR_DOCUMENT.is_file():
        del ready[PRISM]
        missing[PRISM] = f"no vendor reference at {VENDOR_DOCUMENT}"
    if WIREMOCK in ready and shutil.which("java") is None:
        del ready[WIREMOCK]
        missing[WIREMOCK] = "no java"
    return ready, missing


def capture(requests_by_name: dict[str, Request]) -> dict[str, Answer]:
    """The emulator's answers to these requests, as the stubs will serve them."""
    answers: dict[str, Answer] = {}
    for name, request in requests_by_name.items():
        answer = requests.request(
            request.method, request.url, headers=request.headers, data=request.body, timeout=10
        )
        if answer.status_code != 200:
            raise RuntimeError(f"{name}: the emulator answered {answer.status_code}")
        answers[name] = Answer(answer.content, answer.headers.get("Content-Type", ""))
    return answers


@contextmanager
def _serving(name: str, command: list[str], ready: Request, log: Path) -> Iterator[None]:
    """``command`` in its own process group until ``ready`` is answered 200, then yields."""
    with log.open("w") as output:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None:
                raise PeerError(f"{name} exited with {process.returncode}: {_last_line(log)}")
            if time.monotonic() > deadline:
                raise PeerError(f"{name} not ready within {START_SECONDS:g} s: {_last_line(log)}")
            try:
                answer = requests.get(ready.url, headers=ready.headers, timeout=1)
                if answer.status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.25)
        yield
    finally:
        stop_group(process)


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"


def _check(name: str, peer_requests: dict[str, Request], answers: dict[str, Answer]) -> None:
    for endpoint, request in peer_requests.items():
        got = requests.request(
            request.method, request.url, headers=request.headers, data=request.body, timeout=10
        )
        if not 200 <= got.status_code < 300:
            raise PeerError(f"{name}: {endpoint} answered {got.status_code} {got.text[:100]!r}")
        if endpoint in answers and got.content != answers[endpoint].body:
            raise PeerError(f"{name}: {endpoint} answered another body than the emulator's")


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _stub(request: Request, answer: Answer) -> dict[str, object]:
    matched: dict[str, object] = {
        "method": request.method,
        "url": _path(request.url),
        "headers": {"Authorization": {"equalTo": request.headers["Authorization"]}},
    }
    if request.body:
        matched["bodyPatterns"] = [{"equalToJson": request.body.decode()}]
    headers = {"Content-Length": str(len(answer.body))}  # else Jetty ends a closed one at EOF
    if answer.content_type:
        headers["Content-Type"] = answer.content_type
    return {
        "request": matched,
        "response": {
            "status": 200,
            "base64Body": base64.b64encode(answer.body).decode(),
            "headers": headers,
        },
    }


@contextmanager
def wiremock(
    jar: Path, emulator: dict[str, tuple[Request, Answer]], directory: Path
) -> Iterator[dict[str, Request]]:
    """WireMock serving each of the emulator's answers; yields the same requests, to it."""
    root = directory / "wiremock"
    (root / "mappings").mkdir(parents=True, exist_ok=True)
    for number, (request, answer) in enumerate(emulator.values()):
        stub = json.dumps(_stub(request, answer), indent=1)
        (root / "mappings" / f"stub-{number}.json").write_text(stub)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        str(shutil.which("java") or "java"),
        "-jar",
        str(jar),
        "--bind-address",
        "127.0.0.1",
        "--port",
        str(port),
        "--root-dir",
        str(root),
        "--disable-banner",
        "--max-request-journal-entries",
        str(DEFAULT_JOURNAL_SIZE),
    ]
    health = Request("GET", f"{base}/__admin/health", {})
    with _serving(WIREMOCK, command, health, directory / "wiremock.log"):
        peer_requests = {
            name: Request(request.method, base + _path(request.url), request.headers, request.body)
            for name, (request, _) in emulator.items()
        }
        _check(WIREMOCK, peer_requests, {name: answer for name, (_, answer) in emulator.items()})
        yield peer_requests


@contextmanager
def prism(
    script: Path, emulator: dict[str, Request], directory: Path
) -> Iterator[dict[str, Request]]:
    """Prism mocking the vendor reference; yields the emulator's requests, to it (no /api/v1)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    peer_requests = {
        name: Request(
            request.method,
            base + _path(request.url).removeprefix(API_BASE),
            request.headers,
            request.body,
        )
        for name, request in emulator.items()
    }
    ready = next(request for request in peer_requests.values() if request.method == "GET")
    command = [
        str(shutil.which("node") or "node"),
        str(script),
        "mock",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--verboseLevel",
        "error",  # no line per request: the emulator runs --quiet too
        str(VENDOR_DOCUMENT),
    ]
    with _serving(PRISM, command, ready, directory / "prism.log"):
        _check(PRISM, peer_requests, {})
        yield peer_requests


def version(name: str, path: Path) -> str:
    """The installed peer's version: from the jar's name, or Prism's package.json."""
    if name == WIREMOCK:
        return path.stem.removeprefix("wiremock-standalone-")
    try:
        found = json.loads((path.parent.parent / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "(version unknown)"
    return str(found)
