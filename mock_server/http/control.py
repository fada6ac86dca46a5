"""Where the control plane is and what locks it: the one definition, free of Flask, so that a
handle on a running emulator (``harness``, the contract kit) imports it without the server."""

from __future__ import annotations

import hmac
import re

ADMIN_ROOT = "/__admin"
ADMIN_HEADER = "X-Admin-Token"
ADMIN_TOKEN_ENV = "AGENTSTATUS_ADMIN_TOKEN"
"""Where ``serve`` and the pytest plugin read the admin token from."""
ADMIN_COOKIE = "agentstatus-admin"
"""The dashboard's cookie: the admin token, for what a browser cannot send a header with (the
page itself and its event stream). ``HttpOnly``, ``SameSite=Strict``, under ``ADMIN_ROOT``."""
ADMIN_QUERY = "admin-token"
"""Where the dashboard's address may carry the admin token once; the page trades it for the
cookie and drops it from the address."""
DASHBOARD_PATH = ADMIN_ROOT + "/dashboard"
DASHBOARD_STREAM = ADMIN_ROOT + "/tenants/{tenantId}/stream"
"""The dashboard's live feed of one tenant: the event stream's messages, behind the admin token."""


def admin_token_matches(expected: str, given: str | None) -> bool:
    """A constant-time comparison; None (nothing given) never matches."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def cookie_token(cookie_header: str | None) -> str | None:
    """The admin token of a ``Cookie`` header, or None. Every port of a host shares one cookie
    jar, so the header carries other tools' cookies, of any form: each ``;``-separated pair is
    read alone (``http.cookies`` gives up on the whole header at the first it dislikes)."""
    if not cookie_header:
        return None
    for pair in cookie_header.split(";"):
        name, equals, value = pair.partition("=")
        if equals and name.strip() == ADMIN_COOKIE:
            return _unquoted(value.strip())
    return None


_ESCAPE = re.compile(rb"\\([0-3][0-7]{2}|.)", re.DOTALL)


def _unquoted(value: str) -> str:
    """A value as Werkzeug's ``dump_cookie`` quoted it (in ``"``, with ``\\"``, ``\\\\`` and
    octal escapes of the UTF-8 bytes it may not hold), or a plain one as it is."""
    if len(value) < 2 or not value.startswith('"') or not value.endswith('"'):
        return value
    raw = value[1:-1].encode("utf-8", "surrogateescape")
    escaped = _ESCAPE.sub(
        lambda m: m[1] if len(m[1]) == 1 else int(m[1], 8).to_bytes(1, "big"), raw
    )
    return escaped.decode("utf-8", "replace")
