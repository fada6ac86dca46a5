"""The written contract: JSON Schemas (draft 2020-12), the OpenAPI documents and the rule table.

Schema files live beside this module and are addressed by their file name, for example
``load_schema("fixture.schema.json")``; their ``$id`` values let them ``$ref`` one another.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import metadata, resources
from typing import Any

import yaml

SCHEMA_PACKAGE = "schemas"
DISTRIBUTION = "agentstatus-twin"


@cache
def project_version() -> str:
    """The installed project's version, which both command lines print for ``--version``."""
    return metadata.version(DISTRIBUTION)


def load_schema(name: str) -> dict[str, Any]:
    """One schema file of this package, parsed (JSON or YAML by extension): the caller's own
    copy, so that changing it never changes what the next caller reads."""
    return copy.deepcopy(_parsed(name))


@cache
def _parsed(name: str) -> dict[str, Any]:
    text = resources.files(SCHEMA_PACKAGE).joinpath(name).read_text(encoding="utf-8")
    document: dict[str, Any] = yaml.safe_load(text) if name.endswith(".yaml") else json.loads(text)
    return document
