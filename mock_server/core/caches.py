"""Values derived from the state, kept for as long as the store's revision stays the same."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

CACHED_ENTRIES = 50_000
"""At most this many values (agent bodies, lists, usernames) per cache and revision."""
Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


class RevisionCache(Generic[Key, Value]):
    """A cache emptied by every newer revision, so nothing in it is older than the state it is
    asked about. A value must be computed from a read that began after its revision was read.

    No lock: the (revision, values) pair is replaced whole, and a value computed against an
    older revision than the one held is dropped. ``max_entries`` bounds what unknown keys
    (say, made-up usernames) can make it hold. A revision of None (the store cannot vouch for
    one right now) finds nothing and keeps nothing.
    """

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._current: tuple[int, dict[Key, Value]] = (-1, {})

    def get(self, revision: int | None, key: Key) -> Value | None:
        cached_revision, values = self._current
        return values.get(key) if cached_revision == revision else None

    def put(self, revision: int | None, key: Key, value: Value) -> None:
        cached_revision, values = self._current
        if revision is None or revision < cached_revision:
            return
        if revision > cached_revision:
            values = {}
            self._current = (revision, values)
        if len(values) < self._max_entries:
            values[key] = value
