"""The changes of a bulk file, as ``agentstatus bulk`` reads it: CSV with the wire names as
header, or JSON (a list of entries, or ``{"agents": [...]}``) with the same names.

CSV is read as spreadsheet programs write it: a UTF-8 byte-order mark, ``;`` as the separator
(chosen from the header line), header names in any case and with spaces around them, rows of
empty cells. Both forms refuse what they do not know (a column, a field), naming it, rather
than drop a change the user meant.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from client.models import AGENT_ID, AGENT_STATUS, ITEM_ID, LIST_ID, SHORT_CODE, StatusChange

FIELDS = (AGENT_ID, AGENT_STATUS, LIST_ID, ITEM_ID, SHORT_CODE)
"""The columns of a CSV file and the fields of a JSON entry."""
AGENTS = "agents"
SHOWN_CHARS = 60
"""How much of a value or a name an error message quotes."""


class BulkFileError(ValueError):
    """The file cannot be read, or an entry is not a change: the message says where."""


def read_changes(name: str) -> list[StatusChange]:
    """The changes of a bulk file (``-``: stdin): CSV with the wire names as header, or JSON."""
    label = "stdin" if name == "-" else name
    text = _text(name, label)
    if not text.strip():
        raise BulkFileError(f"{label} is empty")
    if text.lstrip().startswith(("[", "{")):
        return _json_changes(label, text)
    return _csv_changes(label, text)


def _text(name: str, label: str) -> str:
    """The file as text: UTF-8, with or without a byte-order mark, whatever the locale."""
    try:
        if name == "-":
            stream = getattr(sys.stdin, "buffer", None)
            data = stream.read() if stream is not None else sys.stdin.read().encode()
        else:
            data = Path(name).read_bytes()
    except OSError as problem:
        raise BulkFileError(f"cannot read {label}: {problem.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as problem:
        line = data.count(b"\n", 0, problem.start) + 1
        raise BulkFileError(f"{label}: line {line} is not UTF-8 text") from None


def _json_changes(label: str, text: str) -> list[StatusChange]:
    try:
        document = json.loads(text)
    except ValueError as problem:
        raise BulkFileError(f"{label} is not valid JSON: {problem}") from None
    except RecursionError:
        raise BulkFileError(f"{label} is nested too deeply to be a bulk file") from None
    if isinstance(document, dict):
        _refuse_unknown(label, document, (AGENTS,), "field")
        document = document.get(AGENTS)
    if not isinstance(document, list):
        raise BulkFileError(f'{label}: expected a list of entries or {{"agents": [...]}}')
    changes = []
    for number, entry in enumerate(document, start=1):
        where = f"{label}: entry {number}"
        if not isinstance(entry, dict):
            raise BulkFileError(f"{where} is not an object")
        _refuse_unknown(where, entry, FIELDS, "field")
        agent_id = entry.get(AGENT_ID, "")
        if not isinstance(agent_id, str):
            raise BulkFileError(f"{where}: {AGENT_ID} must be a string, got {_shown(agent_id)}")
        changes.append(_change(entry, where))
    return changes


def _csv_changes(label: str, text: str) -> list[StatusChange]:
    first_line = text.split("\n", 1)[0]
    separator = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator, strict=True)
    _, first = _record(reader, label)
    header = [column.strip().lower() for column in first or []]
    _check_header(label, header)
    changes: list[StatusChange] = []
    while True:
        line, row = _record(reader, label)
        if row is None:
            return changes
        where = f"{label}: line {line}"
        if not any(cell.strip() for cell in row):
            continue
        if any(cell.strip() for cell in row[len(header) :]):
            raise BulkFileError(f"{where} has more cells than the header")
        if any("\0" in cell for cell in row):
            raise BulkFileError(f"{where} holds a NUL character: is this a CSV file?")
        changes.append(_change(dict(zip(header, row, strict=False)), where))


def _record(reader: Any, label: str) -> tuple[int, list[str] | None]:
    """The line the next record begins on, and the record (None at the end). A quoted cell
    may span lines, so an error names the line where the record began, not where it broke."""
    start = reader.line_num + 1
    try:
        row: list[str] = next(reader)
    except StopIteration:
        return start, None
    except csv.Error as problem:
        said = "unclosed quote" if str(problem) == "unexpected end of data" else str(problem)
        raise BulkFileError(f"{label}: line {start}: {said}") from None
    return start, row


def _check_header(label: str, header: list[str]) -> None:
    for number, column in enumerate(header, start=1):
        if not column:
            raise BulkFileError(f"{label}: column {number} of the CSV header has no name")
        if header.count(column) > 1:
            raise BulkFileError(f"{label}: column {column} appears twice in the CSV header")
    _refuse_unknown(label, header, FIELDS, "column")
    if AGENT_ID not in header:
        raise BulkFileError(f"{label}: the CSV header has no {AGENT_ID} column")


def _refuse_unknown(where: str, names: Any, known: tuple[str, ...], kind: str) -> None:
    """Refuse names outside ``known``: a misspelt field is a change the user would lose."""
    unknown = [name for name in names if name not in known]
    if unknown:
        listed = ", ".join(repr(name[:SHOWN_CHARS]) for name in unknown[:5])
        plural = "s" if len(unknown) > 1 else ""
        raise BulkFileError(
            f"{where}: unknown {kind}{plural} {listed} (the {kind}s are {','.join(known)})"
        )


def _shown(value: object) -> str:
    """A JSON value as the file wrote it, cut short."""
    text = json.dumps(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."


def _change(entry: Mapping[str, Any], where: str) -> StatusChange:
    try:
        return StatusChange.from_wire(entry)
    except ValueError as problem:
        raise BulkFileError(f"{where}: {problem}") from None
