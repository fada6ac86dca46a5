"""The OpenAPI documents, bundled: every schema file they use inlined under ``components``.

The source documents (``openapi.yaml``, ``admin-openapi.yaml``) ``$ref`` the JSON Schema files
beside them by file name, and the schema files ``$ref`` one another through their ``$id``. Tools
and clients want one self-contained document, so ``bundle`` copies each schema file it reaches
into ``components/schemas`` (named after the file: ``agent-list.schema.json`` → ``AgentList``)
and rewrites every ``$ref`` to point inside the document.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urldefrag

from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from schemas import SCHEMA_PACKAGE, load_schema

SCHEMA_BASE_URI = "https://agentstatus-twin.local/schemas/"
SCHEMA_SUFFIX = ".schema.json"
API_DOCUMENT = "openapi.yaml"
"""The emulator's promise: the vendor contract plus the emulator's own choices."""
VENDOR_DOCUMENT = "vendor-openapi.yaml"
"""The vendor contract: what the vendor's guide or reference allows, nothing stricter."""
ADMIN_DOCUMENT = "admin-openapi.yaml"


def schema_files() -> list[str]:
    """Every JSON Schema file of the package, by file name."""
    return sorted(
        entry.name
        for entry in resources.files(SCHEMA_PACKAGE).iterdir()
        if entry.name.endswith(SCHEMA_SUFFIX)
    )


def component_name(file_name: str) -> str:
    """``agent-list.schema.json`` → ``AgentList``: the schema's name inside a bundled document."""
    stem = file_name.removesuffix(SCHEMA_SUFFIX)
    return "".join(part.capitalize() for part in stem.split("-"))


@cache
def schema_registry() -> Registry[Any]:
    """All schema files under their ``$id``, so a validator can follow their ``$ref``s offline."""
    resources_by_uri = [
        (SCHEMA_BASE_URI + name, Resource.from_contents(load_schema(name), DRAFT202012))
        for name in schema_files()
    ]
    registry: Registry[Any] = Registry().with_resources(resources_by_uri)
    return registry.crawl()


def _file_of(reference: str) -> tuple[str, str]:
    """The schema file and fragment a non-local ``$ref`` names (file name, or full ``$id``)."""
    url, fragment = urldefrag(reference)
    name = url.removeprefix(SCHEMA_BASE_URI)
    if "/" in name or not name.endswith(SCHEMA_SUFFIX):
        raise ValueError(f"$ref {reference!r} does not name a schema file of this package")
    return name, fragment


def _rewrite(node: Any, current_file: str | None, reached: set[str]) -> Any:
    """A copy of ``node`` whose ``$ref``s point inside the bundled document."""
    if isinstance(node, list):
        return [_rewrite(item, current_file, reached) for item in node]
    if not isinstance(node, dict):
        return node
    result = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            result[key] = _target(value, current_file, reached)
        elif current_file is not None and key in ("$id", "$schema"):
            continue
        else:
            result[key] = _rewrite(value, current_file, reached)
    return result


def _target(reference: str, current_file: str | None, reached: set[str]) -> str:
    if reference.startswith("#"):
        if current_file is None:
            return reference
        name, fragment = current_file, reference[1:]
    else:
        name, fragment = _file_of(reference)
    reached.add(name)
    return f"#/components/schemas/{component_name(name)}{fragment}"


@cache
def _bundled(document_name: str) -> dict[str, Any]:
    source = load_schema(document_name)
    reached: set[str] = set()
    document: dict[str, Any] = _rewrite(source, None, reached)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    done: set[str] = set()
    while reached - done:
        name = min(reached - done)
        done.add(name)
        schemas[component_name(name)] = _rewrite(load_schema(name), name, reached)
    document["components"]["schemas"] = dict(sorted(schemas.items()))
    return document


def bundle(document_name: str = API_DOCUMENT) -> dict[str, Any]:
    """The named OpenAPI document with all ``$ref``s resolved inside it (a fresh copy)."""
    return copy.deepcopy(_bundled(document_name))
