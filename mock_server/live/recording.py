"""Recordings of live exchanges: the JSON Lines file ``agentstatus-mock proxy`` writes.

One line per exchange, close to an entry of ``GET /__admin/requests``: ``method``, ``path``,
``query`` (the raw query string, so a replay sends the same one), ``request`` and ``response``
(``headers``; ``body``, parsed when it is JSON, which ``json`` says so that a JSON string and
a text body cannot be confused; else text or null), ``status``, ``duration-ms`` and ``time``.
An exchange the upstream never answered has ``response`` and ``status`` null and an ``error``.

Credentials never reach the file: headers are masked as the journal masks them, and every
string is scrubbed of the request's own secrets (the token, its base64 and the header value)
in case the upstream echoed them somewhere else.

``agentstatus-mock validate-recording FILE`` judges every answered exchange as the contract
kit judges a live tenant, with the same validator: against the vendor contract
(``schemas/vendor-openapi.yaml``), whose breach is a failure, and, for an exchange that keeps
it, against the emulator's promise (the document the emulator serves in ``--profile``), where a
difference is listed with the profiles that answer the same, not failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from mock_server.core.errors import AuthenticationFailed
from mock_server.core.profiles import DEFAULT, PROFILES
from mock_server.http.auth import basic_credentials
from mock_server.live.judge import ContractJudge
from mock_server.testdouble.journal import (
    MASK,
    header_value,
    mask_header,
    masked_headers,
)
from schemas.contract import is_json_media_type, media_type_of
from schemas.wire import API_BASE

MIN_SCRUBBED_SECRET = 4
"""Shorter secrets are not searched for in bodies: replacing them would garble every text."""
DIFFERENCE = "differs from the emulator's promise (not a failure): "


class RecordingError(Exception):
    """The recording file cannot be read; the message names the line."""


def secrets_of(headers: Iterable[tuple[str, str]]) -> list[str]:
    """What must never be written: each secret header's value (by its name or what it holds),
    its credentials, a Basic token, and each of them as a URL would carry it."""
    found: list[str] = []
    for name, value in headers:
        if mask_header(name, value) == value:
            continue
        scheme, _, credentials = value.strip().partition(" ")
        found.append(value.strip())
        found.append(credentials.strip())
        if scheme.lower() == "basic":
            with contextlib.suppress(AuthenticationFailed):  # not username:token in base64
                found.append(basic_credentials(value)[1])
    # As they would travel in a URL too (base64's = and + and / percent-encoded).
    found += [quote(secret, safe="") for secret in found]
    found += [quote_plus(secret) for secret in found]
    return sorted(
        {secret for secret in found if len(secret) >= MIN_SCRUBBED_SECRET}, key=len, reverse=True
    )


def scrub(value: Any, secrets: Iterable[str]) -> Any:
    """``value`` with every secret replaced by ``***``, in every string it holds."""
    chosen = list(secrets)
    if not chosen:
        return value
    if isinstance(value, str):
        for secret in chosen:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, list):
        return [scrub(item, chosen) for item in value]
    if isinstance(value, dict):
        return {scrub(key, chosen): scrub(item, chosen) for key, item in value.items()}
    return value


def masked(headers: Iterable[tuple[str, str]], secrets: Iterable[str]) -> dict[str, str]:
    """Headers as recorded: secret headers keep their scheme only, the rest are scrubbed."""
    return scrub(dict(masked_headers(headers)), secrets)  # type: ignore[no-any-return]


class RecordingWriter:
    """Appends exchanges to a JSON Lines file, one whole line per exchange, from any thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.touch()

    def append(self, exchange: Mapping[str, Any]) -> None:
        line = json.dumps(exchange, ensure_ascii=False) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as file:
            file.write(line)


