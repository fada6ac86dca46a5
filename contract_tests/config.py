"""Which target the kit checks and how far it may go, from pytest options or the environment.

Three kinds of target: the emulator the kit starts itself (no configuration), an emulator
already running with its control plane (``--agentstatus-emulator-url``, used to check a
deliberately broken emulator), and a live tenant (``AGENTSTATUS_BASE_URL``), which the kit
treats as a service it knows nothing about. The token is read from the environment or a
file only, and never appears in a repr, a message or the report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from mock_server.http.control import ADMIN_TOKEN_ENV
from schemas.wire import API_BASE, ENV_BASE_URL, ENV_TENANT, ENV_TOKEN, ENV_USERNAME

TargetKind = Literal["emulator", "emulator-url", "live"]

ENV_TOKEN_FILE = "AGENTSTATUS_TOKEN_FILE"
ENV_WRITE_AGENTS = "AGENTSTATUS_WRITE_AGENTS"
ENV_ALLOW_LOGOUT = "AGENTSTATUS_ALLOW_LOGOUT"
ENV_EMULATOR_URL = "AGENTSTATUS_EMULATOR_URL"
ENV_HYPOTHESIS = "AGENTSTATUS_HYPOTHESIS_PROFILE"
ENV_PAUSE = "AGENTSTATUS_PAUSE"

# The demo tenant of mock_server/fixtures/demo.yaml: public demo credentials, not secrets.
DEMO_TENANT = "acmecorp01"
DEMO_USERNAME = "myclientId"
DEMO_TOKEN = "nevertellanyone"

HYPOTHESIS_PROFILES = ("ci", "thorough", "live")
LIVE_PAUSE_SECONDS = 0.25


@dataclass(frozen=True)
class KitConfig:
    """Everything the kit was told about its target. ``token`` never shows in a repr."""

    kind: TargetKind
    base_url: str
    """The API root, e.g. ``https://vcc-na12.8x8.com/api/v1`` (filled in for an emulator)."""
    tenant: str
    username: str
    token: str = field(repr=False)
    write_agents: frozenset[str] | None
    """The agents a live run may change; None against an emulator (every agent is ours)."""
    allow_logout: bool
    emulator_profile: str
    """The profile the emulator claims to follow (ignored on a live target)."""
    emulator_url: str | None
    admin_token: str | None = field(repr=False)
    hypothesis_profile: str
    pause: float
    report: Path | None

    @property
    def live(self) -> bool:
        return self.kind == "live"

    def describe(self) -> str:
        """One line naming the target, safe for a report: no token, no header."""
        if self.kind == "emulator":
            return f"emulator started by the kit (profile {self.emulator_profile})"
        if self.kind == "emulator-url":
            return f"emulator at {self.emulator_url} (claims profile {self.emulator_profile})"
        return f"live service {self.base_url}, tenant {self.tenant}"


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("agentstatus-kit", "Agent Status contract kit")
    group.addoption("--agentstatus-base-url", help=f"a live API root (or {ENV_BASE_URL})")
    group.addoption("--agentstatus-tenant", help=f"the live tenant (or {ENV_TENANT})")
    group.addoption("--agentstatus-username", help=f"the live username (or {ENV_USERNAME})")
    group.addoption(
        "--agentstatus-token-file",
        help=f"a file holding the live token (or {ENV_TOKEN} / {ENV_TOKEN_FILE}); never echoed",
    )
    group.addoption(
        "--agentstatus-write-agents",
        help=f"comma-separated agent ids a live run may change (or {ENV_WRITE_AGENTS})",
    )
    group.addoption(
        "--agentstatus-allow-logout",
        action="store_true",
        default=None,
        help=f"allow sending writable agents to LOGGED_OUT (or {ENV_ALLOW_LOGOUT}=1)",
    )
    group.addoption(
        "--agentstatus-emulator-url",
        help=f"an emulator already running, with its control plane (or {ENV_EMULATOR_URL})",
    )
    group.addoption(
        "--emulator-profile",
        default="default",
        help="the emulator profile to start (or the one the emulator at the URL claims)",
    )
    group.addoption(
        "--agentstatus-hypothesis",
        choices=HYPOTHESIS_PROFILES,
        help=f"Hypothesis example counts (or {ENV_HYPOTHESIS}); default ci, live on a live target",
    )
    group.addoption(
        "--report",
        dest="agentstatus_report",
        help="write the conformance report to PATH.json and PATH.md",
    )


