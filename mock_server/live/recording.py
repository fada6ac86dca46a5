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

A recording is read one line at a time, never whole: a line may hold at most
``MAX_LINE_BYTES`` and nest at most ``MAX_DEPTH`` levels (the proxy writes a body nested deeper
as text), so no check that recurses meets a deeper value. ``validate-recording`` streams a
file of any size; ``diff`` holds every exchange at once, so it reads at most
``MAX_RECORDING_BYTES``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from mock_server.core.errors import AuthenticationFailed
from mock_server.core.fixtures import nesting_path
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
MIB = 1024 * 1024
MAX_LINE_BYTES = 16 * MIB
"""The longest line read: one exchange with both bodies (a list of 10,000 agents is 2 MB)."""
MAX_RECORDING_BYTES = 256 * MIB
"""The largest recording ``diff`` reads: it holds every exchange at once, parsed."""
MAX_DEPTH = 32
"""How deep a line may nest; an answer's body sits two levels down (``response``, ``body``)."""
MAX_BODY_DEPTH = MAX_DEPTH - 2
MESSAGES = ("request", "response")
METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}")
"""An HTTP method: a token (RFC 9110, 5.6.2), of a sensible length."""


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
    """Appends exchanges to a JSON Lines file, one whole line per exchange, from any thread.

    A write that fails (a full disk, a file that became a directory) stops the recording:
    ``report`` gets one line saying so, and later exchanges are not written. A line written
    in part is cut off again, so the file keeps whole lines only."""

    def __init__(self, path: Path, report: Callable[[str], None]) -> None:
        self.path = path
        self.report = report
        self.stopped = False
        self._lock = threading.Lock()
        os.close(self._open())  # a file that cannot be opened is refused before any exchange

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)

    def append(self, exchange: Mapping[str, Any]) -> None:
        # A lone surrogate (JSON allows "\ud800") is written back as that escape.
        text = json.dumps(exchange, ensure_ascii=False) + "\n"
        line = memoryview(text.encode("utf-8", errors="backslashreplace"))
        with self._lock:
            if self.stopped:
                return
            try:
                self._write(line)
            except OSError as error:
                self.stopped = True
                self.report(
                    f"cannot write to {self.path}: {os_reason(error)}; the recording stopped "
                    "(answers are still relayed, but not recorded)."
                )

    def _write(self, line: memoryview) -> None:
        descriptor = self._open()
        try:
            start = os.lseek(descriptor, 0, os.SEEK_END)
            try:
                while line:
                    line = line[os.write(descriptor, line) :]
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(descriptor, start)
                raise
        finally:
            os.close(descriptor)


def shown_path(path: str) -> str:
    """A recorded path as a report prints it: anything unprintable escaped, so that a path
    (decoded from ``%0A``, say) cannot break or forge a line."""
    return path if path.isprintable() else path.encode("unicode_escape").decode("ascii")


def os_reason(error: OSError) -> str:
    """An OS error in a few words (``no such file or directory``), without Python's errno
    number and the path it repeats."""
    reason = error.strerror or type(error).__name__
    return reason[:1].lower() + reason[1:]


