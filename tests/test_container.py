"""The emulator's container image (``Containerfile``, docs/container.md), built and run with
Debian's podman: ``scripts/install-podman`` installs it, ``scripts/build-base`` builds the base
from Debian packages (once: kept while ``podman image exists``), then the image is built from
this tree and run as docs/container.md says. Skipped, saying why, where podman cannot be
installed or cannot start a container (no root, no apt-get, a kernel or sandbox that refuses).

The options podman needs on this kind of machine are found here, not written to its
configuration: the first of ``RUN_OPTIONS`` with which a tiny container of the base starts.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import resource
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from conftest import api_path

from contract_tests.config import DEMO_TENANT, DEMO_TOKEN, DEMO_USERNAME

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ROOT / "scripts" / "install-podman"
BUILD_BASE = ROOT / "scripts" / "build-base"
BASE = "agentstatus-base:bookworm"
IMAGE = "localhost/agentstatus-mock:test"
ADMIN_TOKEN = "container-admin-secret"
AGENT = "agContainerTest"
REFUSAL = (
    "agentstatus-mock: refusing to listen on 0.0.0.0 without an admin token: set "
    "AGENTSTATUS_ADMIN_TOKEN (podman run -e AGENTSTATUS_ADMIN_TOKEN=...), or "
    "AGENTSTATUS_HOST=127.0.0.1 to listen on the container's loopback only."
)
LOCK = Path(tempfile.gettempdir()) / "agentstatus-container-test.lock"
"""Held while installing and building, so that two pytest-xdist workers build once."""
HEALTH_SECONDS = 60
AUTH = {
    "Authorization": "Basic " + base64.b64encode(f"{DEMO_USERNAME}:{DEMO_TOKEN}".encode()).decode()
}


def _limits() -> list[str]:
    """Open files and processes at what this process may have: podman asks for more by default,
    which a runtime without CAP_SYS_RESOURCE cannot grant (crun/runc: setrlimit not permitted)."""
    files = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    files = 1048576 if files == resource.RLIM_INFINITY else min(files, 1048576)
    processes = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    processes = 32768 if processes == resource.RLIM_INFINITY else min(processes, 32768)
    return ["--ulimit", f"nofile={files}:{files}", "--ulimit", f"nproc={processes}:{processes}"]


RUN_OPTIONS: list[tuple[list[str], list[str]]] = [
    ([], []),
    ([], _limits()),
    (["--runtime", "runc"], []),
    (["--runtime", "runc"], _limits()),
]
"""(podman's global options, run and build options), tried in order. On a VM whose cgroups are
mixed v1 and v2 and whose root lacks CAP_SYS_RESOURCE the last is needed: crun refuses mixed
cgroups, and both runtimes the default limits."""


@dataclass
class Podman:
    global_options: list[str]
    run_options: list[str]

    def __call__(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = ["podman", *self.global_options, *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if check and done.returncode != 0:
            pytest.fail(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
        return done

    def run(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``podman run`` with the options this machine needs; the periodic health checks off
        (podman schedules them with systemd, absent here: ``podman healthcheck run`` still runs
        the image's check on demand)."""
        options = [*self.run_options, "--health-interval", "disable"]
        return self("run", *options, *args, timeout=timeout, check=check)


@dataclass
class Container:
    podman: Podman
    name: str
    port: int
    base: str = field(init=False)

    def __post_init__(self) -> None:
        self.base = f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        done = self.podman("logs", self.name, check=False)
        return (done.stdout + done.stderr).strip()


def _last_line(done: subprocess.CompletedProcess[str]) -> str:
    text = (done.stdout.strip() or done.stderr.strip()).splitlines()
    return text[-1] if text else f"exit status {done.returncode}, no output"


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="module")
def podman() -> Podman:
    with _locked():
        try:
            installed = subprocess.run(
                [str(INSTALL)], capture_output=True, text=True, timeout=900, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            pytest.skip(f"no podman: {INSTALL.name} could not run: {error}")
        if installed.returncode != 0:
            pytest.skip(f"no podman could be installed: {_last_line(installed)}")
        try:
            base = subprocess.run(
                [str(BUILD_BASE)], capture_output=True, text=True, timeout=1200, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            pytest.skip(f"no base image: {BUILD_BASE.name} could not run: {error}")
        if base.returncode != 0:
            pytest.skip(f"no base image could be built: {_last_line(base)}")
    refusals = []
    for global_options, run_options in RUN_OPTIONS:
        if "runc" in global_options and shutil.which("runc") is None:
            continue
        probe = Podman(global_options, run_options)
        done = probe("run", "--rm", *run_options, BASE, "true", timeout=60, check=False)
        if done.returncode == 0:
            return probe
        refusals.append(_last_line(done))
    pytest.skip(f"podman cannot start a container here: {refusals[-1]}")


def _ca_bundle() -> str | None:
    """The CA bundle pip on this machine trusts (a proxy's CA may be in it), for the build's pip."""
    for candidate in (os.environ.get("PIP_CERT"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@pytest.fixture(scope="module")
def image(podman: Podman) -> str:
    """The image of this tree, tagged IMAGE; the one it replaces is removed. The build stage's
    layers stay, for the next build: a change to the sources leaves a few MB of them untagged
    (``podman image prune`` removes them, and the cache with them)."""
    with _locked():
        before = podman("image", "inspect", "--format", "{{.Id}}", IMAGE, check=False)
        secret = _ca_bundle()
        secrets = [] if secret is None else ["--secret", f"id=ca-certificates,src={secret}"]
        podman(
            "build",
            "--format",
            "docker",
            *podman.run_options,
            *secrets,
            "--tag",
            IMAGE,
            "--file",
            str(ROOT / "Containerfile"),
            str(ROOT),
            timeout=900,
        )
        after = podman("image", "inspect", "--format", "{{.Id}}", IMAGE)
        old = before.stdout.strip()
        if before.returncode == 0 and old and old != after.stdout.strip():
            podman("rmi", old, check=False)
    return IMAGE


def _name(role: str) -> str:
    return f"agentstatus-test-{role}-{uuid.uuid4().hex[:8]}"


def _wait_healthy(container: Container) -> None:
    deadline = time.monotonic() + HEALTH_SECONDS
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{container.base}/__admin/health", timeout=2).status_code == 200:
                return
        state = container.podman(
            "inspect", "--format", "{{.State.Status}}", container.name, check=False
        )
        if state.stdout.strip() not in ("running", "created", "configured"):
            pytest.fail(f"the container stopped ({state.stdout.strip()}): {container.logs()}")
        time.sleep(0.2)
    pytest.fail(f"no 200 from /__admin/health in {HEALTH_SECONDS} s: {container.logs()}")


@contextlib.contextmanager
def _served(
    podman: Podman, image: str, *options: str, name: str | None = None
) -> Iterator[Container]:
    """The image run as docs/container.md says, its port published on 127.0.0.1 (a free port)."""
    name = name or _name("serve")
    podman.run(
        "--detach",
        "--name",
        name,
        "--publish",
        "127.0.0.1::8080",
        "--env",
        f"AGENTSTATUS_ADMIN_TOKEN={ADMIN_TOKEN}",
        *options,
        image,
    )
    try:
        published = podman("port", name, "8080/tcp").stdout.strip().splitlines()[0]
        container = Container(podman, name, int(published.rsplit(":", 1)[1]))
        _wait_healthy(container)
        yield container
    finally:
        podman("rm", "--force", "--volumes", "--time", "5", name, check=False, timeout=60)


@contextlib.contextmanager
def _volume(podman: Podman) -> Iterator[str]:
    name = _name("state")
    podman("volume", "create", name)
    try:
        yield name
    finally:
        podman("volume", "rm", "--force", name, check=False)


@pytest.fixture(scope="module")
def served(podman: Podman, image: str) -> Iterator[Container]:
    with _volume(podman) as volume, _served(podman, image, "--volume", f"{volume}:/data") as c:
        yield c


def test_the_api_and_the_control_plane_answer_on_the_published_port(served: Container) -> None:
    health = requests.get(f"{served.base}/__admin/health", timeout=10)
    assert health.json()["status"] == "ok"
    agents = requests.get(served.base + api_path(), headers=AUTH, timeout=10)
    assert agents.status_code == 200, agents.text
    assert agents.json()["data"], agents.text

    path = f"/__admin/tenants/{DEMO_TENANT}/agents/{AGENT}"
    body = {"agent-status": 7, "group-id": 200, "name": "Container Agent"}
    refused = requests.put(served.base + path, json=body, timeout=10)
    assert refused.status_code == 403, refused.text
    placed = requests.put(
        served.base + path, json=body, headers={"X-Admin-Token": ADMIN_TOKEN}, timeout=10
    )
    assert placed.status_code in (200, 201), placed.text
    got = requests.get(served.base + api_path(suffix=f"/{AGENT}"), headers=AUTH, timeout=10)
    assert got.status_code == 200, got.text
    assert (got.json()["agent-id"], got.json()["agent-status"]) == (AGENT, 7)


def test_the_image_health_check_passes_and_can_fail(served: Container) -> None:
    done = served.podman("healthcheck", "run", served.name, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    health = served.podman("inspect", "--format", "{{.State.Health.Status}}", served.name)
    assert health.stdout.strip() == "healthy"
    elsewhere = served.podman(
        "exec", "--env", "AGENTSTATUS_PORT=1", served.name, "container-healthcheck", check=False
    )
    assert elsewhere.returncode == 1, elsewhere.stdout + elsewhere.stderr


def test_the_emulator_runs_as_a_user_that_is_not_root(served: Container) -> None:
    uid = served.podman("exec", served.name, "id", "-u").stdout.strip()
    assert uid == "10001"
    users = served.podman("top", served.name, "huser").stdout.split()[1:]
    assert users, "podman top listed no process"
    assert all(user == "10001" for user in users), users


def test_the_state_survives_a_new_container_on_the_volume(podman: Podman, image: str) -> None:
    path = f"/__admin/tenants/{DEMO_TENANT}/agents/agKept"
    with _volume(podman) as volume:
        with _served(podman, image, "--volume", f"{volume}:/data") as first:
            placed = requests.put(
                first.base + path,
                json={"agent-status": 9, "group-id": 200},
                headers={"X-Admin-Token": ADMIN_TOKEN},
                timeout=10,
            )
            assert placed.status_code in (200, 201), placed.text
        with _served(podman, image, "--volume", f"{volume}:/data") as second:
            got = requests.get(second.base + api_path(suffix="/agKept"), headers=AUTH, timeout=10)
            assert got.status_code == 200, got.text
            assert got.json()["agent-status"] == 9
            listed = podman("exec", second.name, "ls", "-ln", "/data/state.sqlite").stdout
            assert listed.split()[2] == "10001", listed


def _exited(podman: Podman, *args: str) -> tuple[int, str]:
    """Run a container to its end: its exit status and its own output (podman's logs, not
    podman's messages)."""
    name = _name("once")
    try:
        done = podman.run("--name", name, *args, timeout=120, check=False)
        logs = podman("logs", name, check=False)
        return done.returncode, (logs.stdout + logs.stderr).strip()
    finally:
        podman("rm", "--force", "--volumes", name, check=False)


def test_without_an_admin_token_it_refuses_in_one_line(podman: Podman, image: str) -> None:
    assert _exited(podman, image) == (2, REFUSAL)
    assert _exited(podman, "--env", "AGENTSTATUS_ADMIN_TOKEN=", image, "--workers", "2") == (
        2,
        REFUSAL,
    )


def test_without_a_token_it_serves_on_the_container_loopback(podman: Podman, image: str) -> None:
    name = _name("loopback")
    podman.run("--detach", "--name", name, "--env", "AGENTSTATUS_HOST=127.0.0.1", image)
    try:
        deadline = time.monotonic() + HEALTH_SECONDS
        while True:
            check = podman("healthcheck", "run", name, check=False)
            if check.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert check.returncode == 0, podman("logs", name, check=False).stderr
        inside = podman(
            "exec",
            name,
            "python3",
            "-c",
            "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8080/__admin/requests')"
            ".status)",
        )
        assert inside.stdout.strip() == "200", "no admin token: the control plane is open"
    finally:
        podman("rm", "--force", "--volumes", "--time", "5", name, check=False, timeout=60)


def test_another_container_on_the_network_reaches_it_by_name(podman: Podman, image: str) -> None:
    network = _name("net")
    podman("network", "create", network)
    try:
        with _served(podman, image, "--network", network, name=_name("emulator")) as served:
            url = f"http://{served.name}:8080/__admin/health"
            status, output = _exited(
                podman,
                "--network",
                network,
                image,
                "python3",
                "-c",
                f"import urllib.request as u; print(u.urlopen({url!r}, timeout=10).status)",
            )
            assert (status, output) == (0, "200")
    finally:
        podman("network", "rm", "--force", network, check=False)
