"""Which event stream a WebSocket asks for: the current Event Streaming service (Pulsar's
reader, ``http.event_stream``), the legacy Streaming API (``http.legacy_stream``), or the
dashboard's feed of one tenant (the reader's messages, behind the admin token)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import parse_qsl, urlsplit

from mock_server.core.backend import AgentStatusBackend
from mock_server.core.errors import AdminForbidden, RouteNotFound
from mock_server.http.control import (
    ADMIN_HEADER,
    ADMIN_ROOT,
    DASHBOARD_STREAM,
    admin_token_matches,
    cookie_token,
)
from mock_server.http.event_stream import (
    ALL_EVENTS,
    EVENT_NAMESPACE,
    Channel,
    Reader,
    ReaderRequest,
    open_reader,
    reader_request,
)
from mock_server.http.legacy_stream import LEGACY_ROOT, LegacyTimes, open_subscription

FEED_PATH = re.compile(DASHBOARD_STREAM.replace("{tenantId}", "(?P<tenant>[^/]+)"))


class Session(Protocol):
    """A stream accepted: it talks over the channel until either side ends it."""

    async def run(self, channel: Channel) -> None: ...


def open_stream(
    backend: AgentStatusBackend,
    path: str,
    query: str,
    headers: Mapping[str, str],
    legacy_times: LegacyTimes,
    admin_token: str | None,
) -> Session:
    """The session a handshake asks for, or the ``ApiError`` whose status refuses it.
    ``headers`` have lowercase names."""
    if path.startswith(LEGACY_ROOT):
        return open_subscription(backend, path, query, headers, legacy_times)
    if path.startswith(ADMIN_ROOT + "/"):
        return Reader(backend, open_feed(backend, path, query, headers, admin_token))
    return Reader(backend, open_reader(backend, path, query, headers))


def open_feed(
    backend: AgentStatusBackend,
    path: str,
    query: str,
    headers: Mapping[str, str],
    admin_token: str | None,
) -> ReaderRequest:
    """Every event of a tenant, for the dashboard: with an admin token set, the handshake
    carries it (header or the dashboard's cookie) and comes from a page of this host, so that
    another site's script cannot read the feed with the browser's cookie."""
    if admin_token is not None:  # before routing, as for every control-plane path
        given = headers.get(ADMIN_HEADER.lower()) or cookie_token(headers.get("cookie"))
        if not admin_token_matches(admin_token, given) or not _same_origin(headers):
            raise AdminForbidden(f"The control plane needs a valid {ADMIN_HEADER} header.")
    match = FEED_PATH.fullmatch(path)
    if match is None:
        raise RouteNotFound(f"No event stream at {path}; the dashboard's is {DASHBOARD_STREAM}.")
    tenant_id = match["tenant"]
    backend.tenant_state(tenant_id)  # 404 for a tenant that does not exist
    params = dict(parse_qsl(query, keep_blank_values=True))
    return reader_request(tenant_id, EVENT_NAMESPACE, ALL_EVENTS, params)


def _same_origin(headers: Mapping[str, str]) -> bool:
    """A browser names the page's origin; a script (no ``Origin``) is not a browser's page."""
    origin = headers.get("origin")
    return origin is None or urlsplit(origin).netloc == headers.get("host")
