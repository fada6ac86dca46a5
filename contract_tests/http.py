"""The kit's HTTP layer: every call goes through ``ApiTransport``, which judges the answer.

Every answer is judged against both layers of the contract (``mock_server.live.judge``, as
``validate-recording`` judges a recording): a breach of the vendor contract fails the calling
check; a difference from the emulator's promise fails it on an emulator and is a finding on a
live target. Every write passes the
``WriteGuard`` and snapshots the agents it may change first. Nothing here ever prints the
token or the Authorization header.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests

from contract_tests.answer import Answer, CheckFailed, Scrubber
from contract_tests.findings import CHOICES, Choice, ChoiceBroken, Findings, observe
from contract_tests.guard import RestoreLedger, WriteGuard, WriteRefused
from mock_server.live.judge import ContractJudge
from mock_server.live.recording import secrets_of
from schemas import wire

TIMEOUT_SECONDS = 30.0
MAX_PAGES = 1000
"""At most 500,000 agents: a target that keeps answering pages is not believed forever."""
OPERATION_BY_METHOD = {"POST": "setagentsstatuses", "PUT": "setagentsstatusesput"}


class ContractBreach(AssertionError):
    """A response broke the contract a target is held to; the message names every violation."""


@dataclass(frozen=True)
class Credentials:
    """HTTP Basic credentials; the token never shows in a repr."""

    username: str
    token: str = field(repr=False)

    def header(self) -> str:
        return wire.basic_authorization(self.username, self.token)

    def scrubber(self) -> Scrubber:
        """What blanks these credentials out: the header, its base64, the token."""
        return Scrubber(secrets_of([("Authorization", self.header())]))


def check_page(page: Mapping[str, Any], index: int, listed: int) -> tuple[int, int, int | None]:
    """The reference's PageResult of page ``index``, which listed ``listed`` agents, checked
    against its own descriptions; returns its page size, page count and element count."""
    size = page.get("pageSize")
    if not isinstance(size, int | float) or size < 1:
        raise ContractBreach(f"page {index}: pageSize {size!r}")
    if page.get("pageIndex", index) != index:
        raise ContractBreach(
            f"page {index} says pageIndex {page.get('pageIndex')!r}: pageIndex counts pages from 0"
        )
    if listed > size:
        raise ContractBreach(f"page {index} lists {listed} agents, more than its pageSize {size}")
    total, pages = page.get("totalElements"), page.get("totalPages", 1)
    if isinstance(total, int | float) and pages != math.ceil(total / size):
        raise ContractBreach(
            f"page {index}: totalPages {pages} is not totalElements {total} / pageSize {size}"
        )
    return int(size), int(pages), None if total is None else int(total)


class ApiTransport:
    """The public API of one tenant, over one session, with the contract hook and the guard."""

    def __init__(
        self,
        base_url: str,
        tenant: str,
        credentials: Credentials,
        *,
        contract: ContractJudge,
        guard: WriteGuard,
        ledger: RestoreLedger,
        promise_bound: bool,
        pause: float = 0.0,
    ) -> None:
        """``promise_bound``: the target is an emulator, held to its promise as well."""
        self.base_url = base_url.rstrip("/")
        self.tenant = tenant
        self.credentials = credentials
        self.contract = contract
        self.guard = guard
        self.ledger = ledger
        self.pause = pause
        self.calls = 0
        self.violations: list[str] = []
        self.promise_bound = promise_bound
        self.findings = Findings()
        self._strict = True
        self._scrubber = credentials.scrubber()
        self._session = requests.Session()

    def close(self) -> None:
        self._session.close()

    def redact(self, text: str) -> str:
        """``text`` with the token and the Authorization value blanked out."""
        return self._scrubber.text(text)

    @contextmanager
    def recording(self) -> Iterator[list[str]]:
        """Violations inside the block are collected, not raised (for probes that must go on)."""
        before, self._strict = self._strict, False
        start = len(self.violations)
        collected: list[str] = []
        try:
            yield collected
        finally:
            self._strict = before
            collected.extend(self.violations[start:])

    def agents_path(self, agent_id: str | None = None, tenant: str | None = None) -> str:
        """The list path, or one agent's, of this tenant (or of ``tenant``), below the root."""
        on = tenant or self.tenant
        return wire.agents_path(on) if agent_id is None else wire.agent_path(on, agent_id)

    def send(
        self,
        method: str,
        path: str,
        *,
        operation: str | None,
        json_body: object = None,
        params: Mapping[str, str] | None = None,
        credentials: Credentials | None = None,
        anonymous: bool = False,
    ) -> Answer:
        """One read, judged by the contract hook; a violation fails the calling check.

        Writes go through ``set_agent`` and ``bulk`` only, which pass the guard first."""
        if method.upper() not in ("GET", "HEAD"):
            raise WriteRefused(f"{method} {path}: a write must go through the guard; refused.")
        return self._send(
            method,
            path,
            operation=operation,
            params=params,
            credentials=credentials,
            anonymous=anonymous,
        )

    def _send(
        self,
        method: str,
        path: str,
        *,
        operation: str | None,
        json_body: object = None,
        params: Mapping[str, str] | None = None,
        credentials: Credentials | None = None,
        anonymous: bool = False,
    ) -> Answer:
        if self.pause:
            time.sleep(self.pause)
        headers = {"Accept": "application/json"}
        if not anonymous:
            headers["Authorization"] = (credentials or self.credentials).header()
        data = None
        if json_body is not None:
            data = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        response = self._session.request(
            method,
            self.base_url + path,
            params=params,
            data=data,
            headers=headers,
            timeout=TIMEOUT_SECONDS,
            allow_redirects=False,
        )
        self.calls += 1
        answer = Answer(
            method=method,
            path=path
            + ("" if not params else "?" + "&".join(f"{k}={v}" for k, v in params.items())),
            operation=operation,
            status=response.status_code,
            headers={name.lower(): value for name, value in response.headers.items()},
            body=response.content,
        )
        answer = self._scrubber.answer(answer)
        if credentials is not None:  # the call's own credentials (a wrong token, say) as well
            answer = credentials.scrubber().answer(answer)
        self._judge(answer)
        return answer

    def _fail(self, message: str, error: type[AssertionError]) -> None:
        """Record a failure; raise it unless inside ``recording()``."""
        found = self.redact(message)
        self.violations.append(found)
        if self._strict:
            raise error(found)

    def _judge(self, answer: Answer) -> None:
        judgement = self.contract.judge(answer)
        if judgement.breaches:
            self._fail(
                f"{answer.describe()} breaks the vendor contract: " + "; ".join(judgement.breaches),
                ContractBreach,
            )
        if self.promise_bound and judgement.differences:
            self._fail(
                f"{answer.describe()} breaks the emulator's promise "
                f"(profile {self.contract.profile}): " + "; ".join(judgement.differences),
                ContractBreach,
            )
        observed = observe(answer)
        for key, what, evidence in observed:
            self.note(key, what, evidence)
        unexplained = judgement.differences and not observed and not self.promise_bound
        if unexplained and self.contract.unexplained(answer):
            self.note("other", "; ".join(judgement.differences), answer.describe())

    def note(
        self,
        key: str,
        observed: str,
        evidence: str,
        *,
        choice: Choice | None = None,
        matching_profiles: list[str] | None = None,
    ) -> None:
        """The target did what the vendor allows but the emulator chose otherwise: a finding
        on a live target, a failure on an emulator (which must keep its own choices)."""
        if self.promise_bound:
            chosen = choice or CHOICES[key]
            self._fail(
                f"the emulator breaks its own choice on {chosen.title} ({chosen.emulator}): "
                f"{observed}; {evidence}",
                ChoiceBroken,
            )
            return
        self.findings.add(
            key,
            self.redact(observed),
            self.redact(evidence),
            choice=choice,
            matching_profiles=matching_profiles,
        )

    # -- reads ---------------------------------------------------------------------------

    def list_agents(self, params: Mapping[str, str] | None = None) -> Answer:
        return self.send("GET", self.agents_path(), operation="getagentsstatus", params=params)

    def get_agent(self, agent_id: str) -> Answer:
        answer = self.send("GET", self.agents_path(agent_id), operation="getagentstatus")
        if answer.status == 404:
            self.guard.mark_absent(agent_id)
        body = answer.parsed() if answer.status == 200 else None
        if isinstance(body, dict) and body.get("agent-id") != agent_id:
            self._fail(
                f"{answer.describe()}: a read of agent {agent_id} answered another agent",
                ContractBreach,
            )
        return answer

    def agent_body(self, agent_id: str) -> dict[str, Any]:
        """The agent as the target shows it; anything but a 200 fails the calling check."""
        answer = self.get_agent(agent_id)
        if answer.status != 200:
            raise CheckFailed(f"reading agent {agent_id}: {answer.describe()}")
        body: dict[str, Any] = answer.json()
        return body

    def agents(self, params: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Every agent of the tenant (``params``: e.g. a group filter), through every page
        when the target pages its list.

        The first request carries no paging parameter (the guide has none, and the
        reference's text says "pagination is not supported"); only an answer with the
        reference's ``page`` object is paged, at the page size it chose, and its page object
        must add up.
        """
        agents: list[dict[str, Any]] = []
        seen: set[object] = set()
        index, pages, total, size = 0, 1, None, None
        while index < min(pages, MAX_PAGES):
            paging: dict[str, str] = {}
            if size is not None:
                paging = {"pageSize": str(size), "pageIndex": str(index)}
            answer = self.list_agents({**(params or {}), **paging} or None)
            if answer.status != 200:
                raise CheckFailed(f"listing agents: {answer.describe()}")
            body = answer.json()
            data: list[dict[str, Any]] = body["data"]
            repeated = [a.get("agent-id") for a in data if a.get("agent-id") in seen]
            if repeated:
                raise ContractBreach(
                    f"page {index} lists agents an earlier page listed ({repeated[:3]}): "
                    "pageIndex counts pages from 0"
                )
            seen.update(agent.get("agent-id") for agent in data)
            agents.extend(data)
            page = body.get("page")
            if not isinstance(page, dict) or not data:
                break
            size, pages, total = check_page(page, index, len(data))
            index += 1
        if total is not None and total != len(agents):
            raise ContractBreach(
                f"the page object's totalElements is {total}, "
                f"but its pages list {len(agents)} agents"
            )
        return agents

    # -- writes: always through the guard ------------------------------------------------

    def _before_write(self, touched: list[str], where: str, tenant: str | None) -> None:
        """Snapshot every agent a write may change, before its first write; an agent whose
        starting state cannot be read is not written to at all (it could not be put back).
        On another tenant's path (``tenant``) a write may name only proven-unknown ids."""
        if tenant is not None and touched:
            raise WriteRefused(f"{where} on tenant {tenant}: only unknown ids")
        for agent_id in touched:
            if not self.ledger.knows(agent_id):
                answer = self.get_agent(agent_id)
                if answer.status == 404:
                    continue  # no such agent (now marked absent): a write cannot change it
                if answer.status != 200:
                    raise WriteRefused(
                        f"agent {agent_id} could not be read before its first write "
                        f"({answer.describe()}); nothing was sent, as it could not be put back."
                    )
                self.ledger.remember(agent_id, answer.json())

    def set_agent(
        self,
        agent_id: str,
        body: object,
        credentials: Credentials | None = None,
        tenant: str | None = None,
    ) -> Answer:
        """A single set; ``tenant``: on another tenant's path (only for proven-unknown ids)."""
        self._before_write(self.guard.check_single(agent_id, body), f"PUT agent {agent_id}", tenant)
        answer = self._send(
            "PUT",
            self.agents_path(agent_id, tenant),
            operation="setagentstatus",
            json_body=body,
            credentials=credentials,
        )
        said = answer.parsed() if answer.status == 200 else None
        if isinstance(said, dict) and said.get("change-status", 200) != 200:
            self._fail(
                f"{answer.describe()}: a 200 whose body says change-status "
                f"{said['change-status']!r} (the guide's body says 200 for a change made)",
                ContractBreach,
            )
        return answer

    def bulk(
        self,
        method: str,
        body: object,
        credentials: Credentials | None = None,
        tenant: str | None = None,
    ) -> Answer:
        """A bulk set; ``tenant``: on another tenant's path (only for proven-unknown ids)."""
        self._before_write(self.guard.check_bulk(method, body), f"{method} bulk", tenant)
        return self._send(
            method,
            wire.bulk_path(tenant or self.tenant),
            operation=OPERATION_BY_METHOD[method.upper()],
            json_body=body,
            credentials=credentials,
        )
