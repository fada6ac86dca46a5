"""The API's OpenAPI document narrowed to one profile, one step per ``Profile`` field.

``schemas/openapi.yaml`` describes the union over the profiles; a profile's document never
promises a method, a body, a limit or a parameter that profile does not have, and never refuses
one it takes. Each step narrows the schemas and says what it did in the ``description``
concerned (the sentences of the source's descriptions that speak of the profiles are dropped
first), and the document's own description sums them up. No Flask: ``documents`` serves it.

About 400 lines, kept whole: ten steps (one per ``Profile`` field) and the few helpers they
share to find a schema and rewrite its prose; split apart, a step would sit far from its words.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from mock_server.core.profiles import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    PROBLEM_MEDIA_TYPE,
    Profile,
)
from schemas.documents import API_DOCUMENT, bundle
from schemas.wire import AGENT, AGENTS, BULK, FORBIDDEN_XML, MAX_SAFE_INTEGER, STATUS_CODE_FIELDS

OPERATION_KEYS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
BULK_METHOD_ORIGIN = {"POST": "the reference's", "PUT": "the guide's"}
SCHEMA_PREFIX = "#/components/schemas/"


def profile_document(profile: Profile) -> dict[str, Any]:
    """openapi.yaml, bundled, narrowed to what this profile does where the vendors disagree:
    the caller's own copy of the one built per profile."""
    return copy.deepcopy(_narrowed(profile))


@cache
def _narrowed(profile: Profile) -> dict[str, Any]:
    document = bundle(API_DOCUMENT)
    for node in _described(document):
        node["description"] = without_profiles(node["description"])
    points = [narrow(document, profile) for narrow in NARROWINGS]
    _prune_schemas(document)
    document["info"]["description"] += (
        f"\n\nThis is the document an emulator serves in its '{profile.name}' profile, with its "
        f"own URL as the first server. {profile.description} Where the vendor's two documents "
        "disagree, it describes what this profile does and says so in the `description` "
        f"concerned: {'; '.join(points)}."
    )
    return document


# -- the steps, one per Profile field: each narrows the document and says how ------------------


def _bulk_methods(document: dict[str, Any], profile: Profile) -> str:
    """The bulk under the profile's methods only; a method it lacks is the single set's (PUT on
    ``.../agents/bulk`` is agent "bulk") or a 405."""
    bulk = document["paths"][BULK]
    named = _named(profile)
    methods = profile.bulk_methods
    takes = " and by ".join(methods) + (" only" if len(methods) == 1 else " alike")
    if not methods:
        takes = "no method"
    others = []
    for method in ("POST", "PUT"):
        if method in profile.bulk_methods:
            continue
        del bulk[method.lower()]
        if method.lower() in document["paths"][AGENT]:
            falls_through = _falls_through(method)
            others.append(falls_through)
            _say(document["paths"][AGENT][method.lower()], f"In {named}, {falls_through}.")
        else:
            others.append(f"a {method} on `.../agents/bulk` is answered 405 (`MethodNotAllowed`)")
    rest = "" if not others else "; " + "; ".join(others)
    for method in profile.bulk_methods:
        bulk[method.lower()]["description"] = (
            f"The bulk set by {method}, {BULK_METHOD_ORIGIN[method]} method. "
            f"{_capital(named)} takes the bulk set by {takes}{rest}."
        )
    if not profile.bulk_methods:
        del document["paths"][BULK]
    return f"the bulk set by {takes}{rest}"


def _falls_through(method: str) -> str:
    return (
        f"a {method} on `.../agents/bulk` is the single set (`setagentstatus`) of an agent whose "
        'id is `bulk`, not a bulk set (a bulk body is refused with 400, "agent-status is '
        'required.", a single-set body answered 404 unless such an agent exists)'
    )


