"""What the contract tests share: the vendor's reference files and this project's documents.

The vendor's files are read from the repository's byte copies, so the tests run in a clone with
no ``../shared`` beside it: the API reference ships with the schemas
(``schemas/official-openapi.json``), the guide is test data (``tests/reference/``).
``test_reference_copies`` keeps both equal to ``../shared/reference/`` where that folder exists.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from schemas.contract import HTTP_METHODS

ROOT = Path(__file__).resolve().parents[2]
SHARED_REFERENCE = ROOT.parent / "shared" / "reference"
"""The vendor's files as the project was given them (beside the clone, when present)."""
TEST_REFERENCE = ROOT / "tests" / "reference"
"""Byte copies of the vendor's files that only the tests read."""
GUIDE = TEST_REFERENCE / "cc-managing-agent-status.md"
OFFICIAL_OPENAPI = ROOT / "schemas" / "official-openapi.json"
REFERENCE_COPIES = [
    OFFICIAL_OPENAPI,
    *sorted(path for path in TEST_REFERENCE.rglob("*") if path.is_file()),
]
"""Every in-repo copy of a file of ``../shared/reference/``, under the same name (below
``tests/reference/``, at the same path)."""


def reference_name(copy: Path) -> Path:
    """Where ``copy`` is in ``../shared/reference/``."""
    return (
        copy.relative_to(TEST_REFERENCE) if copy.is_relative_to(TEST_REFERENCE) else Path(copy.name)
    )


def official_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OFFICIAL_OPENAPI.read_text(encoding="utf-8"))
    return document


def guide_example(heading: str) -> Any:
    """The JSON of the first code block under a ``### heading`` of the guide (a curl
    ``--data-raw`` body, or a JSON block), parsed from the guide itself."""
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split(f"### {heading}\n", 1)[1]
    block = re.search(r"```(\w+)\n(.*?)```", section, flags=re.DOTALL)
    assert block is not None, f"no code block under {heading!r}"
    language, code = block.groups()
    if language == "curl":
        raw = re.search(r"--data-raw '(.*)'", code, flags=re.DOTALL)
        assert raw is not None, f"no --data-raw body under {heading!r}"
        code = raw.group(1)
    return json.loads(code)


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(METHOD, path) → operation object."""
    return {
        (method.upper(), path): item[method]
        for path, item in document["paths"].items()
        for method in HTTP_METHODS
        if method in item
    }


def parameters(document: dict[str, Any], path: str, method: str) -> set[tuple[str, str]]:
    """(name, in) of the parameters of an operation, path-level ones included."""
    item = document["paths"][path]
    found = set()
    for parameter in [*item.get("parameters", []), *item[method.lower()].get("parameters", [])]:
        if "$ref" in parameter:
            name = parameter["$ref"].rsplit("/", 1)[1]
            parameter = document["components"]["parameters"][name]
        found.add((parameter["name"], parameter["in"]))
    return found
