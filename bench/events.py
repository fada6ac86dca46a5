"""Events to subscribers: how many status changes per second reach each of ``SUBSCRIBERS``
readers of the Event Streaming service, and how long after the change (its ``msgInfo``
timestamp) each one arrives. Writers change statuses as fast as the API takes them, on
keep-alive connections, for ``SECONDS``; ``python -m bench.events`` runs it alone."""

from __future__ import annotations

import asyncio
import base64
import json
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import websockets

SUBSCRIBERS = 10
SECONDS = 3.0
QUEUE = 100_000
"""Readers ask for a queue this large and acknowledge nothing: an acknowledgement per message
would measure the client more than the server (both share this machine)."""
SAMPLE_EVERY = 10
DRAIN_SECONDS = 5.0
"""How long a reader may still wait for the last events once the writers stopped."""
TENANT = "acmecorp01"
AUTH = ("myclientId", "nevertellanyone")
KEY = {"X-API-Key": "nevertellanyone"}
AGENTS = ("agys64KT2rumOT-zNtTKjCSF", "agoXkv2frcyHlm76KlqTiOek", "agrUjDeOCLTPioS3uuGXt3im")
"""Agents at 4 in the demo fixture: one writer each turns it between 4 and 5."""


def _writer(base: str, agent: str, stop: threading.Event, count: list[int]) -> None:
    url = f"{base}/api/v1/tenants/{TENANT}/agentstatus/agents/{agent}"
    status = 4
    with requests.Session() as session:
        session.auth = AUTH
        while not stop.is_set():
            status = 9 - status
            if session.put(url, json={"agent-status": status}, timeout=10).status_code == 200:
                count[0] += 1


@dataclass
class Run:
    """What the readers share: how many connected, and (once the writers stopped) how many
    changes there were to receive."""

    connected: int = 0
    changes: int | None = None
    delays: list[float] = field(default_factory=list)


async def _reader(url: str, run: Run) -> int:
    received = 0
    async with websockets.connect(url, extra_headers=KEY, max_queue=None) as socket:
        run.connected += 1
        deadline: float | None = None
        while run.changes is None or received < run.changes:
            if run.changes is not None and deadline is None:
                deadline = time.monotonic() + DRAIN_SECONDS
            timeout = 0.5 if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                raw = await asyncio.wait_for(socket.recv(), timeout)
            except TimeoutError:
                if deadline is not None:
                    return received
                continue
            arrived_ms = time.time() * 1000
            received += 1
            if received % SAMPLE_EVERY == 0:  # decoding every message would slow the reader
                body = json.loads(base64.b64decode(json.loads(raw)["payload"]))
                stamp = body["AgentStatusChange"]["msgInfo"]["timestamp"]
                run.delays.append(arrived_ms - stamp)
    return received


async def _run(base: str) -> dict[str, Any]:
    url = base.replace("http://", "ws://") + (
        f"/ws/v2/reader/persistent/{TENANT}/event-v1/all?receiverQueueSize={QUEUE}"
    )
    run = Run()
    readers = [asyncio.create_task(_reader(url, run)) for _ in range(SUBSCRIBERS)]
    while run.connected < SUBSCRIBERS:
        await asyncio.sleep(0.01)
    stop = threading.Event()
    counts = [[0] for _ in AGENTS]
    threads = [
        threading.Thread(target=_writer, args=(base, agent, stop, count))
        for agent, count in zip(AGENTS, counts, strict=True)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    await asyncio.sleep(SECONDS)
    stop.set()
    for thread in threads:
        await asyncio.to_thread(thread.join)
    elapsed = time.monotonic() - started
    changes = sum(count[0] for count in counts)
    run.changes = changes
    received = await asyncio.gather(*readers)
    ordered = sorted(run.delays)
    return {
        "subscribers": SUBSCRIBERS,
        "changes": changes,
        "changes_per_second": round(changes / elapsed, 1),
        "events_per_second_per_subscriber": round(min(received) / elapsed, 1),
        "events_per_second_to_all": round(sum(received) / elapsed, 1),
        "lost": sum(changes - got for got in received),
        "delay_ms_p50": round(statistics.median(ordered), 2) if ordered else None,
        "delay_ms_p99": round(ordered[max(0, int(len(ordered) * 0.99) - 1)], 2)
        if ordered
        else None,
    }


def measure(base: str) -> dict[str, Any]:
    """The fan-out of one running emulator at ``base`` (``http://127.0.0.1:PORT``)."""
    return asyncio.run(_run(base))


def main() -> int:
    from bench.run import started

    with started(
        [str(Path(sys.executable).parent / "agentstatus-mock"), "serve", "--port", "0", "--quiet"],
        "Agent Status API emulator on",
    ) as port:
        print(json.dumps(measure(f"http://127.0.0.1:{port}"), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
