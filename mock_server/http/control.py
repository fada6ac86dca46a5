"""Where the control plane is and what locks it: the one definition, free of Flask, so that a
handle on a running emulator (``harness``, the contract kit) imports it without the server."""

from __future__ import annotations

import hmac
from http.cookies import CookieError, SimpleCookie

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
    """The admin token of a ``Cookie`` header, or None."""
    if not cookie_header:
        return None
    jar = SimpleCookie()
    try:
        jar.load(cookie_header)
    except CookieError:
        return None
    morsel = jar.get(ADMIN_COOKIE)
    return None if morsel is None else morsel.value
