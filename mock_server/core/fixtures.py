"""Fixture files: tenants, credentials, groups, status-code lists and agents, in JSON or YAML.

The format is ``schemas/fixture.schema.json``. A file is checked against that schema and
then for consistency (every reference resolves, ids are unique); the first problem is
reported with its JSON path in the document, e.g. ``$.tenants[0].agents[3].group-id``.
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema._utils import equal, find_additional_properties
from jsonschema.exceptions import best_match

from mock_server.core.entities import Agent, FixtureTenant, Group, StatusCodeList, Tenant
from mock_server.core.errors import InvalidRequest, excerpt
from mock_server.core.fixture_check import agent_check, schema_pattern, split_agents
from schemas import load_schema
from schemas.rules import LOGGED_OUT_STATUS_CODE_ITEM_ID, LOGGED_OUT_STATUS_CODE_LIST_ID
from schemas.wire import STATUS_CODE_FIELDS

DEMO_FIXTURE = "demo.yaml"
LIST_FIELD, ITEM_FIELD, SHORT_FIELD = STATUS_CODE_FIELDS
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when installed: the same documents, many times faster."""
MAX_FIXTURE_BYTES = 8 * 2**20
"""The largest fixture file read (about 80,000 agents in YAML, 50,000 in indented JSON): YAML
of that size takes some 4 s and 400 MB to load; a bigger file is refused before it is read."""
MAX_ALIASED_NODES = 100_000
"""How many values YAML aliases may repeat in all: an alias stands for a copy of its anchor's
value, so nested aliases of a few bytes ("billion laughs") could stand for billions."""
MESSAGE_PATH_LENGTH = 200
"""How much of a JSON path or a parser's complaint a message shows."""


class FixtureError(InvalidRequest):
    """A fixture (file or control-plane body) that does not describe a valid tenant set."""


