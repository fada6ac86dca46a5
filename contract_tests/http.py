"""The kit's HTTP layer: every call goes through ``ApiTransport.send``, which judges the answer.

Every response is judged against both layers of the contract (``ResponseContract``): the
vendor contract (``schemas/vendor-openapi.yaml``), whose breach fails the calling check on any
target, and the emulator's promise (``schemas/openapi.yaml`` as each profile serves it). A
target that claims to be an emulator must keep its promise too; a live target that differs
from it gets a finding (``contract_tests.findings``), with the profiles that would answer the
same. Every write passes the ``WriteGuard`` and snapshots the agents it may change first.
Nothing here ever prints the token or the Authorization header.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import quote

import requests

from client.api import basic_authorization
from contract_tests.exchange import Exchange, Scrubber
from contract_tests.findings import CHOICES, Choice, ChoiceBroken, Findings, observe
from contract_tests.guard import RestoreLedger, WriteGuard, WriteRefused
from mock_server.core.profiles import DEFAULT, PROFILES
from mock_server.http.documents import api_document
from mock_server.live.recording import secrets_of
from schemas.contract import ContractValidator, Operation
from schemas.documents import API_DOCUMENT, VENDOR_DOCUMENT, bundle

TIMEOUT_SECONDS = 30.0
MAX_PAGE_SIZE = 500
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
        return basic_authorization(self.username, self.token)

    def scrubber(self) -> Scrubber:
        """What blanks these credentials out: the header, its base64, the token."""
        return Scrubber(secrets_of([("Authorization", self.header())]))


@dataclass(frozen=True)
class Judgement:
    """One response against both layers."""

    breaches: list[str]
    """What breaks the vendor contract: a failure on every target."""
    differences: list[str]
    """What breaks the promise of the profile the target is compared with."""


@cache
def vendor_validator() -> ContractValidator:
    return ContractValidator(bundle(VENDOR_DOCUMENT))


@cache
def union_validator() -> ContractValidator:
    """The emulator's promise over all its profiles: ``openapi.yaml`` as written."""
    return ContractValidator(bundle(API_DOCUMENT))


@cache
def promise_validator(profile: str) -> ContractValidator:
    """The document the emulator serves in this profile, at ``/openapi.json``."""
    return ContractValidator(api_document(PROFILES[profile]))


def _operation(validator: ContractValidator, exchange: Exchange) -> Operation | None:
    """The operation an answer is judged by, routed by method and path as the document routes
    them (in the reference profile a PUT on ``.../bulk`` is the single set of agent "bulk");
    None (judged as unrouted) for a method the path lacks, answered before routing."""
    if exchange.status == 405:
        return None
    return validator.route(exchange.method, exchange.path)


class ResponseContract:
    """The vendor contract and every profile's promise, compiled once per process.

    ``profile`` is the promise the target is compared with: the profile an emulator target
    claims, or the default profile for a live one.
    """

    def __init__(self, profile: str = DEFAULT.name) -> None:
        self.profile = profile
        self.vendor = vendor_validator()
        self.promises = {name: promise_validator(name) for name in PROFILES}
        self.union = union_validator()

    @staticmethod
    def _violations(validator: ContractValidator, exchange: Exchange) -> list[str]:
        operation = _operation(validator, exchange)
        return validator.violations(
            operation,
            exchange.status,
            exchange.body,
            content_type=exchange.headers.get("content-type"),
            headers=exchange.headers,
        )

    def judge(self, exchange: Exchange) -> Judgement:
        return Judgement(
            breaches=self._violations(self.vendor, exchange),
            differences=self._violations(self.promises[self.profile], exchange),
        )

    def matching_profiles(self, exchange: Exchange) -> list[str]:
        """The emulator profiles whose promise this response keeps."""
        return sorted(
            name
            for name, validator in self.promises.items()
            if not self._violations(validator, exchange)
        )

    def unexplained(self, exchange: Exchange) -> bool:
        """Whether no choice of the emulator's accounts for this response: it breaks the
        promise of every profile, and of ``openapi.yaml`` itself, which takes what any profile
        sends (a bulk result without ``message`` under PUT is neither the guide's nor the
        reference's, but each disputed point is reported on its own)."""
        return bool(self._violations(self.union, exchange)) and not self.matching_profiles(exchange)


