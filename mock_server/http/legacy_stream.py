"""The vendor's legacy Streaming API (SAPI): every event of a tenant on one WebSocket.

``wss://HOST/api/streaming/v1/clientconnect/subscribe/TenantUpdates-{tenant}-{subscriptionId}
?desiredOutputType=JSON|XML|NEWLINE_JSON|NEWLINE_XML&tenantId={tenant}&subsId={subscriptionId}``
with Basic credentials (the header, or ``?token=Basic+...``), as
``legacy-streaming-api-overview.md`` describes it: no filter, ``ClientCheck`` heartbeats, at
most three subscriptions of a tenant connected at once, a subscription disconnected after 60
minutes, and a subscription id that reconnects within 2 hours of leaving gets what it missed.
``time_scale`` shrinks those durations for tests (0.001: an hour in 3.6 s).

The subscriptions of a tenant are one shared record of the store (``backend.update_record``),
so the limit and the resuming hold across workers: a connection holds a lease it renews at
every heartbeat, so one whose worker died frees its place when the lease runs out, and its
position is the one saved at its last heartbeat (what came after is delivered again).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import orjson

from mock_server.core.backend import AgentStatusBackend
from mock_server.core.entities import INSTANCE_ID
from mock_server.core.errors import ApiError, InvalidRequest, RouteNotFound
from mock_server.core.store import tenant_record_key
from mock_server.http.auth import basic_credentials
from mock_server.http.event_stream import BATCH, POLL_SECONDS, Channel

LEGACY_ROOT = "/api/streaming/"
SUBSCRIBE_PATH = re.compile(r"/api/streaming/v1/clientconnect/subscribe/TenantUpdates-(?P<rest>.+)")
OUTPUT_TYPES = ("JSON", "XML", "NEWLINE_JSON", "NEWLINE_XML")
MAX_SUBSCRIPTIONS = 3
SESSION_SECONDS = 60 * 60
RETENTION_SECONDS = 2 * 60 * 60
HEARTBEAT_SECONDS = 30.0
"""How often a ``ClientCheck`` is sent; the documents show one but name no interval."""
MIN_HEARTBEAT_SECONDS = 0.05
LEASES_PER_HEARTBEAT = 3
"""A connection's lease lasts this many heartbeats: a dead worker's place is freed after it."""


class TooManySubscriptions(ApiError):
    """429: the tenant has its three subscriptions connected already."""

    status = 429


class SubscriptionInUse(ApiError):
    """409: this subscription id is connected already."""

    status = 409


@dataclass(frozen=True)
class LegacyTimes:
    """The documents' durations, times ``scale``."""

    scale: float = 1.0

    @property
    def session(self) -> float:
        return SESSION_SECONDS * self.scale

    @property
    def retention(self) -> float:
        return RETENTION_SECONDS * self.scale

    @property
    def heartbeat(self) -> float:
        return max(MIN_HEARTBEAT_SECONDS, HEARTBEAT_SECONDS * self.scale)

    @property
    def lease(self) -> float:
        return self.heartbeat * LEASES_PER_HEARTBEAT


@dataclass(frozen=True)
class SubscriptionRequest:
    tenant_id: str
    subscription_id: str
    output_type: str


def record_key(tenant_id: str) -> str:
    return tenant_record_key("legacy-stream", tenant_id)


def open_subscription(
    backend: AgentStatusBackend,
    path: str,
    query: str,
    headers: Mapping[str, str],
    times: LegacyTimes,
    clock: Callable[[], float] = time.time,
) -> Subscription:
    """The handshake judged and the subscription connected: 404 for another path, 400 for
    parameters that do not name the path's tenant and id or an unknown output type, 401 for
    credentials, 409 for an id connected already, 429 beyond three connected."""
    match = SUBSCRIBE_PATH.fullmatch(path)
    if match is None:
        raise RouteNotFound(
            f"No stream at {path}; subscribe at /api/streaming/v1/clientconnect/subscribe/"
            "TenantUpdates-{tenant}-{subscriptionId}."
        )
    params = dict(parse_qsl(query, keep_blank_values=True))
    tenant_id = params.get("tenantId", "")
    subscription_id = params.get("subsId") or params.get("subscriptionId") or ""
    if not tenant_id or not subscription_id or match["rest"] != f"{tenant_id}-{subscription_id}":
        raise InvalidRequest(
            "tenantId and subsId (or subscriptionId) are required and must be the path's: "
            "TenantUpdates-{tenantId}-{subsId}."
        )
    output_type = params.get("desiredOutputType", "JSON")
    if output_type not in OUTPUT_TYPES:
        raise InvalidRequest(
            f"desiredOutputType must be one of {', '.join(OUTPUT_TYPES)}, not {output_type[:40]!r}."
        )
    legacy = headers.get("authorization") or params.get("token")
    basic = None
    if legacy:
        with contextlib.suppress(ApiError):
            basic = basic_credentials(legacy)
    backend.authorize_stream(tenant_id, None, basic)
    request = SubscriptionRequest(tenant_id, subscription_id, output_type)
    subscription = Subscription(backend, request, times, clock)
    subscription.connect()
    return subscription