def _pattern(
    validator: Any, pattern: str, instance: object, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """``pattern`` with ECMA's ``$`` (``schema_pattern``), as the JSON Schema spec says."""
    if isinstance(instance, str) and not schema_pattern(pattern).search(instance):
        yield ValidationError(f"{excerpt(instance)} does not match {pattern!r}")


# jsonschema's own checks of the keywords below quote the whole value (``repr``); these say
# the same through ``excerpt``, so a refusal stays short whatever the value holds.


def _type(
    validator: Any, types: str | list[str], instance: object, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    names = [types] if isinstance(types, str) else types
    if not any(validator.is_type(instance, name) for name in names):
        shown = ", ".join(map(repr, names))
        yield ValidationError(f"{excerpt(instance)} is not of type {shown}")


def _enum(
    validator: Any, enums: list[object], instance: object, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not any(equal(each, instance) for each in enums):
        yield ValidationError(f"{excerpt(instance)} is not one of {excerpt(enums)}")


def _additional_properties(
    validator: Any, allowed: object, instance: object, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """``additionalProperties: false`` (the fixture schema's only use) names at most three of
    the unexpected names, each an excerpt; a schema in its place is jsonschema's to check."""
    if allowed is not False:
        original = Draft202012Validator.VALIDATORS["additionalProperties"]
        yield from original(validator, allowed, instance, schema)
    elif isinstance(instance, dict):
        extras = sorted(find_additional_properties(instance, schema), key=str)
        if extras:
            names = ", ".join(map(excerpt, extras[:3])) + (", ..." if len(extras) > 3 else "")
            verb = "was" if len(extras) == 1 else "were"
            yield ValidationError(
                f"Additional properties are not allowed ({names} {verb} unexpected)"
            )


def _minimum(
    validator: Any, minimum: float, instance: object, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "number") and instance < minimum:  # type: ignore[operator]
        yield ValidationError(f"{excerpt(instance)} is less than the minimum of {minimum!r}")


def _maximum(
    validator: Any, maximum: float, instance: object, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "number") and instance > maximum:  # type: ignore[operator]
        yield ValidationError(f"{excerpt(instance)} is greater than the maximum of {maximum!r}")


FixtureValidator = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    {
        "pattern": _pattern,
        "type": _type,
        "enum": _enum,
        "additionalProperties": _additional_properties,
        "minimum": _minimum,
        "maximum": _maximum,
    },
)


@cache
def _validator(definition: str | None = None) -> Draft202012Validator:
    schema = load_schema("fixture.schema.json")
    if definition is not None:
        schema = {**schema, "$ref": f"#/$defs/{definition}"}
        schema.pop("required", None)
        schema.pop("properties", None)
        schema.pop("additionalProperties", None)
    validator: Draft202012Validator = FixtureValidator(schema)
    return validator


MAX_DEPTH = 32
"""How deep a fixture or control-plane document may nest (a valid one needs 6 levels): deeper
ones are refused before the schema sees them, whose checks and messages recurse."""


def nesting_path(document: object, limit: int = MAX_DEPTH) -> str | None:
    """The path (``$.tenants[0]...``) of a value nested deeper than ``limit``, found without
    recursion (only containers are visited, so a big fixture costs little); None when the
    document is shallower."""
    pending: list[tuple[object, int, tuple[object, ...]]] = [(document, 0, ())]
    while pending:
        value, depth, path = pending.pop()
        if depth > limit:
            return "$" + "".join(
                f"[{part}]" if isinstance(part, int) else f".{part}" for part in path
            )
        members = value.items() if isinstance(value, dict) else enumerate(value)  # type: ignore[arg-type]
        pending += [
            (member, depth + 1, (*path, key))
            for key, member in members
            if isinstance(member, dict | list)
        ]
    return None


def validate_document(document: object, definition: str | None = None, where: str = "$") -> None:
    """Raise FixtureError naming the path of the first schema violation."""
    too_deep = nesting_path(document) if isinstance(document, dict | list) else None
    if too_deep is not None:
        shown = _shortened(where + too_deep.removeprefix("$"))
        raise FixtureError(f"{shown}: nested deeper than {MAX_DEPTH} levels.")
    if definition is None and _certainly_valid(document):
        return
    error = best_match(_validator(definition).iter_errors(document))
    if error is not None:
        path = where + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
        )
        raise FixtureError(f"{path}: {error.message}")


def _certainly_valid(document: object) -> bool:
    """The fast path for big fixtures: agents through the compiled check, the rest through
    jsonschema. False sends the whole document through jsonschema (``fixture_check``)."""
    check = agent_check()
    split = split_agents(document)
    if check is None or split is None:
        return False
    rest, agents = split
    return all(map(check, agents)) and _validator().is_valid(rest)


def _shortened(text: str) -> str:
    """``text``, cut to ``MESSAGE_PATH_LENGTH`` characters (``...`` when cut)."""
    limit = MESSAGE_PATH_LENGTH
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_fixture_text(text: str, source: str) -> dict[str, Any]:
    """JSON or YAML text to a validated fixture document."""
    if source.endswith(".json"):
        try:
            document = json.loads(text)
        except RecursionError:
            raise FixtureError(f"{source}: not valid JSON: nested too deep to read.") from None
        except ValueError as error:  # JSONDecodeError, or an integer of over 4,300 digits
            raise FixtureError(f"{source}: not valid JSON: {_problem(str(error))}") from None
    else:
        document = _load_yaml(text, source)
    build_tenants(document)  # validates against the schema first, then for consistency
    result: dict[str, Any] = document
    return result


def _problem(text: str) -> str:
    """A parser's complaint on one short line (Python's int limit without its advice to
    raise it, which only the emulator's code could take)."""
    return _shortened(" ".join(text.split(";")[0].split()))


def _load_yaml(text: str, source: str) -> Any:
    """The YAML document in ``text``, its aliases bounded (``MAX_ALIASED_NODES``).

    Composed to nodes first (libyaml's composer when available), which keeps an alias as
    one more reference to its anchor's node, so what the aliases repeat is counted before a
    value is built. The cyclic garbage collector is paused meanwhile: it would traverse the
    growing node tree again and again (at 100,000 agents: 9 s to compose instead of 1.6 s).
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        loader = _marking(YAML_LOADER)(text)
        try:
            node = loader.get_single_node()
            _check_aliases(node, text, source)
            return loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        raise FixtureError(f"{source}: not valid YAML{_yaml_problem(error)}") from None
    except yaml.YAMLError as error:  # the reader's: a character YAML does not allow
        raise FixtureError(f"{source}: not valid YAML: {_problem(str(error))}") from None
    except RecursionError:  # the pure-Python composer, at about 1,000 levels
        raise FixtureError(f"{source}: not valid YAML: nested too deep to read.") from None
    finally:
        if collecting:
            gc.enable()


@cache
def _marking(loader: type[Any]) -> type[Any]:
    """``loader``, refusing a scalar its constructor cannot build (a date such as 2026-02-30,
    an integer of over 4,300 digits) as a YAML error at the scalar's line and column."""

    class MarkingLoader(loader):  # type: ignore[misc]
        def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep)
            except ValueError as error:
                raise yaml.constructor.ConstructorError(
                    None, None, str(error), node.start_mark
                ) from None

    return MarkingLoader


def _yaml_problem(error: yaml.MarkedYAMLError) -> str:
    """`` at line L, column C: <what>``, on one line (PyYAML's own text quotes the line)."""
    mark = error.problem_mark or error.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = ", ".join(part for part in (error.context, error.problem) if part)
    return f"{where}: {_problem(what)}"


def _check_aliases(root: yaml.Node | None, text: str, source: str) -> None:
    """Refuse a document whose aliases repeat more than ``MAX_ALIASED_NODES`` values in all
    (an alias inside its own anchor repeats without end). The nodes are visited as the
    document will be, aliases expanded, and the visit stops at the bound: a billion laughs
    costs as little to refuse as it took to write. A text without ``*`` holds no alias."""
    if root is None or "*" not in text:
        return
    seen: set[int] = set()
    pending = [root]
    visits = 0
    while pending:
        node = pending.pop()
        visits += 1
        seen.add(id(node))
        if visits - len(seen) > MAX_ALIASED_NODES:
            raise FixtureError(
                f"{source}: aliases repeat more than {MAX_ALIASED_NODES:,} values "
                f"(line {node.start_mark.line + 1}): write the values out instead."
            )
        if isinstance(node, yaml.SequenceNode):
            pending += node.value
        elif isinstance(node, yaml.MappingNode):
            pending += (part for pair in node.value for part in pair)


def load_fixture(path: str | Path | None = None) -> dict[str, Any]:
    """The fixture at ``path``, or the built-in demo tenant set when None."""
    if path is None:
        text = resources.files("mock_server").joinpath("fixtures", DEMO_FIXTURE).read_text("utf-8")
        return parse_fixture_text(text, DEMO_FIXTURE)
    file = Path(path)
    text = _read_text(file)
    try:
        return parse_fixture_text(text, str(file))
    except FixtureError as error:
        message = error.detail if error.detail.startswith(str(file)) else f"{file}: {error.detail}"
        raise FixtureError(message) from None


def _read_text(file: Path) -> str:
    """The file's text, refused above ``MAX_FIXTURE_BYTES`` before it is read: by its size,
    and, for a file whose size says nothing (a device, a pipe), by reading one byte more."""
    limit = f"the {MAX_FIXTURE_BYTES // 2**20} MiB a fixture file may hold"
    try:
        with file.open("rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            if size > MAX_FIXTURE_BYTES:
                raise FixtureError(f"{file}: {size:,} bytes, more than {limit}.")
            data = stream.read(MAX_FIXTURE_BYTES + 1)
    except OSError as error:
        raise FixtureError(f"{file}: cannot be read: {error.strerror or error}.") from None
    if len(data) > MAX_FIXTURE_BYTES:
        raise FixtureError(f"{file}: more than {limit}.")
    try:
        return data.decode("utf-8-sig")  # a byte order mark, as Windows editors write, is read
    except UnicodeDecodeError as error:
        raise FixtureError(
            f"{file}: not UTF-8 text: byte 0x{data[error.start]:02x} at offset {error.start} "
            "cannot be decoded."
        ) from None


def username_taken(where: str, username: str) -> FixtureError:
    """Each tenant has a username of its own: Basic credentials find the tenant by it."""
    return FixtureError(f"{where}.username: {excerpt(username)} is used by another tenant.")


def build_tenants(document: Mapping[str, Any]) -> dict[str, FixtureTenant]:
    """Fresh state from a fixture document; each call returns new, independent objects."""
    validate_document(document)
    tenants: dict[str, FixtureTenant] = {}
    usernames: set[str] = set()
    for index, raw in enumerate(document["tenants"]):
        where = f"$.tenants[{index}]"
        built = _build_tenant(raw, where)
        tenant = built.tenant
        if tenant.tenant_id in tenants:
            raise FixtureError(f"{where}.tenant-id: '{tenant.tenant_id}' is defined twice.")
        if tenant.username in usernames:
            raise username_taken(where, tenant.username)
        tenants[tenant.tenant_id] = built
        usernames.add(tenant.username)
    return tenants


def _build_tenant(raw: Mapping[str, Any], where: str) -> FixtureTenant:
    tenant = build_settings(raw, where)
    agents: dict[str, Agent] = {}
    for index, raw_agent in enumerate(raw.get("agents", [])):
        agent = build_agent(raw_agent, tenant, where=f"{where}.agents[{index}]", validated=True)
        if agent.agent_id in agents:
            raise FixtureError(
                f"{where}.agents[{index}].agent-id: '{agent.agent_id}' is defined twice."
            )
        agents[agent.agent_id] = agent
    return FixtureTenant(tenant, tuple(agents.values()))


def build_settings(raw: Mapping[str, Any], where: str = "$") -> Tenant:
    """A tenant's settings (credentials, status-code lists, groups), without its agents."""
    lists: dict[int, StatusCodeList] = {}
    for index, raw_list in enumerate(raw.get("status-code-lists", [])):
        list_where = f"{where}.status-code-lists[{index}]"
        if raw_list["id"] in lists:
            raise FixtureError(
                f"{list_where}.id: status-code list {raw_list['id']} is defined twice."
            )
        lists[raw_list["id"]] = _build_code_list(raw_list, list_where)
    groups: dict[int, Group] = {}
    for index, raw_group in enumerate(raw.get("groups", [])):
        group_where = f"{where}.groups[{index}]"
        if raw_group["id"] in groups:
            raise FixtureError(f"{group_where}.id: group {raw_group['id']} is defined twice.")
        assigned = tuple(raw_group.get("status-code-lists", []))
        for list_index, list_id in enumerate(assigned):
            if list_id not in lists:
                raise FixtureError(
                    f"{group_where}.status-code-lists[{list_index}]: status-code list {list_id} "
                    "is not defined in this tenant."
                )
        groups[raw_group["id"]] = Group(
            id=raw_group["id"], name=raw_group.get("name"), status_code_lists=assigned
        )
    return Tenant(
        tenant_id=raw["tenant-id"],
        username=raw["username"],
        token=raw["token"],
        api_enabled=raw.get("api-enabled", True),
        status_code_lists=MappingProxyType(lists),
        groups=MappingProxyType(groups),
    )


def _build_code_list(raw: Mapping[str, Any], where: str) -> StatusCodeList:
    items: dict[int, str] = {}
    descriptions: dict[int, str] = {}
    for index, item in enumerate(raw["items"]):
        if item["id"] in items:
            raise FixtureError(f"{where}.items[{index}].id: item {item['id']} is defined twice.")
        items[item["id"]] = item["short-code"]
        if "description" in item:
            descriptions[item["id"]] = item["description"]
    return StatusCodeList(
        id=raw["id"],
        name=raw.get("name"),
        items=MappingProxyType(items),
        descriptions=MappingProxyType(descriptions),
    )


def build_agent(raw: object, tenant: Tenant, where: str, validated: bool = False) -> Agent:
    """One agent in the fixture shape, checked against the tenant's groups and status codes."""
    if not validated:
        validate_document(raw, "agent", where)
    if not isinstance(raw, Mapping):  # validated: the caller checked it against the schema
        raise FixtureError(f"{where}: an agent must be an object.")
    group = tenant.groups.get(raw["group-id"])
    if group is None:
        raise FixtureError(
            f"{where}.group-id: group {raw['group-id']} is not defined in this tenant."
        )
    return Agent(
        agent_id=raw["agent-id"],
        group_id=group.id,
        status=raw["agent-status"],
        name=raw.get("name"),
        sub_status=raw.get("agent-sub-status"),
        list_id=raw.get(LIST_FIELD),
        item_id=raw.get(ITEM_FIELD),
        short_code=_short_code(raw, tenant, group, where),
    )


def _short_code(raw: Mapping[str, Any], tenant: Tenant, group: Group, where: str) -> str | None:
    """The agent's short code: its item's, once its list, item and short code are consistent."""
    list_id, item_id = raw.get(LIST_FIELD), raw.get(ITEM_FIELD)
    short_code: str | None = raw.get(SHORT_FIELD)
    if list_id is None:
        return short_code
    if (list_id, item_id) == (LOGGED_OUT_STATUS_CODE_LIST_ID, LOGGED_OUT_STATUS_CODE_ITEM_ID):
        if short_code is not None:
            raise FixtureError(
                f"{where}.status-code-item-short-code: the pair -1/1 has no short code."
            )
        return None
    if list_id not in group.status_code_lists:
        raise FixtureError(
            f"{where}.status-code-list-id: list {list_id} is not assigned to group {group.label}."
        )
    expected = tenant.status_code_lists[list_id].items.get(item_id or 0)
    if expected is None:
        raise FixtureError(
            f"{where}.status-code-item-id: item {item_id} is not in status-code list {list_id}."
        )
    if short_code is not None and short_code != expected:
        raise FixtureError(
            f"{where}.status-code-item-short-code: '{short_code}' is not the short code of "
            f"item {item_id} (it is '{expected}')."
        )
    return expected
