"""Which event stream a WebSocket asks for: the current Event Streaming service (Pulsar's
reader, ``http.event_stream``) or the legacy Streaming API (``http.legacy_stream``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from mock_server.core.backend import AgentStatusBackend
from mock_server.http.event_stream import Channel, Reader, open_reader
from mock_server.http.legacy_stream import LEGACY_ROOT, LegacyTimes, open_subscription


class Session(Protocol):
    """A stream accepted: it talks over the channel until either side ends it."""

    async def run(self, channel: Channel) -> None: ...


def open_stream(
    backend: AgentStatusBackend,
    path: str,
    query: str,
    headers: Mapping[str, str],
    legacy_times: LegacyTimes,
) -> Session:
    """The session a handshake asks for, or the ``ApiError`` whose status refuses it.
    ``headers`` have lowercase names."""
    if path.startswith(LEGACY_ROOT):
        return open_subscription(backend, path, query, headers, legacy_times)
    return Reader(backend, open_reader(backend, path, query, headers))
