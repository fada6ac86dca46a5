"""Profiles: which vendor document the emulator follows where the two disagree.

``default`` accepts what either document allows and answers so that both are satisfied;
``guide`` and ``reference`` follow one document strictly. Each field is one row of the
disagreement table in ``../shared/reference/README.md``; the contract kit's conformance
report probes the same rows and compares them with ``claims()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any

from schemas.wire import BULK_LIMIT

PROBLEM_MEDIA_TYPE = "application/problem+json"
"""RFC 7807's media type for Problem JSON."""


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    bulk_methods: tuple[str, ...]
    single_requires_status_codes: bool
    """Guide: all four body fields are required on a single set. Reference: only agent-status."""
    bulk_requires_agent_status: bool
    """Reference: agent-status is required in a bulk entry. Guide: it is not marked required."""
    bulk_requires_status_codes: bool
    bulk_limit: int | None
    single_success_body: bool
    """Guide: a 200 carries reason/change-status/message. Reference: no body described."""
    bulk_result_message: bool
    """Guide: each bulk result has a ``message``. Reference: agent-id, change-status, reason."""
    tenant_forbidden_xml: bool
    """Guide: the only 403 it shows is the XML one. Reference: a Problem JSON 403."""
    error_media_type: str
    """The media type of every Problem JSON error of the API. Reference: ``application/json``
    (its ``default`` response); the guide describes none, so RFC 7807's own elsewhere."""
    group_filter: bool
    pagination: bool
    """Reference: pageSize/pageIndex and a ``page`` object. Guide and the reference's text: none."""

    def claims(self) -> dict[str, Any]:
        """The variant this profile follows on each disputed point, as the report records it."""
        return {
            key: value for key, value in asdict(self).items() if key not in ("name", "description")
        }


DEFAULT = Profile(
    name="default",
    description="Accepts what either document allows; answers with every field either shows.",
    bulk_methods=("POST", "PUT"),
    single_requires_status_codes=False,
    bulk_requires_agent_status=False,
    bulk_requires_status_codes=False,
    bulk_limit=BULK_LIMIT,
    single_success_body=True,
    bulk_result_message=True,
    tenant_forbidden_xml=False,
    error_media_type=PROBLEM_MEDIA_TYPE,
    group_filter=True,
    pagination=False,
)

GUIDE = Profile(
    name="guide",
    description="Follows the developer guide (cc-managing-agent-status.md) strictly.",
    bulk_methods=("PUT",),
    single_requires_status_codes=True,
    bulk_requires_agent_status=False,
    bulk_requires_status_codes=True,
    bulk_limit=None,
    single_success_body=True,
    bulk_result_message=True,
    tenant_forbidden_xml=True,
    error_media_type=PROBLEM_MEDIA_TYPE,
    group_filter=False,
    pagination=False,
)

REFERENCE = Profile(
    name="reference",
    description="Follows the API reference (official-openapi.json) strictly.",
    bulk_methods=("POST",),
    single_requires_status_codes=False,
    bulk_requires_agent_status=True,
    bulk_requires_status_codes=False,
    bulk_limit=BULK_LIMIT,
    single_success_body=False,
    bulk_result_message=False,
    tenant_forbidden_xml=False,
    error_media_type="application/json",
    group_filter=True,
    pagination=True,
)

PROFILES: Mapping[str, Profile] = MappingProxyType(
    {profile.name: profile for profile in (DEFAULT, GUIDE, REFERENCE)}
)

# The reference caps pageSize at 500 in its PageResult object.
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown profile '{name}'; choose one of: {known}") from None
