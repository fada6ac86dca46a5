"""The vendor's Event Streaming service: Pulsar's WebSocket reader over a tenant's events.

``wss://HOST/ws/v2/reader/persistent/{tenant}/{namespace}/{topic}``, as the vendor's
``connection.md`` describes it: topic ``event-v1/all``, ``event-v1/{eventType}`` or
``agent-v1/{agentId}``; the key as an ``X-API-Key`` header (any case) or ``?x-api-key=`` (the
tenant's action token, or the "CC token" form, base64 of ``username:token``), or the legacy
``Authorization: Basic`` header or ``?token=Basic+...``; ``messageId=latest`` (the default),
``earliest`` or the id of a message already read, to resume after it; ``receiverQueueSize``
messages in flight until the reader acknowledges them (``{"messageId": ...}``), as the
vendor's client does. Each message is the Pulsar WebSocket format (``messageId``, base64
``payload``, ``properties``, ``publishTime``, ``redeliveryCount``).

No server here: ``open_reader`` judges the handshake (a refusal is an ``ApiError`` whose status
the server answers instead of upgrading), and ``Reader.run`` talks over any ``Channel``.
Events come from the store's log (``core.events``), so every worker's readers see the same
events in the same order; this process's writes wake its readers at once, other workers'
are found by polling.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl

import orjson

from mock_server.core.backend import AgentStatusBackend
from mock_server.core.entities import Event
from mock_server.core.errors import ApiError, InvalidRequest, RouteNotFound
from mock_server.core.events import PROVISIONING_CHANGE, STATUS_CHANGE, event_type
from mock_server.http.auth import basic_credentials

STREAMS_EXTENSION = "agentstatus.streams"
STREAM_ROOT = "/ws/"
READER_PATH = re.compile(
    r"/ws/v2/reader/persistent/(?P<tenant>[^/]+)/(?P<namespace>[^/]+)/(?P<topic>[^/]+)"
)
EVENT_NAMESPACE = "event-v1"
AGENT_NAMESPACE = "agent-v1"
ALL_EVENTS = "all"
DOCUMENTED_EVENT_TYPES = frozenset(
    {
        STATUS_CHANGE,
        PROVISIONING_CHANGE,
        "AgentSkillCreated",
        "AgentSkillChanged",
        "InteractionCreated",
        "InteractionQueued",
        "InteractionAssigned",
        "InteractionAccepted",
        "InteractionCustomerAccepted",
        "InteractionRejected",
        "InteractionUnqueued",
        "LineHoldStatus",
        "LineMuteStatus",
        "InteractionRecordingStarted",
        "RecordingStatus",
        "InteractionPostProcess",
        "InteractionRecordingReady",
        "InteractionEndPostProcess",
        "InteractionDeassigned",
        "InteractionTransferRequest",
        "InteractionReconnect",
        "InteractionParticipantChange",
        "InteractionParticipantRemovedByHost",
        "InteractionJoinLinesRequest",
        "InteractionJoined",
        "InteractionChanged",
        "InteractionQueueTimeout",
        "InteractionDeleted",
    }
)
"""The event types the vendor's event reference names; each is a topic of ``event-v1``."""
DEFAULT_QUEUE_SIZE = 1000
MAX_QUEUE_SIZE = 100_000
BATCH = 256
"""Events read from the store at a time."""
POLL_SECONDS = 0.02
"""How often a reader over a state other processes write looks for their events."""
LEDGER = 1
"""The ledger id in every message id: the entry id is the event's number."""


class Channel(Protocol):
    """A WebSocket as a reader needs it: text to send, and what the client sends (None once
    it closed)."""

    async def send(self, text: str) -> None: ...

    async def receive(self) -> str | bytes | None: ...


def message_id(sequence: int) -> str:
    """Pulsar's id of a message: base64 of its ``MessageIdData`` (ledger 1, entry ``sequence``),
    ``CAEQAQ==`` for the first, as in the vendor's samples."""
    return base64.b64encode(b"\x08" + _varint(LEDGER) + b"\x10" + _varint(sequence)).decode()


def sequence_of(text: str) -> int:
    """The event number of a message id this service gave; ValueError for anything else."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    fields: dict[int, int] = {}
    position = 0
    while position < len(raw):
        key, position = _read_varint(raw, position)
        if key & 7 != 0:
            raise ValueError("not a message id")
        fields[key >> 3], position = _read_varint(raw, position)
    if 2 not in fields:
        raise ValueError("no entry id")
    return fields[2]


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        out.append(low | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _read_varint(raw: bytes, position: int) -> tuple[int, int]:
    number, shift = 0, 0
    while position < len(raw) and shift < 64:
        byte = raw[position]
        position += 1
        number |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return number, position
        shift += 7
    raise ValueError("truncated varint")


def publish_time(event: Event) -> str:
    """ISO 8601 in UTC with milliseconds, as the vendor's ``publishTime``."""
    published = datetime.datetime.fromtimestamp(event.published_ms / 1000, datetime.UTC)
    return published.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pulsar_message(event: Event) -> str:
    """The Pulsar WebSocket message carrying one event."""
    payload = orjson.dumps(event.payload(), option=orjson.OPT_SORT_KEYS)
    return orjson.dumps(
        {
            "messageId": message_id(event.sequence),
            "payload": base64.b64encode(payload).decode(),
            "properties": {},
            "publishTime": publish_time(event),
            "redeliveryCount": 0,
        }
    ).decode()


