"""A fast, never more lenient, check of fixture agents against the fixture schema.

jsonschema takes about 0.1 ms per agent, so a 50,000-agent fixture spent seconds in
validation. Agents all follow one flat definition (``$defs/agent``); this module compiles that
definition into plain Python checks. It supports only the keywords the definition uses
(type, required, additionalProperties false, properties with type/pattern/minLength/minimum/
maximum/enum, dependentRequired, and annotations); if the schema ever uses another keyword,
compilation gives up and every document goes through jsonschema as before.

It only ever says "certainly valid": a document it does not pass is validated by jsonschema,
which stays the authority and writes the error message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from schemas import load_schema
from schemas.wire import integral

Check = Callable[[object], bool]
ANNOTATIONS = frozenset({"description", "default", "title", "examples", "$comment"})
OBJECT_KEYWORDS = frozenset(
    {"type", "required", "additionalProperties", "properties", "dependentRequired"}
)
VALUE_KEYWORDS = frozenset({"type", "pattern", "minLength", "minimum", "maximum", "enum"})


def _is_integer(value: object) -> bool:
    """JSON Schema's integer: 5 and 5.0, never a boolean (any range: the schema bounds it)."""
    return integral(value) is not None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


TYPES: dict[str, Check] = {
    "string": lambda value: isinstance(value, str),
    "integer": _is_integer,
    "boolean": lambda value: isinstance(value, bool),
    "object": lambda value: isinstance(value, dict),
}


def _value_check(schema: Mapping[str, Any]) -> Check | None:
    if set(schema) - VALUE_KEYWORDS - ANNOTATIONS:
        return None
    checks: list[Check] = []
    if "type" in schema:
        type_check = TYPES.get(schema["type"]) if isinstance(schema["type"], str) else None
        if type_check is None:
            return None
        checks.append(type_check)
    if "enum" in schema:
        if not all(isinstance(member, str) for member in schema["enum"]):
            return None
        members = frozenset(schema["enum"])
        checks.append(lambda value: isinstance(value, str) and value in members)
    if "pattern" in schema:
        pattern = schema_pattern(schema["pattern"])
        checks.append(lambda value: not isinstance(value, str) or bool(pattern.search(value)))
    if "minLength" in schema:
        least = schema["minLength"]
        checks.append(lambda value: not isinstance(value, str) or len(value) >= least)
    if "minimum" in schema:
        low = schema["minimum"]
        checks.append(lambda value: not _is_number(value) or value >= low)
    if "maximum" in schema:
        high = schema["maximum"]
        checks.append(lambda value: not _is_number(value) or value <= high)
    return lambda value: all(check(value) for check in checks)


def compile_object(schema: Mapping[str, Any]) -> Check | None:
    """A check for a flat object definition, or None when it uses an unsupported keyword."""
    if (
        set(schema) - OBJECT_KEYWORDS - ANNOTATIONS
        or schema.get("type") != "object"
        or schema.get("additionalProperties") is not False
    ):
        return None
    properties: dict[str, Check] = {}
    for name, definition in schema.get("properties", {}).items():
        check = _value_check(definition)
        if check is None:
            return None
        properties[name] = check
    required = frozenset(schema.get("required", ()))
    dependent = {
        name: frozenset(needs) for name, needs in schema.get("dependentRequired", {}).items()
    }
    allowed = frozenset(properties)

    def check_object(value: object) -> bool:
        if not isinstance(value, dict) or not required <= value.keys() <= allowed:
            return False
        for name, needs in dependent.items():
            if name in value and not needs <= value.keys():
                return False
        return all(properties[name](item) for name, item in value.items())

    return check_object


@cache
def schema_pattern(text: str) -> re.Pattern[str]:
    """A JSON Schema ``pattern`` (ECMA 262) as Python runs it: ``$`` outside a class is the
    very end of the text (``\\Z``); Python's ``$`` also matches before a final newline, which
    let ``PUT /__admin/tenants/ab%0A`` create the tenant ``"ab\\n"``."""
    translated: list[str] = []
    escaped = in_class = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            translated.append("\\Z")
            continue
        translated.append(char)
    return re.compile("".join(translated))


@cache
def agent_check() -> Check | None:
    """The compiled ``$defs/agent`` of the fixture schema (None: not compilable).

    Also None unless a tenant's ``agents`` is nothing but an array of such agents: the rest
    of a document is validated with the agents emptied, which is only sound then.
    """
    schema = load_schema("fixture.schema.json")
    agents = schema["$defs"]["tenant"]["properties"]["agents"]
    plain_array = {"type": "array", "items": {"$ref": "#/$defs/agent"}}
    if {key: value for key, value in agents.items() if key not in ANNOTATIONS} != plain_array:
        return None
    return compile_object(schema["$defs"]["agent"])


def split_agents(document: object) -> tuple[object, list[object]] | None:
    """The document with every tenant's agents emptied, and all those agents; None when its
    shape is not tenants-of-objects-with-agent-arrays (jsonschema then judges it whole)."""
    if not isinstance(document, dict) or not isinstance(document.get("tenants"), list):
        return None
    tenants: list[object] = []
    agents: list[object] = []
    for tenant in document["tenants"]:
        if not isinstance(tenant, dict) or not isinstance(tenant.get("agents", []), list):
            return None
        agents.extend(tenant.get("agents", []))
        tenants.append({**tenant, "agents": []} if "agents" in tenant else tenant)
    return {**document, "tenants": tenants}, agents
