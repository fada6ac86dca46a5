"""The document each profile serves at ``/openapi.json`` says what that profile does.

For every profile, a body (or a query) the served document's schemas accept is taken by the
emulator in that profile (never a 400 for its shape), and one they refuse is refused with 400:
each case is judged twice, by ``jsonschema`` against the served document and by the emulator,
and the two verdicts must agree. The expected verdicts are stated as well, so a document and an
emulator that went wrong together still fail. The descriptions speak of the profile served only.
Schemathesis runs every check on the 'guide' and 'reference' documents, as
``test_contract_schemathesis`` does on the default one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from conftest import (
    DISABLED_TENANT,
    OTHER_TENANT,
    Api,
    api_path,
    basic,
    flask_api,
)
from flask import Flask
from hypothesis import HealthCheck, settings
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from schemathesis import Case
from schemathesis.specs.openapi.checks import allow_header_conformance
from schemathesis.specs.openapi.schemas import OpenApiSchema
from test_contract_schemathesis import (
    api_url,
    domain_valid,
    is_positive_single_set,
    pinned_schema,
    reset,
)

from mock_server import create_app
from mock_server.core.profiles import PROFILES
from mock_server.http.profile_document import profile_document
from mock_server.serving.threaded import RunningServer, start_in_thread
from schemas.contract import ContractValidator
from schemas.wire import AGENT, AGENTS, BULK

DOCUMENT_URI = "urn:agentstatus-twin:served"
PADMA = "ag64oyEUb_Sk6bxVB9P5yaaa"
BOB = "agAQDqmvKiRbG4ekigNSmbbb"
LIST_ID, ITEM_ID = {"status-code-list-id": 801}, {"status-code-item-id": 1725}
LUNCH = {**LIST_ID, **ITEM_ID, "status-code-item-short-code": "Lunch"}
ALL = frozenset(PROFILES)
DEFAULT_AND_REFERENCE = frozenset({"default", "reference"})
DEFAULT_AND_GUIDE = frozenset({"default", "guide"})
NONE: frozenset[str] = frozenset()
DISABLED_CREDENTIALS = basic("initechapi", "initech-demo-token")

# A single set's body (to PADMA, 5 OTHER_WORK, group 100 with list 801) and who takes it.
SINGLE_BODIES: dict[str, tuple[dict[str, Any], frozenset[str]]] = {
    "status only": ({"agent-status": 3}, DEFAULT_AND_REFERENCE),
    "status and all three codes": ({"agent-status": 3, **LUNCH}, ALL),
    "status, list and item": ({"agent-status": 3, **LIST_ID, **ITEM_ID}, DEFAULT_AND_REFERENCE),
    "an integral float status": ({"agent-status": 3.0, **LUNCH}, ALL),
    "an unknown member": ({"agent-status": 3, **LUNCH, "colour": "blue"}, ALL),
    "codes without status": (LUNCH, NONE),
    "a list without its item": ({"agent-status": 3, **LIST_ID}, NONE),
    "a null code": ({"agent-status": 3, **LUNCH, "status-code-item-id": None}, NONE),
    "an unsettable status": ({"agent-status": 2, **LUNCH}, NONE),
    "a status as text": ({"agent-status": "3", **LUNCH}, NONE),
    "an empty object": ({}, NONE),
}


def bulk(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"agents": list(entries)}


# A bulk body and who takes it (a taken body is answered 207, whatever each entry's result).
BULK_BODIES: dict[str, tuple[dict[str, Any], frozenset[str]]] = {
    "entry with status only": (bulk({"agent-id": PADMA, "agent-status": 3}), DEFAULT_AND_REFERENCE),
    "entry with codes only": (bulk({"agent-id": PADMA, **LUNCH}), DEFAULT_AND_GUIDE),
    "entry with everything": (bulk({"agent-id": PADMA, "agent-status": 3, **LUNCH}), ALL),
    "entry with a list alone": (bulk({"agent-id": PADMA, **LIST_ID}), frozenset({"default"})),
    "no entries": (bulk(), ALL),
    "100 entries": (bulk(*[{"agent-id": BOB, "agent-status": 4, **LUNCH}] * 100), ALL),
    "101 entries": (
        bulk(*[{"agent-id": BOB, "agent-status": 4, **LUNCH}] * 101),
        frozenset({"guide"}),
    ),
    "entry without agent-id": (bulk({"agent-status": 3, **LUNCH}), NONE),
    "entry with a numeric agent-id": (bulk({"agent-id": 5, "agent-status": 3, **LUNCH}), NONE),
    "entry with a null status": (bulk({"agent-id": PADMA, "agent-status": None, **LUNCH}), NONE),
    "no agents member": ({"agent-id": PADMA, "agent-status": 3, **LUNCH}, NONE),
}

# A list query and whether the reference profile takes it; the others take every one.
LIST_QUERIES: dict[str, bool] = {
    "pageSize=8": True,
    "pageSize=8.0": True,
    "pageSize=1e1&pageIndex=0e0": True,
    "pageSize=500&pageIndex=3": True,
    "pageIndex=1.0": True,
    "groupId=300&pageSize=2": True,
    "pageSize=0": False,
    "pageSize=501": False,
    "pageSize=2.5": False,
    "pageSize=ten": False,
    "pageSize=NaN": False,
    "pageIndex=-1": False,
    "pageIndex=0.5": False,
    "pageIndex=9007199254740992": False,
}


def served(profile: str) -> tuple[Flask, dict[str, Any]]:
    """A fresh emulator in ``profile`` (validating its responses) and the document it serves."""
    app = create_app(profile=profile, validate_responses=True)
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.get_json()
    return app, document


def _pointer(*segments: str) -> str:
    return "/" + "/".join(quote(s.replace("~", "~0").replace("/", "~1"), safe="") for s in segments)


def request_schema(document: dict[str, Any], method: str, path: str) -> Draft202012Validator:
    """The served document's JSON request body schema of an operation, ready to validate."""
    body = document["paths"][path][method.lower()]["requestBody"]
    where = _pointer("paths", path, method.lower(), "requestBody")
    if "$ref" in body:
        where = body["$ref"].removeprefix("#")
    resource: Resource[Any] = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)
    location = f"{DOCUMENT_URI}#{where}{_pointer('content', 'application/json', 'schema')}"
    return Draft202012Validator({"$ref": location}, registry=registry)


