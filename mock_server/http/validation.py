"""``--validate-responses``: every response judged against the served documents before it leaves.

A response that breaks the contract is a bug in the emulator or in the document, and either
must be loud: ``create_app`` turns it into a 500 Problem JSON naming the violation. The test
suite runs every app this way, so any test that provokes such a response fails.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from flask import Response, current_app, request

from mock_server.core.errors import ResponseContractViolation
from mock_server.core.profiles import Profile
from mock_server.http.documents import admin_document
from mock_server.http.profile_document import profile_document
from schemas.contract import ContractValidator
from schemas.wire import API_BASE, API_ROOT

EXTENSION = "agentstatus.contract"
_CONVERTER = re.compile(r"<(?:[a-z_]+:)?([A-Za-z_]+)>")


@cache
def openapi_path(rule: str) -> str:
    """A Flask rule as an OpenAPI path template: ``<tenant_id>`` → ``{tenantId}``; cached, as
    an app has few rules and every validated response asks for its own."""

    def camel(match: re.Match[str]) -> str:
        head, *rest = match.group(1).split("_")
        return "{" + head + "".join(part.capitalize() for part in rest) + "}"

    return _CONVERTER.sub(camel, rule)


@dataclass(frozen=True)
class ResponseContract:
    """The emulator's own responses held to the two documents it serves (the API's, narrowed
    to its profile, and the control plane's): their validators, compiled once per app.

    It routes by the Flask rule that answered, so a route the document lacks is itself a
    violation; the contract kit, seeing only paths, routes as the document does instead."""

    api: ContractValidator
    admin: ContractValidator

    @classmethod
    def for_profile(cls, profile: Profile) -> ResponseContract:
        return cls(
            api=ContractValidator(profile_document(profile)),
            admin=ContractValidator(admin_document()),
        )

    def violations(
        self,
        method: str,
        path: str,
        template: str | None,
        answer: tuple[int, bytes, Mapping[str, str]],
    ) -> list[str]:
        """How an answer (status, body, headers) to ``method path`` breaks the contract;
        ``template`` is the OpenAPI path of the route that answered (None: no route did)."""
        in_api = path.startswith(API_ROOT)
        validator = self.api if in_api else self.admin
        if template is not None and in_api:
            template = template.removeprefix(API_BASE)
        operation = None if template is None else validator.operation(method, template)
        if template is not None and operation is None:
            return [f"{method} {template} is routed but not in the document"]
        status, body, headers = answer
        return validator.answer_violations(operation, status, body, dict(headers))


def contract_failure(violations: list[str]) -> ResponseContractViolation | None:
    """The 500 a response that broke the contract becomes, naming every violation."""
    if not violations:
        return None
    return ResponseContractViolation(
        "The emulator's response broke its contract: " + "; ".join(violations)
    )


def response_violations(response: Response) -> list[str]:
    """The current request's response, judged; automatic OPTIONS answers are not described."""
    if request.method == "OPTIONS":
        return []
    contract: ResponseContract = current_app.extensions[EXTENSION]
    template = None if request.url_rule is None else openapi_path(request.url_rule.rule)
    answer = (response.status_code, response.get_data(), dict(response.headers))
    return contract.violations(request.method, request.path, template, answer)
