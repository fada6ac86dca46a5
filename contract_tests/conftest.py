"""The kit's pytest wiring: options, the target, restoring at the end, the report and summary.

With no configuration the kit starts the emulator in this process (one per xdist worker) and
checks it; with ``AGENTSTATUS_BASE_URL`` and credentials it checks that live tenant through
its public API only. See ``contract_tests/config.py`` for every option and variable.
"""

from __future__ import annotations

import atexit
import json
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings

from contract_tests.config import KitConfig, add_options, load_config, report_paths
from contract_tests.conformance import Conformance, note_differences, probe
from contract_tests.http import ApiTransport, Credentials
from contract_tests.report import assemble, render_markdown
from contract_tests.target import Target, open_target
from mock_server.harness.handle import Emulator
from schemas.wire import API_BASE

WORKER_OUTPUT = "agentstatus_kit"
MARKER = "needs_control_plane"

settings.register_profile("contract-ci", max_examples=20, stateful_step_count=12, deadline=None)
settings.register_profile(
    "contract-thorough", max_examples=200, stateful_step_count=30, deadline=None
)
settings.register_profile(
    "contract-live",
    max_examples=5,
    stateful_step_count=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    # On a live tenant every step is a real write: no shrinking (it would send an unbounded
    # number of them), and the same sequences on every run, so a failure can be reproduced.
    phases=[Phase.explicit, Phase.generate],
    derandomize=True,
)


@dataclass
class KitSession:
    """What the run found beyond pass/fail: the report's content, merged across workers."""

    config: KitConfig
    conformance: dict[str, Any] | None = None
    restored: list[str] = field(default_factory=list)
    not_restored: list[str] = field(default_factory=list)
    not_applicable: list[str] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)

    def merge(self, data: dict[str, Any]) -> None:
        self.conformance = self.conformance or data.get("conformance")
        self.restored += data.get("restored", [])
        self.not_restored += data.get("not_restored", [])
        self.findings += data.get("findings", [])

    def report(self) -> dict[str, Any]:
        """The report, its every string scrubbed of the credentials once more."""
        report = assemble(
            self.conformance,
            self.config.describe(),
            self.not_restored,
            self.restored,
            sorted(set(self.not_applicable)),
            self.findings,
        )
        scrubber = Credentials(self.config.username, self.config.token).scrubber()
        scrubbed: dict[str, Any] = json.loads(scrubber.text(json.dumps(report)))
        return scrubbed


