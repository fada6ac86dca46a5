"""The changes of a bulk file, as ``agentstatus bulk`` reads it: CSV with the wire names as
header, or JSON (a list of entries, or ``{"agents": [...]}``) with the same names.
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

CSV_COLUMNS = (AGENT_ID, AGENT_STATUS, LIST_ID, ITEM_ID, SHORT_CODE)


class BulkFileError(ValueError):
    """The file cannot be read, or an entry is not a change: the message says where."""


def read_changes(name: str) -> list[StatusChange]:
    """The changes of a bulk file: CSV with the wire names as header, or JSON."""
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except OSError as problem:
        raise BulkFileError(f"cannot read {name}: {problem.strerror}") from None
    except UnicodeDecodeError:
        raise BulkFileError(f"{name} is not UTF-8 text") from None
    if text.lstrip().startswith(("[", "{")):
        return _json_changes(name, text)
    return _csv_changes(name, text)


def _json_changes(name: str, text: str) -> list[StatusChange]:
    try:
        document = json.loads(text)
    except ValueError as problem:
        raise BulkFileError(f"{name} is not valid JSON: {problem}") from None
    entries = document.get("agents") if isinstance(document, dict) else document
    if not isinstance(entries, list):
        raise BulkFileError(f'{name}: expected a list of entries or {{"agents": [...]}}')
    changes = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise BulkFileError(f"{name}: entry {index} is not an object")
        changes.append(_change(entry, f"{name}: entry {index}"))
    return changes


def _csv_changes(name: str, text: str) -> list[StatusChange]:
    reader = csv.DictReader(io.StringIO(text))
    header = [column.strip() for column in reader.fieldnames or []]
    unknown = [column for column in header if column not in CSV_COLUMNS]
    if AGENT_ID not in header or unknown:
        raise BulkFileError(f"{name}: the CSV header must name columns of {','.join(CSV_COLUMNS)}")
    reader.fieldnames = header
    changes = []
    for row in reader:
        if None in row:
            raise BulkFileError(f"{name}: line {reader.line_num} has more cells than the header")
        changes.append(_change(row, f"{name}: line {reader.line_num}"))
    return changes


def _change(entry: Mapping[str, Any], where: str) -> StatusChange:
    try:
        return StatusChange.from_wire(entry)
    except ValueError as problem:
        raise BulkFileError(f"{where}: {problem}") from None