class Subscription:
    """One connected subscription: every event of the tenant after its position, and a
    heartbeat, until its hour is up or the client leaves."""

    def __init__(
        self,
        backend: AgentStatusBackend,
        request: SubscriptionRequest,
        times: LegacyTimes,
        clock: Callable[[], float],
    ) -> None:
        self.backend = backend
        self.request = request
        self.times = times
        self.clock = clock
        self.cursor = 0
        self.resumed = False

    # -- the shared record -----------------------------------------------------------------

    def connect(self) -> None:
        now = self.clock()
        newest = self.backend.last_event(self.request.tenant_id)

        def join(raw: bytes | None) -> bytes:
            subscriptions = _live(_decoded(raw), now, self.times)
            mine = subscriptions.get(self.request.subscription_id)
            if mine is not None and mine["lease"] is not None:
                raise SubscriptionInUse(
                    f"The subscription {self.request.subscription_id!r} is connected already; "
                    "use a unique subscriptionId for each connection."
                )
            connected = sum(1 for s in subscriptions.values() if s["lease"] is not None)
            if connected >= MAX_SUBSCRIPTIONS:
                raise TooManySubscriptions(
                    f"The tenant has {MAX_SUBSCRIPTIONS} subscriptions connected, the most "
                    "SAPI allows at a time."
                )
            self.resumed = mine is not None
            self.cursor = newest if mine is None else int(mine["cursor"])
            subscriptions[self.request.subscription_id] = {
                "cursor": self.cursor,
                "lease": now + self.times.lease,
                "left": None,
            }
            return orjson.dumps(subscriptions)

        self.backend.update_record(record_key(self.request.tenant_id), join)

    def _save(self, leaving: bool) -> None:
        now = self.clock()

        def save(raw: bytes | None) -> bytes:
            subscriptions = _decoded(raw)
            subscriptions[self.request.subscription_id] = {
                "cursor": self.cursor,
                "lease": None if leaving else now + self.times.lease,
                "left": now if leaving else None,
            }
            return orjson.dumps(subscriptions)

        self.backend.update_record(record_key(self.request.tenant_id), save)

    # -- the connection --------------------------------------------------------------------

    async def run(self, channel: Channel) -> None:
        ends_at = self.clock() + self.times.session
        try:
            await self._stream(channel, ends_at)
        finally:
            self._save(leaving=True)

    async def _stream(self, channel: Channel, ends_at: float) -> None:
        listener = asyncio.create_task(_drain(channel))
        next_heartbeat = self.clock() + self.times.heartbeat
        try:
            while not listener.done():
                await self._send_events(channel)
                now = self.clock()
                if now >= ends_at:
                    return  # the hour is up: the server ends the subscription
                if now >= next_heartbeat:
                    await channel.send(self._render(self._heartbeat(now)))
                    self._save(leaving=False)
                    next_heartbeat = now + self.times.heartbeat
                wait = min(POLL_SECONDS, max(0.0, min(ends_at, next_heartbeat) - now))
                await asyncio.wait({listener}, timeout=wait)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener

    async def _send_events(self, channel: Channel) -> None:
        while True:
            events = self.backend.events_after(self.request.tenant_id, self.cursor, BATCH)
            if not events:
                return
            for event in events:
                await channel.send(self._render(event.payload()))
                self.cursor = event.sequence

    def _heartbeat(self, now: float) -> dict[str, Any]:
        return {
            "ClientCheck": {
                "heartbeat": "[HEARTBEAT]",
                "msgInfo": {
                    "instanceId": INSTANCE_ID,
                    "sequenceId": self.cursor,
                    "timestamp": int(now * 1000),
                },
                "subscription-id": self.request.subscription_id,
                "tenant-id": self.request.tenant_id,
            }
        }

    def _render(self, document: dict[str, Any]) -> str:
        kind = self.request.output_type
        text = to_xml(document) if kind.endswith("XML") else _json(document)
        return text + "\n" if kind.startswith("NEWLINE_") else text


def _json(document: dict[str, Any]) -> str:
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS).decode()


def to_xml(document: Mapping[str, Any]) -> str:
    """An event as XML: one element per field, lists as repeated elements (the documents
    show JSON only; this is the same tree)."""
    return "".join(_element(name, value) for name, value in sorted(document.items()))


def _element(name: str, value: Any) -> str:
    if isinstance(value, Mapping):
        inner = "".join(_element(k, v) for k, v in sorted(value.items()))
    elif isinstance(value, list):
        return "".join(_element(name, item) for item in value)
    elif isinstance(value, bool):
        inner = "true" if value else "false"
    else:
        inner = escape(str(value))
    return f"<{name}>{inner}</{name}>"


def _decoded(raw: bytes | None) -> dict[str, dict[str, Any]]:
    if raw is None:
        return {}
    decoded: dict[str, dict[str, Any]] = orjson.loads(raw)
    return decoded


def _live(
    subscriptions: dict[str, dict[str, Any]], now: float, times: LegacyTimes
) -> dict[str, dict[str, Any]]:
    """Leases run out into departures, and departures older than the retention are
    forgotten (a later connect with that id is a new subscription)."""
    kept: dict[str, dict[str, Any]] = {}
    for subscription_id, entry in subscriptions.items():
        lease, left = entry.get("lease"), entry.get("left")
        if lease is not None and lease < now:
            entry = {**entry, "lease": None, "left": lease}
            left = lease
        if entry["lease"] is None and left is not None and now - left > times.retention:
            continue
        kept[subscription_id] = entry
    return kept


async def _drain(channel: Channel) -> None:
    """What a SAPI client sends is not read by the service; only its leaving matters."""
    while await channel.receive() is not None:
        pass
