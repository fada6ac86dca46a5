"""Every answer judged against both layers of the contract (``ContractJudge``).

The vendor contract (``schemas/vendor-openapi.yaml``), whose breach fails the calling check on
any target, and the emulator's promise (``schemas/openapi.yaml`` as each profile serves it). A
target that claims to be an emulator must keep its promise too; a live target that differs
from it gets a finding (``contract_tests.findings``), with the profiles that would answer the
same. An answer is put to each document as the emulator puts its own responses
(``mock_server.http.validation.answer_violations``); only the routing is the kit's, as the kit
sees paths, not the route that answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from contract_tests.answer import Answer
from mock_server.core.profiles import DEFAULT, PROFILES
from mock_server.http.documents import api_document
from mock_server.http.validation import answer_violations
from schemas.contract import ContractValidator, Operation
from schemas.documents import API_DOCUMENT, VENDOR_DOCUMENT, bundle


class ContractBreach(AssertionError):
    """A response broke the contract a target is held to; the message names every violation."""


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


def route(validator: ContractValidator, answer: Answer) -> Operation | None:
    """The operation an answer is judged by, routed by method and path as the document routes
    them (in the reference profile a PUT on ``.../bulk`` is the single set of agent "bulk");
    None (judged as unrouted) for a method the path lacks, answered before routing."""
    if answer.status == 405:
        return None
    return validator.route(answer.method, answer.path)


def violations(validator: ContractValidator, answer: Answer) -> list[str]:
    """How an answer breaks one document."""
    return answer_violations(
        validator, route(validator, answer), answer.status, answer.body, answer.headers
    )


class ContractJudge:
    """The vendor contract and every profile's promise, compiled once per process, judging
    the answers of a target (the emulator judges its own with ``ResponseContract``).

    ``profile`` is the promise the target is compared with: the profile an emulator target
    claims, or the default profile for a live one.
    """

    def __init__(self, profile: str = DEFAULT.name) -> None:
        self.profile = profile
        self.vendor = vendor_validator()
        self.promises = {name: promise_validator(name) for name in PROFILES}
        self.union = union_validator()

    def judge(self, answer: Answer) -> Judgement:
        return Judgement(
            breaches=violations(self.vendor, answer),
            differences=violations(self.promises[self.profile], answer),
        )

    def matching_profiles(self, answer: Answer) -> list[str]:
        """The emulator profiles whose promise this response keeps."""
        return sorted(
            name for name, validator in self.promises.items() if not violations(validator, answer)
        )

    def unexplained(self, answer: Answer) -> bool:
        """Whether no choice of the emulator's accounts for this response: it breaks the
        promise of every profile, and of ``openapi.yaml`` itself, which takes what any profile
        sends (a bulk result without ``message`` under PUT is neither the guide's nor the
        reference's, but each disputed point is reported on its own)."""
        return bool(violations(self.union, answer)) and not self.matching_profiles(answer)