def bulk_methods(document: dict[str, Any]) -> list[str]:
    return [method.upper() for method in document["paths"][BULK] if method in ("put", "post")]


def query_value(schema: dict[str, Any], text: str) -> object:
    """A query parameter's value as OpenAPI reads it for its schema: a number where the schema
    types one and the text is a JSON number, else the text itself."""
    if schema.get("type") not in ("number", "integer"):
        return text

    def not_a_number(constant: str) -> object:
        raise ValueError(constant)

    try:
        value = json.loads(text, parse_constant=not_a_number)
    except ValueError:
        return text
    return value if isinstance(value, int | float) and not isinstance(value, bool) else text


def query_accepted(document: dict[str, Any], query: str) -> bool:
    parameters = {p["name"]: p for p in document["paths"][AGENTS]["get"]["parameters"]}
    for pair in query.split("&"):
        name, _, text = pair.partition("=")
        schema = parameters[name]["schema"]
        if not Draft202012Validator(schema).is_valid(query_value(schema, text)):
            return False
    return True


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("case", SINGLE_BODIES)
def test_a_single_set_body_is_taken_exactly_when_the_served_schema_accepts_it(
    profile: str, case: str
) -> None:
    body, takers = SINGLE_BODIES[case]
    app, document = served(profile)
    accepted = request_schema(document, "PUT", AGENT).is_valid(body)
    reply = flask_api(app.test_client()).put(api_path(suffix=f"/{PADMA}"), body)
    assert (accepted, reply.status) == ((True, 200) if accepted else (False, 400)), reply.text
    assert accepted == (profile in takers)


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("case", BULK_BODIES)
def test_a_bulk_body_is_taken_exactly_when_the_served_schema_accepts_it(
    profile: str, case: str
) -> None:
    body, takers = BULK_BODIES[case]
    app, document = served(profile)
    methods = bulk_methods(document)
    assert sorted(methods) == sorted(PROFILES[profile].bulk_methods)
    for method in methods:
        accepted = request_schema(document, method, BULK).is_valid(body)
        reply = flask_api(app.test_client()).request(
            method, api_path(suffix="/bulk"), json_body=body
        )
        assert (accepted, reply.status) == ((True, 207) if accepted else (False, 400)), reply.text
        assert accepted == (profile in takers), method


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("query", LIST_QUERIES)
def test_a_list_query_is_taken_exactly_when_the_served_parameters_accept_it(
    profile: str, query: str
) -> None:
    app, document = served(profile)
    accepted = query_accepted(document, query)
    reply = flask_api(app.test_client()).get(f"{api_path()}?{query}")
    assert (accepted, reply.status) == ((True, 200) if accepted else (False, 400)), reply.text
    assert accepted == (LIST_QUERIES[query] or profile != "reference")


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_an_ignored_list_parameter_is_described_as_ignored(profile: str) -> None:
    """``groupId``, ``pageSize`` and ``pageIndex``: each is described as ignored exactly when
    the emulator answers the same list with it as without it."""
    app, document = served(profile)
    api = flask_api(app.test_client())
    everyone = api.get(api_path()).json()
    parameters = {p["name"]: p for p in document["paths"][AGENTS]["get"]["parameters"]}
    for name, value in (("groupId", "300"), ("pageSize", "2"), ("pageIndex", "1")):
        ignored = api.get(f"{api_path()}?{name}={value}").json() == everyone
        assert ("Ignored in" in parameters[name]["description"]) == ignored, name
    page = document["components"]["schemas"].get("AgentList", {})
    assert ("page" in page["properties"]) == ("page" in everyone)
    assert ("page" in page["required"]) == ("page" in everyone)