def _single_set_request(document: dict[str, Any], profile: Profile) -> str:
    schema = _schema(document, "set-status-request")
    required = ["agent-status"]
    if profile.single_requires_status_codes:
        required += STATUS_CODE_FIELDS
        # Every field is required, so the "no reason code" branch cannot hold: no choice left.
        schema.pop("anyOf", None)
        optional = ""
    else:
        optional = ", the three status-code fields optional (list and item together)"
    schema["required"] = required
    point = f"a single set requires {_listing(required)}{optional}"
    _say(schema, f"In {_named(profile)}, {point}.")
    return point


def _bulk_entry(document: dict[str, Any], profile: Profile) -> str:
    schema = _schema(document, "bulk-entry")
    required = ["agent-id"]
    if profile.bulk_requires_agent_status:
        required.append("agent-status")
    if profile.bulk_requires_status_codes:
        required += STATUS_CODE_FIELDS
    schema["required"] = required
    point = f"a bulk entry requires {_listing(required)}"
    keeps = (
        ""
        if profile.bulk_requires_agent_status
        else "; an entry without agent-status keeps the agent's status and changes only its "
        "reason code"
    )
    _restate(schema, f"In {_named(profile)}, {point}{keeps}.", instead_of="This schema requires")
    return point


def _bulk_limit(document: dict[str, Any], profile: Profile) -> str:
    schema = _schema(document, "bulk-request")
    agents = schema["properties"]["agents"]
    if profile.bulk_limit is None:
        agents.pop("maxItems", None)
        point = "a bulk takes any number of entries (the reference's maxItems is not applied)"
        schema["description"] = schema["description"].replace(
            " over the limit, or with an entry of the wrong shape,",
            " with an entry of the wrong shape",
        )
        sentence = f"In {_named(profile)}, {point}; only the 1 MiB body limit (413) bounds it."
    else:
        agents["maxItems"] = profile.bulk_limit
        point = f"a bulk takes at most {profile.bulk_limit} entries"
        sentence = (
            f"In {_named(profile)}, {point} (the reference's maxItems; the guide states no limit)."
        )
    _restate(schema, sentence, instead_of="At most ")
    return point


def _single_success_body(document: dict[str, Any], profile: Profile) -> str:
    success = document["paths"][AGENT]["put"]["responses"]["200"]
    if not profile.single_success_body:
        del success["content"]
        success["description"] = "The status was changed; no body (as the reference describes)."
        point = "a single set answers 200 with no body and no Content-Type"
    else:
        point = "a single set answers 200 with the guide's body"
        _say(_schema(document, "set-status-response"), f"{_capital(_named(profile))} sends it.")
    _say(success, f"In {_named(profile)}, {point}.")
    return point


def _bulk_result_message(document: dict[str, Any], profile: Profile) -> str:
    schema = _schema(document, "bulk-result")
    if profile.bulk_result_message:
        schema["required"] = [*schema["required"], "message"]
        point = "every bulk result carries `message`"
    else:
        del schema["properties"]["message"]
        point = "a bulk result carries no `message`"
    _say(schema, f"In {_named(profile)}, {point}.")
    return point


def _tenant_forbidden(document: dict[str, Any], profile: Profile) -> str:
    forbidden = document["components"]["responses"]["Forbidden"]
    if not profile.tenant_forbidden_xml:
        point = "another tenant's path is answered 403 with Problem JSON"
        _say(forbidden, f"In {_named(profile)}, {point}.")
        return point
    for media_type in [key for key in forbidden["content"] if key != "application/xml"]:
        del forbidden["content"][media_type]
    forbidden["description"] = (
        "Valid credentials used on another tenant's path, or a tenant whose Agent Status API is "
        f"not enabled: the guide's XML body, exactly `{FORBIDDEN_XML}` (the only 403 "
        f"the guide shows), in {_named(profile)}."
    )
    return "every 403 (another tenant's path, a disabled API) is the guide's XML body"


def _error_media_type(document: dict[str, Any], profile: Profile) -> str:
    media_type = profile.error_media_type
    if media_type != PROBLEM_MEDIA_TYPE:
        retype_errors(document, media_type)
        for node in _described(document):
            node["description"] = node["description"].replace(PROBLEM_MEDIA_TYPE, media_type)
    point = f"Problem JSON errors are sent as `{media_type}`"
    _say(_schema(document, "problem"), f"In {_named(profile)}, {point}.")
    return point


