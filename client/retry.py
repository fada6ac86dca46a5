"""When a failed call is tried again, how long the client waits, and when it gives up.

Transient failures are a refused or broken connection, a timeout, 429 and 500/502/503/504.
Whether one may be repeated depends on the call (``Replay``):

* Reads (list, get) are repeated after any transient failure.
* A single set is a PUT of an absolute state: sending it twice leaves the agent exactly as
  sending it once, and the rules allow 3/4/5 -> same status, so a set to ON_BREAK,
  WAIT_TRANSACT or WORK_OFFLINE is repeated after any transient failure.
  A set to LOGGED_OUT is not idempotent in its *answer*: once applied, the repeat is refused
  (1 -> 1) and would hide the success, so it is repeated only when the failure proves the
  first attempt was not processed.
* A bulk set is repeated only when the failure proves it was not processed: its entries are
  applied one by one, so a 500, a timeout or a reset may come after some were applied; a
  chunk may hold several changes for one agent, and its 207 body is the only record of what
  happened. Repeating it blindly could re-apply, reorder or misreport entries.

"Proof of not processed" is: the connection was never established (refused, DNS, connect
timeout), or the server answered 429 (rate limiting happens before the request is handled)
or 503 (RFC 9110: the server is currently unable to handle the request).

Delays use exponential backoff with full jitter (``random() * min(max_delay, base * 2**n)``);
a ``Retry-After`` header (seconds or an HTTP date) replaces it, since waiting less than the
server asked is pointless. Retrying stops after ``max_attempts`` attempts, or as soon as the
next wait would take the call past ``max_elapsed`` seconds: then the last error is raised
(a ``RateLimitedError`` keeps ``retry_after`` so the caller can decide to wait longer).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum

UNPROCESSED_STATUSES = frozenset({429, 503})
"""Statuses that prove the request was not processed."""
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


class Replay(Enum):
    """How safe it is to send a request again after a transient failure."""

    SAFE = "safe"
    """Repeating cannot change the outcome: reads and idempotent writes."""
    IF_UNPROCESSED = "if-unprocessed"
    """Only when the failure proves the first attempt was not processed."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds and timing of retries. ``sleep``, ``clock`` and ``random`` are for tests."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_elapsed: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    random: Callable[[], float] = field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(self.base_delay, self.max_delay, self.max_elapsed) < 0:
            raise ValueError("delays must not be negative")

    def delay(self, retry_number: int, retry_after: float | None) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry)."""
        if retry_after is not None:
            return retry_after
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (retry_number - 1))
        return self.random() * ceiling


NO_RETRY = RetryPolicy(max_attempts=1)


def may_retry_status(status: int, replay: Replay) -> bool:
    if replay is Replay.SAFE:
        return status in TRANSIENT_STATUSES
    return status in UNPROCESSED_STATUSES


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP date)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, OverflowError):  # a year no datetime holds is no date
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