KIT = pytest.StashKey[KitSession]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM unwinds like Ctrl-C, so the session's finalizer still restores the agents."""
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(reason): the check needs the emulator's control plane; "
        "on a live target it is reported as not applicable",
    )
    kit = KitSession(load_config(config))
    config.stash[KIT] = kit
    workers = getattr(config.option, "numprocesses", None)
    if kit.config.live and workers not in (None, 0):
        raise pytest.UsageError("a live target is checked from one process: run it without -n")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.stash[KIT].config.live:
        return
    for item in items:
        marker = item.get_closest_marker(MARKER)
        if marker is not None:
            reason = marker.args[0] if marker.args else "it needs the control plane"
            item.add_marker(pytest.mark.skip(reason=f"not applicable to a live target: {reason}"))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect every not-applicable check for the report (also those run on xdist workers)."""
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        if reason.startswith("not applicable"):
            report_kit = _current_kit
            if report_kit is not None:
                report_kit.not_applicable.append(f"{report.nodeid}: {reason}")


_current_kit: KitSession | None = None


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    global _current_kit
    _current_kit = session.config.stash[KIT]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """On the xdist controller: merge what a worker found."""
    data = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT)
    if data is not None and _current_kit is not None:
        _current_kit.merge(json.loads(data))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """After the session's finalizers (so after the restore): hand over or write the report.

    An agent left changed fails the run even when every check passed.
    """
    kit = session.config.stash[KIT]
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[WORKER_OUTPUT] = json.dumps(
            {
                "conformance": kit.conformance,
                "restored": kit.restored,
                "not_restored": kit.not_restored,
                "findings": kit.findings,
            }
        )
        return
    if kit.not_restored and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if kit.config.report is not None:
        json_path, md_path = report_paths(kit.config.report)
        report = kit.report()
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        md_path.write_text(render_markdown(report), encoding="utf-8")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    kit = config.stash[KIT]
    if kit.conformance is None and not kit.restored and not kit.not_restored and not kit.findings:
        return
    write = terminalreporter.write_line
    terminalreporter.section("Agent Status contract kit")
    write(f"target: {kit.config.describe()}")
    for point in (kit.conformance or {}).get("points", []):
        observed = json.dumps(point["observed"])
        write(f"  {point['title']}: {observed} -> {point['variant']} ({point['how']})")
    violations = (kit.conformance or {}).get("contract_violations", [])
    write(f"vendor contract violations while probing: {len(violations)}")
    if kit.findings:
        write(f"differs from the emulator on {len(kit.findings)} points (findings, not failures):")
    for finding in kit.findings:
        write(f"  {finding['title']}: {finding['observed']} -> {finding['change']}")
    if kit.restored:
        write(f"agents put back to their starting status: {len(kit.restored)}")
    for line in kit.not_restored:
        write(f"AGENT NOT RESTORED: {line}", red=True, bold=True)
    if kit.config.report is not None:
        json_path, md_path = report_paths(kit.config.report)
        write(f"report: {json_path} and {md_path}")


def _handle(config: KitConfig, base_url: str) -> Emulator:
    """The harness's handle on the emulator at ``base_url``, for the kit's tenant."""
    return Emulator(
        base_url, config.tenant, config.username, config.token, admin_token=config.admin_token
    )


def _start(config: KitConfig) -> tuple[str, Emulator | None, Any]:
    """The API root, the emulator's handle and the server to stop (for the kit's own emulator)."""
    if config.kind == "live":
        return config.base_url, None, None
    if config.kind == "emulator-url":
        if config.emulator_url is None:
            raise pytest.UsageError("an emulator-url target needs --agentstatus-emulator-url")
        return config.base_url, _handle(config, config.emulator_url), None
    from mock_server.app import create_app
    from mock_server.serving.threaded import start_in_thread

    server = start_in_thread(create_app(profile=config.emulator_profile))
    return server.base_url + API_BASE, _handle(config, server.base_url), server


@pytest.fixture(scope="session")
def kit(pytestconfig: pytest.Config) -> KitSession:
    return pytestconfig.stash[KIT]


@pytest.fixture(scope="session")
def target(kit: KitSession) -> Iterator[Target]:
    """The target for the whole session; every agent it changes is put back at the end."""
    api_root, emulator, server = _start(kit.config)
    opened = open_target(kit.config, api_root, emulator)
    atexit.register(opened.restore)
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main else None
    try:
        yield opened
    finally:
        try:
            problems = opened.restore()
            kit.restored += opened.ledger.restored
            kit.not_restored += [problem.line() for problem in problems]
        finally:
            kit.findings += opened.api.findings.to_json()
            if in_main:
                signal.signal(signal.SIGTERM, previous)
            atexit.unregister(opened.restore)
            opened.api.close()
            if emulator is not None:
                emulator.control.close()  # the kit made no tenant and no fault: only a session
            if server is not None:
                server.stop()


@pytest.fixture(scope="session")
def conformance(target: Target, kit: KitSession) -> Conformance:
    """Every disputed point, probed once per session; also what later checks build on."""
    if target.emulator is not None:
        target.emulator.reset_state()
    result = probe(target)
    target.bulk_method = result.bulk_method
    if target.config.live:
        note_differences(result, target.api)
    kit.conformance = result.to_json()
    return result


@pytest.fixture
def api(target: Target) -> ApiTransport:
    return target.api


@pytest.fixture
def fresh(target: Target) -> Target:
    """The target, its tenant back at the fixture when it is an emulator (each check alone)."""
    if target.emulator is not None:
        target.emulator.reset_state()
    return target


@pytest.fixture
def emulator(target: Target) -> Emulator:
    """The emulator's handle, for checks marked ``needs_control_plane`` (skipped when live)."""
    if target.emulator is None:
        raise RuntimeError(f"a check using the emulator's handle must be marked {MARKER}")
    return target.emulator


@pytest.fixture
def hypothesis_profile(kit: KitSession) -> settings:
    return settings.get_profile(f"contract-{kit.config.hypothesis_profile}")