@dataclass(frozen=True)
class ReaderRequest:
    """A handshake accepted: whose events, which of them, and from where."""

    tenant_id: str
    namespace: str
    topic: str
    start_after: int | None
    """The event number to start after; None for ``latest`` (after the newest now)."""
    queue_size: int

    def wants(self, event: Event) -> bool:
        if self.namespace == AGENT_NAMESPACE:
            return event.agent_id == self.topic
        return self.topic == ALL_EVENTS or event_type(event) == self.topic


def open_reader(
    backend: AgentStatusBackend, path: str, query: str, headers: Mapping[str, str]
) -> ReaderRequest:
    """The handshake judged: 404 for a path with no topic, 401 for a missing or wrong key,
    400 for a bad ``messageId`` or ``receiverQueueSize``. ``headers`` have lowercase names."""
    match = READER_PATH.fullmatch(path)
    if match is None:
        raise RouteNotFound(
            f"No event stream at {path}; readers connect to "
            "/ws/v2/reader/persistent/{tenant}/event-v1/all."
        )
    tenant_id, namespace, topic = match["tenant"], match["namespace"], match["topic"]
    params = dict(parse_qsl(query, keep_blank_values=True))
    key = headers.get("x-api-key") or params.get("x-api-key")
    legacy = headers.get("authorization") or params.get("token")
    basic = None
    if legacy:
        try:
            basic = basic_credentials(legacy)
        except ApiError:
            basic = None
    backend.authorize_stream(tenant_id, key, basic)
    if not (
        (namespace == EVENT_NAMESPACE and (topic == ALL_EVENTS or topic in DOCUMENTED_EVENT_TYPES))
        or namespace == AGENT_NAMESPACE
    ):
        raise RouteNotFound(
            f"No topic persistent/{tenant_id}/{namespace}/{topic}: the topics are event-v1/all, "
            "event-v1/<event type> and agent-v1/<agent id>."
        )
    return reader_request(tenant_id, namespace, topic, params)


def reader_request(
    tenant_id: str, namespace: str, topic: str, params: Mapping[str, str]
) -> ReaderRequest:
    """A topic read from where ``messageId`` says, ``receiverQueueSize`` at a time; 400 for
    either malformed."""
    return ReaderRequest(
        tenant_id,
        namespace,
        topic,
        _start(params.get("messageId", "latest")),
        _queue_size(params.get("receiverQueueSize")),
    )


def _start(position: str) -> int | None:
    if position == "latest":
        return None
    if position == "earliest":
        return 0
    try:
        return sequence_of(position)
    except ValueError:
        raise InvalidRequest(
            f"messageId must be earliest, latest or the id of a message read before, not "
            f"{position[:60]!r} (URL-encode it: ids hold '+', '/' and '=')."
        ) from None


def _queue_size(text: str | None) -> int:
    if text is None:
        return DEFAULT_QUEUE_SIZE
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= MAX_QUEUE_SIZE:
        raise InvalidRequest(
            f"receiverQueueSize must be an integer from 1 to {MAX_QUEUE_SIZE}, not {text[:20]!r}."
        )
    return int(text)


class Reader:
    """One connected reader: sends its topic's events in order, at most ``queue_size`` not
    yet acknowledged, and answers the client's acknowledgements and control messages."""

    def __init__(self, backend: AgentStatusBackend, request: ReaderRequest) -> None:
        self.backend = backend
        self.request = request
        self.cursor = (
            backend.last_event(request.tenant_id)
            if request.start_after is None
            else request.start_after
        )
        self.in_flight = 0
        self._wake = asyncio.Event()

    async def run(self, channel: Channel) -> None:
        loop = asyncio.get_running_loop()

        loop_thread = threading.get_ident()

        def wake() -> None:  # called by whichever thread committed the write
            if threading.get_ident() == loop_thread:  # the API runs on the loop: no wake-up
                self._wake.set()
            else:
                loop.call_soon_threadsafe(self._wake.set)

        stop_listening = self.backend.event_signal.listen(wake)
        listener = asyncio.create_task(self._listen(channel))
        try:
            while not listener.done():
                await self._send_pending(channel)
                await self._wait(listener)
        finally:
            stop_listening()
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener

    async def _wait(self, listener: asyncio.Task[None]) -> None:
        """Until new events may be there, an acknowledgement came, or the client left."""
        timeout = POLL_SECONDS if self.backend.shared_state else None
        waiter = asyncio.create_task(self._wake.wait())
        try:
            await asyncio.wait(
                {waiter, listener}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()
        self._wake.clear()

    async def _send_pending(self, channel: Channel) -> None:
        while self.in_flight < self.request.queue_size:
            room = self.request.queue_size - self.in_flight
            events = self.backend.events_after(
                self.request.tenant_id, self.cursor, min(BATCH, room)
            )
            if not events:
                return
            for event in events:
                self.cursor = event.sequence
                if self.request.wants(event):
                    await channel.send(pulsar_message(event))
                    self.in_flight += 1

    async def _listen(self, channel: Channel) -> None:
        """The client's messages: an acknowledgement frees room for one more message;
        ``{"type": "isEndOfTopic"}`` is answered (a tenant's topic never ends); anything
        else is ignored, as Pulsar's reader ignores what it does not know."""
        while True:
            received = await channel.receive()
            if received is None:
                return
            try:
                message = orjson.loads(received)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(message, dict):
                continue
            if message.get("type") == "isEndOfTopic":
                await channel.send('{"endOfTopic":false}')
            elif isinstance(message.get("messageId"), str) and self.in_flight > 0:
                self.in_flight -= 1
                self._wake.set()
