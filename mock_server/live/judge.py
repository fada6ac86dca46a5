"""One answer of a service judged by both layers of the contract, as ``validate-recording``
judges a recording and the contract kit a live tenant, so that the two always agree.

The vendor contract (``schemas/vendor-openapi.yaml``): a breach is a failure on any target. The
emulator's promise (``schemas/openapi.yaml`` as each profile serves it): a live service that
differs gets a finding, with the profiles that would answer the same. Each document routes an
answer on its own (in the reference profile a PUT on ``.../agents/bulk`` is the single set of
agent "bulk"); a 405 is judged as unrouted, since it is answered before routing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from mock_server.core.profiles import DEFAULT, PROFILES
from mock_server.http.profile_document import profile_document
from schemas.contract import ContractValidator
from schemas.documents import API_DOCUMENT, VENDOR_DOCUMENT, bundle


class Observed(Protocol):
    """What is judged of an answer: its request's method and path (below ``API_BASE``), its
    status, body and headers."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def status(self) -> int: ...
    @property
    def body(self) -> bytes: ...
    @property
    def headers(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Judgement:
    """One answer against both layers."""

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
    return ContractValidator(profile_document(PROFILES[profile]))


def violations(validator: ContractValidator, answer: Observed) -> list[str]:
    """How an answer breaks one document."""
    operation = None if answer.status == 405 else validator.route(answer.method, answer.path)
    return validator.answer_violations(operation, answer.status, answer.body, answer.headers)


class ContractJudge:
    """The vendor contract and every profile's promise, compiled once per process.

    ``profile`` is the promise an answer is compared with: the profile an emulator target
    claims, or the default profile for a live one.
    """

    def __init__(self, profile: str = DEFAULT.name) -> None:
        self.profile = profile
        self.vendor = vendor_validator()
        self.promises = {name: promise_validator(name) for name in PROFILES}
        self.union = union_validator()

    def judge(self, answer: Observed) -> Judgement:
        return Judgement(
            breaches=violations(self.vendor, answer),
            differences=violations(self.promises[self.profile], answer),
        )

    def matching_profiles(self, answer: Observed) -> list[str]:
        """The emulator profiles whose promise this answer keeps."""
        return sorted(
            name for name, validator in self.promises.items() if not violations(validator, answer)
        )

    def unexplained(self, answer: Observed) -> bool:
        """Whether no choice of the emulator's accounts for this answer: it breaks the promise
        of every profile, and of ``openapi.yaml`` itself, which takes what any profile sends
        (a bulk result without ``message`` under PUT is neither the guide's nor the
        reference's, but each disputed point is reported on its own)."""
        return bool(violations(self.union, answer)) and not self.matching_profiles(answer)