def _group_filter(document: dict[str, Any], profile: Profile) -> str:
    listing = document["paths"][AGENTS]["get"]
    group = _parameter(listing, "groupId")
    agent_list = _schema(document, "agent-list")
    if profile.group_filter:
        point = "`groupId` filters the list"
        _say(group, f"In {_named(profile)}, it filters the list.")
    else:
        point = "`groupId` is ignored"
        group["description"] = (
            "The reference's group filter (the guide has none). Ignored in "
            f"{_named(profile)}: every agent is listed, whatever its value."
        )
        agent_list["description"] = agent_list["description"].replace(
            " (optionally of one group)", ""
        )
    return point


def _pagination(document: dict[str, Any], profile: Profile) -> str:
    listing = document["paths"][AGENTS]["get"]
    agent_list = _schema(document, "agent-list")
    named = _named(profile)
    size, index = _parameter(listing, "pageSize"), _parameter(listing, "pageIndex")
    if profile.pagination:
        size["schema"] = _query_number(1, MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE)
        index["schema"] = _query_number(0, int(MAX_SAFE_INTEGER), 0)
        number = "an integral number such as `2.0` is read as 2"
        _say(
            size,
            f"Honoured in {named}: 1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE}); {number}; "
            "any other value is refused with 400.",
        )
        _say(
            index,
            f"Honoured in {named}: 0 or more (default 0; a page past the last is empty); {number}; "
            "a negative or non-integral value is refused with 400.",
        )
        agent_list["required"] = [*agent_list["required"], "page"]
        point = (
            f"the list is paged by `pageSize` (1-{MAX_PAGE_SIZE}) and `pageIndex` and carries "
            "`page`"
        )
        _say(agent_list, f"In {named}, every list carries `page`.")
        _say(_schema(document, "page"), f"In {named}, every list carries it.")
        paging = f" A page of them: `pageSize` (default {DEFAULT_PAGE_SIZE}) from `pageIndex`."
    else:
        for parameter in (size, index):
            _say(parameter, f"Ignored in {named}: the list is never paged, whatever its value.")
        del agent_list["properties"]["page"]
        point = "`pageSize` and `pageIndex` are ignored and no list carries `page`"
        paging = " The list is not paged: `pageSize` and `pageIndex` are ignored."
    group = ", or only those of one group (`groupId`)" if profile.group_filter else ""
    listing["description"] = f"The tenant's agents in a stable order{group}.{paging}"
    return point


NARROWINGS: tuple[Callable[[dict[str, Any], Profile], str], ...] = (
    _bulk_methods,
    _single_set_request,
    _bulk_entry,
    _bulk_limit,
    _single_success_body,
    _bulk_result_message,
    _tenant_forbidden,
    _error_media_type,
    _group_filter,
    _pagination,
)
"""Every narrowing, in order (a 403's media types are narrowed before errors are retyped)."""


def retype_errors(document: dict[str, Any], media_type: str) -> None:
    """Declare every Problem JSON response of a bundled API document as ``media_type``."""
    responses: list[dict[str, Any]] = list(
        document.get("components", {}).get("responses", {}).values()
    )
    for path_item in document["paths"].values():
        for method, operation in path_item.items():
            if method in OPERATION_KEYS:
                responses.extend(operation.get("responses", {}).values())
    for response in responses:
        content = response.get("content", {})
        if PROBLEM_MEDIA_TYPE in content:
            content[media_type] = content.pop(PROBLEM_MEDIA_TYPE)


# -- descriptions ---------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`])")
_PARENTHESIS = re.compile(r"\s*\(([^()]*)\)")
_PROFILE = re.compile(r"\bprofiles?\b")