def read_recording(path: Path) -> list[dict[str, Any]]:
    """Every exchange of a recording, in order."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise RecordingError(f"cannot read {path}: {error}") from None
    exchanges = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            exchange = json.loads(line)
        except ValueError as error:
            raise RecordingError(f"{path}:{number}: not JSON: {error}") from None
        if not (
            isinstance(exchange, dict)
            and isinstance(exchange.get("method"), str)
            and isinstance(exchange.get("path"), str)
        ):
            raise RecordingError(f"{path}:{number}: not an exchange (method and path needed)")
        exchanges.append(exchange)
    return exchanges


@dataclass(frozen=True)
class Message:
    """A request or response as the wire carried it, rebuilt from its recorded form."""

    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return header_value(self.headers.items(), name)

    @property
    def content_type(self) -> str | None:
        return self.header("content-type")

    @property
    def media_type(self) -> str:
        """``application/json``, lower case, without parameters; empty when not given."""
        return media_type_of(self.content_type)

    @classmethod
    def of(cls, recorded: Mapping[str, Any] | None) -> Message:
        """JSON bodies come back re-serialised: the same value, perhaps other whitespace."""
        if not recorded:
            return cls({}, b"")
        headers = {str(name): str(value) for name, value in dict(recorded["headers"]).items()}
        body = recorded.get("body")
        if recorded.get("json"):
            return cls(headers, json.dumps(body).encode("utf-8"))
        return cls(headers, b"" if body is None else str(body).encode("utf-8"))


def recorded_message(headers: dict[str, str], raw: bytes) -> dict[str, Any]:
    """A request or response as the file keeps it: a JSON body parsed (``json`` true), any
    other body as text, no body as null."""
    content_type = header_value(headers.items(), "content-type")
    if raw and is_json_media_type(media_type_of(content_type)):
        try:
            return {"headers": headers, "body": json.loads(raw), "json": True}
        except ValueError:
            pass
    text = raw.decode("utf-8", errors="replace") if raw else None
    return {"headers": headers, "body": text, "json": False}


@dataclass(frozen=True)
class RecordedAnswer:
    """An answered exchange of a recording, as ``ContractJudge`` judges it."""

    method: str
    path: str
    status: int
    body: bytes
    headers: Mapping[str, str]

    @classmethod
    def of(cls, exchange: Mapping[str, Any]) -> RecordedAnswer:
        response = Message.of(exchange["response"])
        path = str(exchange["path"]).removeprefix(API_BASE)
        return cls(
            str(exchange["method"]), path, int(exchange["status"]), response.body, response.headers
        )


def answered(exchanges: Iterable[dict[str, Any]]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The exchanges the upstream answered, numbered from 1 as in the file."""
    for number, exchange in enumerate(exchanges, start=1):
        if exchange.get("response") is not None and isinstance(exchange.get("status"), int):
            yield number, exchange


def run_validate(args: argparse.Namespace) -> int:
    """The ``validate-recording`` command: one line per breach of the vendor contract, one per
    difference from the emulator's promise (marked as not a failure), then a summary. Exit 1
    when an exchange breaks the vendor contract, whatever the differences."""
    try:
        exchanges = read_recording(Path(args.recording))
    except RecordingError as error:
        print(f"agentstatus-mock validate-recording: {error}", file=sys.stderr)
        return 2
    contract = ContractJudge(args.profile)
    checked = broken = differing = 0
    for number, exchange in answered(exchanges):
        checked += 1
        answer = RecordedAnswer.of(exchange)
        judgement = contract.judge(answer)
        where = f"#{number} {exchange['method']} {exchange['path']}: "
        if judgement.breaches:
            broken += 1
            for problem in judgement.breaches:
                print(where + problem)
            continue
        differing += bool(judgement.differences)
        for difference in judgement.differences:
            print(where + DIFFERENCE + difference)
        matching = contract.matching_profiles(answer) if judgement.differences else []
        if matching:
            names = ", ".join(matching)
            profiles = "profiles answer" if len(matching) > 1 else "profile answers"
            print(f"{where}the emulator's {names} {profiles} the same")
    skipped = len(exchanges) - checked
    print(
        f"{checked} exchanges checked against the vendor contract ({skipped} unanswered "
        f"skipped): {broken} break it; {differing} differ from the emulator's promise "
        f"(profile {contract.profile}), not a failure."
    )
    return 1 if broken else 0


def add_validate_command(commands: Any) -> None:
    """Register ``validate-recording`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "validate-recording",
        help="check every exchange of a proxy recording against the vendor contract "
        "(schemas/vendor-openapi.yaml) and list where it differs from the emulator's promise",
    )
    parser.add_argument("recording", help="the JSON Lines file `proxy --record` wrote")
    parser.add_argument(
        "--profile",
        default=DEFAULT.name,
        choices=sorted(PROFILES),
        help="whose promise the differences are listed against (default: default)",
    )
    parser.set_defaults(handler=run_validate)