def response_schema(document: dict[str, Any], name: str) -> Draft202012Validator:
    resource: Resource[Any] = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)
    return Draft202012Validator(
        {"$ref": f"{DOCUMENT_URI}#/components/schemas/{name}"}, registry=registry
    )


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_the_served_responses_are_the_profiles_own(profile: str) -> None:
    """A bulk result has ``message`` exactly when the profile sends it; a list carries ``page``
    exactly when it pages; another tenant's 403 is in the media types the document lists."""
    chosen = PROFILES[profile]
    app, document = served(profile)
    api = flask_api(app.test_client())
    with_message = {"agent-id": PADMA, "reason": "OK", "change-status": 200}
    with_message["message"] = "Agent status change successful"
    without = {key: value for key, value in with_message.items() if key != "message"}
    result = response_schema(document, "BulkResult")
    assert (result.is_valid(with_message), result.is_valid(without)) == (
        chosen.bulk_result_message,
        not chosen.bulk_result_message,
    )
    forbidden = document["components"]["responses"]["Forbidden"]["content"]
    expected = {"application/xml"} | (
        set() if chosen.tenant_forbidden_xml else {chosen.error_media_type}
    )
    assert set(forbidden) == expected
    for reply in (
        api.get(api_path(OTHER_TENANT)),
        api.get(api_path(DISABLED_TENANT), credentials=DISABLED_CREDENTIALS),
    ):
        assert reply.status == 403
        assert reply.headers["Content-Type"].split(";")[0] in forbidden


def test_a_reference_put_on_bulk_is_documented_as_the_single_set_of_agent_bulk() -> None:
    app, document = served("reference")
    validator = ContractValidator(document)
    route = validator.route("PUT", "/tenants/acmecorp01/agentstatus/agents/bulk")
    assert route is not None
    assert route.operation_id == "setagentstatus"
    assert "put" not in document["paths"][BULK]
    single = document["paths"][AGENT]["put"]["description"]
    assert "`.../agents/bulk` is the single set" in single
    api: Api = flask_api(app.test_client())
    bulk_body = bulk({"agent-id": PADMA, "agent-status": 3})
    assert not request_schema(document, "PUT", AGENT).is_valid(bulk_body)
    reply = api.put(api_path(suffix="/bulk"), bulk_body)
    assert (reply.status, reply.json()["detail"]) == (400, "agent-status is required.")
    assert api.put(api_path(suffix="/bulk"), {"agent-status": 3}).status == 404


def descriptions(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("description"), str):
            yield node["description"]
        for value in node.values():
            yield from descriptions(value)
    elif isinstance(node, list):
        for value in node:
            yield from descriptions(value)


PROFILE_MENTION = re.compile(r"'(\w+)' profiles?|\b(\w+) (?:and '\w+' )?profiles?\b")


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_the_served_descriptions_name_no_other_profile(profile: str) -> None:
    _, document = served(profile)
    named = {
        name
        for text in descriptions(document)
        for match in PROFILE_MENTION.finditer(text)
        for name in match.groups()
        if name in PROFILES
    }
    assert named == {profile}


def served_schema(profile: str) -> OpenApiSchema:
    """The profile's served document for Schemathesis, pinned as the default one is."""
    return pinned_schema(profile_document(PROFILES[profile]))


guide_schema = served_schema("guide")
reference_schema = served_schema("reference")


@pytest.fixture(scope="module")
def profile_servers() -> Iterator[dict[str, RunningServer]]:
    with (
        start_in_thread(create_app(profile="guide", validate_responses=True)) as guide,
        start_in_thread(create_app(profile="reference", validate_responses=True)) as reference,
    ):
        yield {"guide": guide, "reference": reference}


def check_served(case: Case[Any], server: RunningServer, falls_through: bool) -> None:
    """Every check; but ``Allow`` on ``OPTIONS .../agents/bulk`` where a method the bulk lacks
    is the single set's (PUT on agent "bulk"): OpenAPI cannot say a concrete path falls through
    to a template, and the check reads only the concrete path's methods."""
    reset(server)
    if is_positive_single_set(case):
        domain_valid(case, server)
    excluded = []
    if falls_through and case.method == "OPTIONS" and case.operation.path == BULK:
        excluded.append(allow_header_conformance)
    case.call_and_validate(base_url=api_url(server), excluded_checks=excluded)


@guide_schema.parametrize()
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_guide_document_passes_every_check(
    case: Case[Any], profile_servers: dict[str, RunningServer]
) -> None:
    check_served(case, profile_servers["guide"], falls_through=False)


@reference_schema.parametrize()
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_reference_document_passes_every_check(
    case: Case[Any], profile_servers: dict[str, RunningServer]
) -> None:
    check_served(case, profile_servers["reference"], falls_through=True)


def test_each_caller_gets_its_own_copy_of_a_profile_document() -> None:
    first = profile_document(PROFILES["reference"])
    first["paths"].clear()
    assert profile_document(PROFILES["reference"])["paths"]