def check_page(page: Mapping[str, Any], index: int, listed: int) -> tuple[int, int, int | None]:
    """The reference's PageResult of page ``index``, which listed ``listed`` agents, checked
    against its own descriptions; returns its page size, page count and element count."""
    size = page.get("pageSize")
    assert isinstance(size, int | float) and size >= 1, f"page {index}: pageSize {size!r}"
    assert page.get("pageIndex", index) == index, (
        f"page {index} says pageIndex {page.get('pageIndex')!r}: pageIndex counts pages from 0"
    )
    assert listed <= size, f"page {index} lists {listed} agents, more than its pageSize {size}"
    total, pages = page.get("totalElements"), page.get("totalPages", 1)
    if isinstance(total, int | float):
        assert pages == math.ceil(total / size), (
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
        contract: ResponseContract,
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
        path = f"/tenants/{quote(tenant or self.tenant, safe='')}/agentstatus/agents"
        return path if agent_id is None else f"{path}/{quote(agent_id, safe='')}"

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
    ) -> Exchange:
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
    ) -> Exchange:
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
        exchange = Exchange(
            method=method,
            path=path
            + ("" if not params else "?" + "&".join(f"{k}={v}" for k, v in params.items())),
            operation=operation,
            status=response.status_code,
            headers={name.lower(): value for name, value in response.headers.items()},
            body=response.content,
        )
        exchange = self._scrubber.exchange(exchange)
        if credentials is not None:  # the call's own credentials (a wrong token, say) as well
            exchange = credentials.scrubber().exchange(exchange)
        self._judge(exchange)
        return exchange

    def _fail(self, message: str, error: type[AssertionError]) -> None:
        """Record a failure; raise it unless inside ``recording()``."""
        found = self.redact(message)
        self.violations.append(found)
        if self._strict:
            raise error(found)

    def _judge(self, exchange: Exchange) -> None:
        judgement = self.contract.judge(exchange)
        if judgement.breaches:
            self._fail(
                f"{exchange.describe()} breaks the vendor contract: "
                + "; ".join(judgement.breaches),
                ContractBreach,
            )
        if self.promise_bound and judgement.differences:
            self._fail(
                f"{exchange.describe()} breaks the emulator's promise "
                f"(profile {self.contract.profile}): " + "; ".join(judgement.differences),
                ContractBreach,
            )
        observed = observe(exchange)
        for key, what, evidence in observed:
            self.note(key, what, evidence)
        unexplained = judgement.differences and not observed and not self.promise_bound
        if unexplained and self.contract.unexplained(exchange):
            self.note("other", "; ".join(judgement.differences), exchange.describe())

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

    def list_agents(self, params: Mapping[str, str] | None = None) -> Exchange:
        return self.send("GET", self.agents_path(), operation="getagentsstatus", params=params)

    def get_agent(self, agent_id: str) -> Exchange:
        exchange = self.send("GET", self.agents_path(agent_id), operation="getagentstatus")
        if exchange.status == 404:
            self.guard.mark_absent(agent_id)
        body = exchange.parsed() if exchange.status == 200 else None
        if isinstance(body, dict) and body.get("agent-id") != agent_id:
            self._fail(
                f"{exchange.describe()}: a read of agent {agent_id} answered another agent",
                ContractBreach,
            )
        return exchange

    def agent_body(self, agent_id: str) -> dict[str, Any]:
        """The agent as the target shows it; anything but a 200 fails the calling check."""
        exchange = self.get_agent(agent_id)
        assert exchange.status == 200, f"reading agent {agent_id}: {exchange.describe()}"
        body: dict[str, Any] = exchange.json()
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
            exchange = self.list_agents({**(params or {}), **paging} or None)
            assert exchange.status == 200, f"listing agents: {exchange.describe()}"
            body = exchange.json()
            data: list[dict[str, Any]] = body["data"]
            repeated = [a.get("agent-id") for a in data if a.get("agent-id") in seen]
            assert not repeated, (
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
        assert total is None or total == len(agents), (
            f"the page object's totalElements is {total}, but its pages list {len(agents)} agents"
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
                exchange = self.get_agent(agent_id)
                if exchange.status == 404:
                    continue  # no such agent (now marked absent): a write cannot change it
                if exchange.status != 200:
                    raise WriteRefused(
                        f"agent {agent_id} could not be read before its first write "
                        f"({exchange.describe()}); nothing was sent, as it could not be put back."
                    )
                self.ledger.remember(agent_id, exchange.json())

    def set_agent(
        self,
        agent_id: str,
        body: object,
        credentials: Credentials | None = None,
        tenant: str | None = None,
    ) -> Exchange:
        """A single set; ``tenant``: on another tenant's path (only for proven-unknown ids)."""
        self._before_write(self.guard.check_single(agent_id, body), f"PUT agent {agent_id}", tenant)
        exchange = self._send(
            "PUT",
            self.agents_path(agent_id, tenant),
            operation="setagentstatus",
            json_body=body,
            credentials=credentials,
        )
        answer = exchange.parsed() if exchange.status == 200 else None
        if isinstance(answer, dict) and answer.get("change-status", 200) != 200:
            self._fail(
                f"{exchange.describe()}: a 200 whose body says change-status "
                f"{answer['change-status']!r} (the guide's body says 200 for a change made)",
                ContractBreach,
            )
        return exchange

    def bulk(
        self,
        method: str,
        body: object,
        credentials: Credentials | None = None,
        tenant: str | None = None,
    ) -> Exchange:
        """A bulk set; ``tenant``: on another tenant's path (only for proven-unknown ids)."""
        self._before_write(self.guard.check_bulk(method, body), f"{method} bulk", tenant)
        return self._send(
            method,
            self.agents_path(tenant=tenant) + "/bulk",
            operation=OPERATION_BY_METHOD[method.upper()],
            json_body=body,
            credentials=credentials,
        )