def without_profiles(text: str) -> str:
    """``text`` less what it says of the emulator's profiles: in parentheses, each ``;``
    clause naming a profile (the parentheses too, when none is left); elsewhere, each
    sentence naming one. A served document speaks of its own profile only."""
    if _PROFILE.search(text) is None:
        return text
    paragraphs = [re.sub(r"\s+", " ", paragraph).strip() for paragraph in text.split("\n\n")]
    kept = [_strip_paragraph(paragraph) for paragraph in paragraphs]
    return "\n\n".join(paragraph for paragraph in kept if paragraph)


def _strip_paragraph(paragraph: str) -> str:
    def clauses(match: re.Match[str]) -> str:
        if _PROFILE.search(match.group(1)) is None:
            return match.group(0)
        left = [c.strip() for c in match.group(1).split(";") if _PROFILE.search(c) is None]
        return f" ({'; '.join(left)})" if left else ""

    paragraph = _PARENTHESIS.sub(clauses, paragraph)
    sentences = _SENTENCE_END.split(paragraph)
    return " ".join(s for s in sentences if _PROFILE.search(s) is None)


def _described(node: Any) -> Iterator[dict[str, Any]]:
    """Every object of the document with a text ``description``."""
    if isinstance(node, dict):
        if isinstance(node.get("description"), str):
            yield node
        for value in node.values():
            yield from _described(value)
    elif isinstance(node, list):
        for value in node:
            yield from _described(value)


def _say(node: dict[str, Any], sentence: str) -> None:
    node["description"] = f"{node.get('description', '')} {sentence}".strip()


def _restate(node: dict[str, Any], sentence: str, *, instead_of: str) -> None:
    """Say ``sentence`` in place of the source's sentences that begin with ``instead_of``: what
    the source says of the union, this profile's document says of the profile."""
    sentences = _SENTENCE_END.split(node.get("description", ""))
    node["description"] = " ".join(s for s in sentences if not s.startswith(instead_of))
    _say(node, sentence)


def _named(profile: Profile) -> str:
    return f"the emulator's '{profile.name}' profile"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _listing(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


# -- schemas and parameters -----------------------------------------------------------------


def _schema(document: dict[str, Any], stem: str) -> dict[str, Any]:
    """A schema file's copy in the bundled document, by the file's stem (``bulk-entry``)."""
    name = "".join(part.capitalize() for part in stem.split("-"))
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


def _parameter(operation: dict[str, Any], name: str) -> dict[str, Any]:
    parameter: dict[str, Any] = next(p for p in operation["parameters"] if p.get("name") == name)
    return parameter


def _query_number(minimum: int, maximum: int, default: int) -> dict[str, Any]:
    """A query parameter the reference types ``number``, taken when integral and in range."""
    return {
        "type": "number",
        "multipleOf": 1,
        "minimum": minimum,
        "maximum": maximum,
        "default": default,
    }


def _prune_schemas(document: dict[str, Any]) -> None:
    """Drop the component schemas nothing refers to any more (``Page`` when no list is paged,
    ``SetStatusResponse`` when a single set has no body)."""
    schemas = document["components"]["schemas"]
    outside = {key: value for key, value in document.items() if key != "components"}
    outside["components"] = {k: v for k, v in document["components"].items() if k != "schemas"}
    wanted: set[str] = set()
    pending = _schema_refs(outside)
    while pending - wanted:
        name = min(pending - wanted)
        wanted.add(name)
        pending |= _schema_refs(schemas.get(name, {}))
    document["components"]["schemas"] = {k: v for k, v in schemas.items() if k in wanted}


def _schema_refs(node: Any) -> set[str]:
    """The component schemas ``node`` refers to, by name."""
    if isinstance(node, list):
        return {name for value in node for name in _schema_refs(value)}
    if not isinstance(node, dict):
        return set()
    found = {name for value in node.values() for name in _schema_refs(value)}
    reference = node.get("$ref")
    if isinstance(reference, str) and reference.startswith(SCHEMA_PREFIX):
        found.add(reference.removeprefix(SCHEMA_PREFIX).split("/")[0])
    return found