def _setting(config: pytest.Config, option: str, env: str) -> str | None:
    value = config.getoption(option)
    if value is None:
        value = os.environ.get(env, "").strip() or None
    return None if value is None else str(value)


def _token(config: pytest.Config) -> str:
    path = _setting(config, "--agentstatus-token-file", ENV_TOKEN_FILE)
    if path is not None:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise pytest.UsageError(f"cannot read the token file: {error.strerror}") from None
    token = os.environ.get(ENV_TOKEN, "").strip()
    if not token:
        raise pytest.UsageError(
            f"a live target needs its token in {ENV_TOKEN} or a file "
            f"(--agentstatus-token-file / {ENV_TOKEN_FILE}); it is never taken on the command line"
        )
    return token


def report_paths(report: Path) -> tuple[Path, Path]:
    """``--report out`` or ``out.json`` or ``out.md`` all write ``out.json`` and ``out.md``."""
    stem = report.with_suffix("") if report.suffix in (".json", ".md") else report
    return stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".md")


def load_config(config: pytest.Config) -> KitConfig:
    """The kit's configuration; a live target needs all four of URL, tenant, username, token."""
    base_url = _setting(config, "--agentstatus-base-url", ENV_BASE_URL)
    emulator_url = _setting(config, "--agentstatus-emulator-url", ENV_EMULATOR_URL)
    profile = str(config.getoption("--emulator-profile"))
    hypothesis = _setting(config, "--agentstatus-hypothesis", ENV_HYPOTHESIS)
    report_option = config.getoption("agentstatus_report")
    report = None if report_option is None else Path(str(report_option))
    if hypothesis is not None and hypothesis not in HYPOTHESIS_PROFILES:
        raise pytest.UsageError(f"{ENV_HYPOTHESIS} must be one of {', '.join(HYPOTHESIS_PROFILES)}")
    if base_url is not None and emulator_url is not None:
        raise pytest.UsageError("give a live base URL or an emulator URL, not both")
    if base_url is None:
        root = None if emulator_url is None else emulator_url.rstrip("/")
        return KitConfig(
            kind="emulator" if root is None else "emulator-url",
            base_url="" if root is None else root + API_BASE,
            tenant=_setting(config, "--agentstatus-tenant", ENV_TENANT) or DEMO_TENANT,
            username=_setting(config, "--agentstatus-username", ENV_USERNAME) or DEMO_USERNAME,
            token=os.environ.get(ENV_TOKEN, "").strip() or DEMO_TOKEN,
            write_agents=None,
            allow_logout=True,
            emulator_profile=profile,
            emulator_url=root,
            admin_token=os.environ.get(ADMIN_TOKEN_ENV) or None,
            hypothesis_profile=hypothesis or "ci",
            pause=float(os.environ.get(ENV_PAUSE, "0")),
            report=report,
        )
    tenant = _setting(config, "--agentstatus-tenant", ENV_TENANT)
    username = _setting(config, "--agentstatus-username", ENV_USERNAME)
    if tenant is None or username is None:
        raise pytest.UsageError(
            f"a live target needs {ENV_TENANT} and {ENV_USERNAME} (or the matching options)"
        )
    writes = _setting(config, "--agentstatus-write-agents", ENV_WRITE_AGENTS) or ""
    logout_option = config.getoption("--agentstatus-allow-logout")
    allow_logout = (
        bool(logout_option)
        if logout_option is not None
        else os.environ.get(ENV_ALLOW_LOGOUT, "").strip() == "1"
    )
    return KitConfig(
        kind="live",
        base_url=base_url.rstrip("/"),
        tenant=tenant,
        username=username,
        token=_token(config),
        write_agents=frozenset(agent.strip() for agent in writes.split(",") if agent.strip()),
        allow_logout=allow_logout,
        emulator_profile=profile,
        emulator_url=None,
        admin_token=None,
        hypothesis_profile=hypothesis or "live",
        pause=float(os.environ.get(ENV_PAUSE, str(LIVE_PAUSE_SECONDS))),
        report=report,
    )
