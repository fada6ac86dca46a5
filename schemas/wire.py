"""The API on the wire, as both vendor documents define it: its paths, its platforms, and the
HTTP Basic credentials it takes. The one definition the emulator routes by and the client, the
kit and the tools build from; a test holds both OpenAPI documents to these paths.
"""

from __future__ import annotations

import base64
import re
from urllib.parse import quote

from schemas import load_schema

API_ROOT = "/api/"
"""Every path below it is the vendor's API (or a path it lacks); the rest is the emulator's."""
API_BASE = "/api/v1"
"""The documents' server path: the operations' paths below are relative to it."""
AGENTS = "/tenants/{tenantId}/agentstatus/agents"
AGENT = AGENTS + "/{agentId}"
BULK = AGENTS + "/bulk"
OPERATION_PATHS = {
    "getagentsstatus": AGENTS,
    "getagentstatus": AGENT,
    "setagentstatus": AGENT,
    "setagentsstatuses": BULK,
    "setagentsstatusesput": BULK,
}
"""The operation ids and the path template each is at: the reference's four, and the
guide's PUT of the bulk (the reference has only its POST), named by our documents."""


_TENANT_HEAD, _TENANT_TAIL = AGENTS.split("{tenantId}")
BULK_SEGMENT = BULK.rsplit("/", 1)[1]
_API_PATH = re.compile(
    # Any version, so that a path the API lacks (``/api/v2/...``) still names its ids.
    f"^{re.escape(API_ROOT)}v[^/]+{re.escape(_TENANT_HEAD)}(?P<tenant>[^/]+)"
    f"(?:{re.escape(_TENANT_TAIL)}(?:/(?P<agent>[^/]+))?)?"
)


def path_ids(path: str) -> tuple[str | None, str | None]:
    """The tenant and the agent an API path (as served, not escaped) names: the agent is None
    on the list and bulk paths, both are None off the tenant paths."""
    found = _API_PATH.match(path)
    if found is None:
        return None, None
    agent = found.group("agent")
    return found.group("tenant"), None if agent == BULK_SEGMENT else agent


def segment(value: str) -> str:
    """One path segment, every reserved character escaped (``/``, ``%``, ``?``, ``#``, space)."""
    return quote(value, safe="")


def agents_path(tenant: str) -> str:
    """``/tenants/{tenant}/agentstatus/agents``, below ``API_BASE``."""
    return AGENTS.format(tenantId=segment(tenant))


def agent_path(tenant: str, agent_id: str) -> str:
    return AGENT.format(tenantId=segment(tenant), agentId=segment(agent_id))


def bulk_path(tenant: str) -> str:
    return BULK.format(tenantId=segment(tenant))


def route_rule(template: str) -> str:
    """A template in the documents' form (``{tenantId}``) in Werkzeug's (``<tenantId>``)."""
    return re.sub(r"\{(\w+)\}", r"<\1>", template)


def basic_authorization(username: str, token: str) -> str:
    """The ``Authorization`` value for HTTP Basic with a username and an action token."""
    encoded = base64.b64encode(f"{username}:{token}".encode()).decode("ascii")
    return f"Basic {encoded}"


class UnknownPlatform(LookupError):
    """A platform name the vendor's list does not hold; the message names the known ones."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown platform {name!r}; known platforms: {', '.join(known)}")


def platforms() -> dict[str, str]:
    """The vendor's platforms, name -> API base URL (``schemas/platforms.json``)."""
    table: dict[str, str] = load_schema("platforms.json")["platforms"]
    return dict(table)


def platform_url(name: str) -> str:
    """The API base URL of a platform named as the vendor does (``na12``, ``EU7``, ``bc2``)."""
    table = platforms()
    try:
        return table[name.strip().upper()]
    except KeyError:
        raise UnknownPlatform(name, sorted(table)) from None


STATUS_CODE_FIELDS = ("status-code-list-id", "status-code-item-id", "status-code-item-short-code")
"""A status code's members in a change request and in an agent: list id, item id, short code."""
BULK_LIMIT: int = load_schema("bulk-request.schema.json")["properties"]["agents"]["maxItems"]
"""The reference's ``maxItems`` for a bulk request (the guide states no limit)."""
FORBIDDEN_XML = "<API><Error>403 - Forbidden.</Error></API>"
"""The guide's body of the 403 for a tenant whose API is not enabled, as ``application/xml``."""
REQUEST_ID_HEADER = "X-Request-Id"
"""The emulator's promise (``openapi.yaml``), not the vendor's: each answer's id, which the
client reads where any service sends it."""

ENV_BASE_URL = "AGENTSTATUS_BASE_URL"
ENV_PLATFORM = "AGENTSTATUS_PLATFORM"
ENV_TENANT = "AGENTSTATUS_TENANT"
ENV_USERNAME = "AGENTSTATUS_USERNAME"
ENV_TOKEN = "AGENTSTATUS_TOKEN"
"""Where every tool of the project (the client, ``import``, ``proxy``, the contract kit) reads
a live tenant's address and credentials from; ``AGENTSTATUS_BASE_URL`` wins over the platform."""

MAX_SAFE_INTEGER = 2**53 - 1
"""The largest integer every JSON parser holds exactly (RFC 8259, section 6)."""


def integral(value: object) -> int | None:
    """A JSON number with no fraction as an int (the reference types statuses and ids as
    ``number``: 5 or 5.0), or None for anything else: a boolean, a string, a fraction, NaN or
    infinity. The range (``MAX_SAFE_INTEGER``) is the caller's to check."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value)
