"""The kit's HTTP layer: every call goes through ``ApiTransport.send``, which judges the answer.

One hook, ``ResponseContract.violations``, checks the status code, content type, headers and
body of every response against the project's OpenAPI document (``schemas/openapi.yaml``,
bundled). The document accepts what either vendor document allows, except that the reference
describes the single set's 200 without a body: an empty 200 is judged against that variant.
Every write passes the ``WriteGuard`` and snapshots the agents it may change first.
Nothing here ever prints the token or the Authorization header.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from client.api import basic_authorization
from contract_tests.guard import RestoreLedger, WriteGuard
from schemas.contract import ContractValidator
from schemas.documents import API_DOCUMENT, bundle

TIMEOUT_SECONDS = 30.0
EXCERPT_CHARS = 300
SINGLE_PATH = "/tenants/{tenantId}/agentstatus/agents/{agentId}"
OPERATION_BY_METHOD = {"POST": "setagentsstatuses", "PUT": "setagentsstatusesput"}


class ContractBreach(AssertionError):
    """A response broke the project's contract; the message names every violation."""


@dataclass(frozen=True)
class Credentials:
    """HTTP Basic credentials; the token never shows in a repr."""

    username: str
    token: str = field(repr=False)

    def header(self) -> str:
        return basic_authorization(self.username, self.token)


@dataclass(frozen=True)
class Exchange:
    """One call and its answer, as the checks see it (no request headers kept)."""

    method: str
    path: str
    """Below the API root, e.g. ``/tenants/acme/agentstatus/agents/ag1``."""
    operation: str | None
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def describe(self) -> str:
        """``PUT /tenants/…/agents/x -> 400 application/problem+json: {...}`` for messages."""
        excerpt = " ".join(self.text.split())[:EXCERPT_CHARS]
        return (
            f"{self.method} {self.path} -> {self.status} {self.media_type or '(none)'}: {excerpt}"
        )


class ResponseContract:
    """The project's document, compiled once, and its no-body variant of the single set."""

    def __init__(self) -> None:
        document = bundle(API_DOCUMENT)
        self.main = ContractValidator(document)
        variant = copy.deepcopy(document)
        del variant["paths"][SINGLE_PATH]["put"]["responses"]["200"]["content"]
        self.no_body = ContractValidator(variant)

    def violations(self, exchange: Exchange) -> list[str]:
        validator = self.main
        if exchange.operation == "setagentstatus" and exchange.status == 200 and not exchange.body:
            validator = self.no_body
        # A method the path lacks is answered before routing: judged as "no operation".
        operation = (
            None
            if exchange.operation is None or exchange.status == 405
            else validator.operation_by_id(exchange.operation)
        )
        return validator.violations(
            operation,
            exchange.status,
            exchange.body,
            content_type=exchange.headers.get("content-type"),
            headers=exchange.headers,
        )


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
        pause: float = 0.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tenant = tenant
        self.credentials = credentials
        self.contract = contract
        self.guard = guard
        self.ledger = ledger
        self.pause = pause
        self.calls = 0
        self.violations: list[str] = []
        self._strict = True
        self._session = requests.Session()

    def close(self) -> None:
        self._session.close()

    def redact(self, text: str) -> str:
        """``text`` with the token and the Authorization value blanked out."""
        for secret in (self.credentials.header(), self.credentials.token):
            text = text.replace(secret, "***")
        return text

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
        """One call, judged by the contract hook; a violation fails the calling check."""
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
        problems = [self.redact(p) for p in self.contract.violations(exchange)]
        if problems:
            found = self.redact(
                f"{exchange.describe()} breaks the contract: " + "; ".join(problems)
            )
            self.violations.append(found)
            if self._strict:
                raise ContractBreach(found)
        return exchange

    # -- reads ---------------------------------------------------------------------------

    def list_agents(self, params: Mapping[str, str] | None = None) -> Exchange:
        return self.send("GET", self.agents_path(), operation="getagentsstatus", params=params)

    def get_agent(self, agent_id: str) -> Exchange:
        exchange = self.send("GET", self.agents_path(agent_id), operation="getagentstatus")
        if exchange.status == 404:
            self.guard.mark_absent(agent_id)
        return exchange

    def agent_body(self, agent_id: str) -> dict[str, Any]:
        """The agent as the target shows it; anything but a 200 fails the calling check."""
        exchange = self.get_agent(agent_id)
        assert exchange.status == 200, f"reading agent {agent_id}: {exchange.describe()}"
        body: dict[str, Any] = exchange.json()
        return body

    def agents(self) -> list[dict[str, Any]]:
        """Every agent of the tenant (one page as large as the reference allows)."""
        exchange = self.list_agents({"pageSize": "500"})
        assert exchange.status == 200, f"listing agents: {exchange.describe()}"
        data: list[dict[str, Any]] = exchange.json()["data"]
        return data

    # -- writes: always through the guard ------------------------------------------------

    def _before_write(self, touched: list[str]) -> None:
        for agent_id in touched:
            if not self.ledger.knows(agent_id):
                exchange = self.get_agent(agent_id)
                if exchange.status == 200:
                    self.ledger.remember(agent_id, exchange.json())

    def set_agent(self, agent_id: str, body: object) -> Exchange:
        self._before_write(self.guard.check_single(agent_id, body))
        return self.send(
            "PUT", self.agents_path(agent_id), operation="setagentstatus", json_body=body
        )

    def bulk(self, method: str, body: object) -> Exchange:
        self._before_write(self.guard.check_bulk(method, body))
        return self.send(
            method,
            self.agents_path() + "/bulk",
            operation=OPERATION_BY_METHOD[method.upper()],
            json_body=body,
        )
