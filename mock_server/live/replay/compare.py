"""What differs between a recorded answer and the emulator's, on what the emulator promises
to get right: the status, the media type, the headers that matter, the body's shape, and,
for information only, its reasons once the words that belong to one tenant are normalised."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mock_server.live.recording import Message
from mock_server.live.replay.shapes import Shape, body_shape

COMPARED_HEADERS = ("WWW-Authenticate", "Allow", "Retry-After")
AUTOMATIC_METHODS = frozenset({"HEAD", "OPTIONS"})
_URN = re.compile(r"urn:uuid:[0-9a-fA-F-]{32,36}")
_UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\b"
)
_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)
_AGENT_ID = re.compile(r"(?<![\w-])ag[A-Za-z0-9_-]{16,}(?![\w-])")


@dataclass(frozen=True)
class Difference:
    """One way the emulator answered differently from the recording."""

    kind: str
    """``status``, ``content-type``, ``header``, ``body-type``, ``body-keys`` or ``reason``."""
    where: str | None
    recorded: Any
    emulator: Any
    informational: bool = False

    def describe(self) -> str:
        if self.kind == "body-keys":
            text = (
                f"body {self.where}: keys only in the recording: {_listed(self.recorded)}; "
                f"only from the emulator: {_listed(self.emulator)}"
            )
        else:
            label = {"content-type": "content type", "body-type": "body"}.get(self.kind, self.kind)
            where = "" if self.where is None else f" {self.where}"
            quoted = self.kind in ("header", "reason")
            shown = (
                f"recorded {_shown(self.recorded, quoted)}, "
                f"emulator {_shown(self.emulator, quoted)}"
            )
            text = f"{label}{where}: {shown}"
        return f"(info) {text}" if self.informational else text


def _listed(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "-"


def _shown(value: Any, quoted: bool) -> str:
    """Values that are text from the wire are quoted; names of types and statuses are not."""
    if value is None:
        return "(none)"
    return json.dumps(value) if quoted else str(value)


def shape_differences(recorded: Shape, emulator: Shape, where: str = "$") -> list[Difference]:
    """Type and key-set differences, recursively; an empty array matches any array."""
    if recorded.types != emulator.types:
        return [Difference("body-type", where, recorded.describe(), emulator.describe())]
    found = []
    if "object" in recorded.types:
        only_recorded = sorted(set(recorded.keys) - set(emulator.keys))
        only_emulator = sorted(set(emulator.keys) - set(recorded.keys))
        if only_recorded or only_emulator:
            found.append(Difference("body-keys", where, only_recorded, only_emulator))
        for key in sorted(set(recorded.keys) & set(emulator.keys)):
            found += shape_differences(recorded.keys[key], emulator.keys[key], f"{where}.{key}")
    if recorded.items is not None and emulator.items is not None:
        found += shape_differences(recorded.items, emulator.items, f"{where}[]")
    return found


class Normaliser:
    """Turns tenant-specific words of a reason into placeholders, so reasons compare."""

    def __init__(self, tenants: Iterable[str], agents: Iterable[str], names: Iterable[str]) -> None:
        self._words = [
            (_any_word(agents), "<agent>"),
            (_any_word(tenants), "<tenant>"),
            (_any_word(names), "<name>"),
        ]

    def __call__(self, text: str) -> str:
        text = _URN.sub("urn:uuid:<id>", text)
        text = _UUID.sub("<id>", text)
        text = _DATE.sub("<date>", text)
        for pattern, placeholder in self._words:
            if pattern is not None:
                text = pattern.sub(placeholder, text)
        return _AGENT_ID.sub("<agent>", text)


def _any_word(words: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern for all the words, longest first, matched only as whole words."""
    chosen = sorted({word for word in words if word}, key=len, reverse=True)
    if not chosen:
        return None
    return re.compile(r"(?<![\w-])(?:" + "|".join(map(re.escape, chosen)) + r")(?![\w-])")


def reasons(value: Any, text: str | None) -> dict[str, str]:
    """The human-readable reasons of an answer, by where they sit."""
    found = {}
    if isinstance(value, dict):
        for key in ("detail", "reason"):
            if isinstance(value.get(key), str):
                found[f"$.{key}"] = value[key]
        data = value.get("data")
        if isinstance(data, list):
            for index, entry in enumerate(data):
                if isinstance(entry, dict) and isinstance(entry.get("reason"), str):
                    found[f"$.data[{index}].reason"] = entry["reason"]
    elif text:
        found["text"] = text
    return found


def _compared_header(name: str, value: str | None, normalise: Callable[[str], str]) -> Any:
    if value is None:
        return None
    if name == "Allow":
        methods = {part.strip().upper() for part in value.split(",") if part.strip()}
        return ", ".join(sorted(methods - AUTOMATIC_METHODS))
    if name == "Retry-After":
        return "present"
    return normalise(value)


def compare(
    recorded_status: int,
    recorded: Message,
    emulator_status: int,
    emulator: Message,
    normalise: Callable[[str], str],
) -> list[Difference]:
    """Every difference between a recorded answer and the emulator's, worst first."""
    found = []
    if recorded_status != emulator_status:
        found.append(Difference("status", None, recorded_status, emulator_status))
    if recorded.body and emulator.body and recorded.media_type != emulator.media_type:
        found.append(Difference("content-type", None, recorded.media_type, emulator.media_type))
    for name in COMPARED_HEADERS:
        mine = _compared_header(name, recorded.header(name), normalise)
        theirs = _compared_header(name, emulator.header(name), normalise)
        if mine != theirs:
            found.append(Difference("header", name, mine, theirs))
    recorded_shape, recorded_value = body_shape(recorded)
    emulator_shape, emulator_value = body_shape(emulator)
    found += shape_differences(recorded_shape, emulator_shape)
    recorded_reasons = reasons(recorded_value, recorded.body.decode("utf-8", "replace"))
    emulator_reasons = reasons(emulator_value, emulator.body.decode("utf-8", "replace"))
    for where in sorted(set(recorded_reasons) & set(emulator_reasons)):
        mine, theirs = normalise(recorded_reasons[where]), normalise(emulator_reasons[where])
        if mine != theirs:
            found.append(Difference("reason", where, mine, theirs, informational=True))
    return found