def iter_recording(path: Path, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Each exchange of a recording, in order, read one line at a time; ``RecordingError``
    names the line of the first one that is not an exchange, or the file when it holds more
    than ``limit`` bytes."""
    try:
        file = path.open("rb")
        size = os.fstat(file.fileno()).st_size
    except OSError as error:
        raise RecordingError(f"cannot read {path}: {os_reason(error)}.") from None
    with file:
        if limit is not None and size > limit:
            raise RecordingError(_too_large(path, limit))
        read = 0
        for number in itertools.count(1):
            try:
                line = file.readline(MAX_LINE_BYTES + 1)
            except OSError as error:
                raise RecordingError(f"{path}:{number}: cannot read: {os_reason(error)}.") from None
            if not line:
                return
            read += len(line)
            if limit is not None and read > limit:  # grown since, or not a regular file
                raise RecordingError(_too_large(path, limit))
            if len(line) > MAX_LINE_BYTES:
                raise RecordingError(
                    f"{path}:{number}: the line is over {MAX_LINE_BYTES // MIB} MiB, "
                    "longer than any exchange the proxy writes."
                )
            if line.strip():
                yield _exchange(line, f"{path}:{number}")


def _too_large(path: Path, limit: int) -> str:
    return (
        f"{path}: over {limit // MIB} MiB, more than diff replays at once; "
        "split it (each line is one exchange)."
    )


def read_recording(path: Path) -> list[dict[str, Any]]:
    """Every exchange of a recording, in order, from a file of at most MAX_RECORDING_BYTES."""
    return list(iter_recording(path, MAX_RECORDING_BYTES))


def _exchange(line: bytes, where: str) -> dict[str, Any]:
    """One line as an exchange, or a RecordingError saying at ``where`` why it is not."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RecordingError(f"{where}: not UTF-8 text (byte {error.start + 1}).") from None
    try:
        exchange = json.loads(text)
    except RecursionError:
        raise RecordingError(f"{where}: nested deeper than {MAX_DEPTH} levels.") from None
    except json.JSONDecodeError as error:
        reason = error.msg[:1].lower() + error.msg[1:]
        raise RecordingError(f"{where}: not JSON ({reason} at column {error.colno}).") from None
    except ValueError:  # the only other: an integer longer than Python converts
        digits = sys.get_int_max_str_digits()
        raise RecordingError(f"{where}: holds an integer of over {digits} digits.") from None
    if nesting_path(exchange, MAX_DEPTH) is not None:
        raise RecordingError(f"{where}: nested deeper than {MAX_DEPTH} levels.")
    problem = _exchange_problem(exchange)
    if problem is not None:
        raise RecordingError(f"{where}: not an exchange: {problem}.")
    result: dict[str, Any] = exchange
    return result


def _exchange_problem(exchange: Any) -> str | None:
    """What keeps a parsed line from being an exchange as the proxy writes it; None if
    nothing does."""
    if not isinstance(exchange, dict):
        return "a JSON object is needed"
    if not isinstance(exchange.get("method"), str) or not isinstance(exchange.get("path"), str):
        return "method and path (strings) are needed"
    if not METHOD.fullmatch(exchange["method"]):
        return "the method must be an HTTP method name"
    if not exchange["path"].startswith("/"):
        return "the path must start with /"
    if not isinstance(exchange.get("query"), str | None):
        return "query must be a string"
    status = exchange.get("status")
    if status is not None and (isinstance(status, bool) or not isinstance(status, int)):
        return "status must be an integer or null"
    for name in MESSAGES:
        message = exchange.get(name)
        if message is None:
            continue
        if not isinstance(message, dict):
            return f"{name} must be an object or null"
        headers = message.get("headers")
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            return f"{name}.headers must be an object of strings"
        if not isinstance(message.get("json", False), bool):
            return f"{name}.json must be true or false"
    return None


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
        headers = dict(recorded["headers"])
        body = recorded.get("body")
        if recorded.get("json"):
            return cls(headers, json.dumps(body).encode("utf-8"))
        text = "" if body is None else str(body)
        return cls(headers, text.encode("utf-8", errors="replace"))  # a lone surrogate: "?"


def recorded_message(headers: dict[str, str], raw: bytes) -> dict[str, Any]:
    """A request or response as the file keeps it: a JSON body parsed (``json`` true), any
    other body as text, no body as null."""
    content_type = header_value(headers.items(), "content-type")
    if raw and is_json_media_type(media_type_of(content_type)):
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested past ~1,000 levels
            pass
        else:
            if nesting_path(body, MAX_BODY_DEPTH) is None:  # else kept as text, readable back
                return {"headers": headers, "body": body, "json": True}
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
    when an exchange breaks the vendor contract, whatever the differences.

    The file is read twice, a line at a time: first to refuse a bad line before any output,
    then to judge, so a recording of any size takes the memory of one line."""
    path = Path(args.recording)
    try:
        total = sum(1 for _ in iter_recording(path))
    except RecordingError as error:
        print(f"agentstatus-mock validate-recording: {error}", file=sys.stderr)
        return 2
    contract = ContractJudge(args.profile)
    checked = broken = differing = 0
    # Only the lines counted: those the proxy appends meanwhile wait for the next run.
    for number, exchange in answered(itertools.islice(iter_recording(path), total)):
        checked += 1
        answer = RecordedAnswer.of(exchange)
        judgement = contract.judge(answer)
        where = f"#{number} {exchange['method']} {shown_path(exchange['path'])}: "
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
    skipped = total - checked
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
