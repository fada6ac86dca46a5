"""Checking one HTTP response against an OpenAPI document: status, headers, media type, body.

The emulator's ``--validate-responses`` mode, the test suite and ``python -m schemas validate``
all use this one implementation, so "conforms to the contract" means the same everywhere.
Validators are compiled once, when a ``ContractValidator`` is built.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOCUMENT_URI = "urn:agentstatus-twin:openapi"
MAX_BODY_VIOLATIONS = 10
MAX_MESSAGE = 200
"""Characters of a parser's or validator's message a violation quotes."""
"""A body is judged up to this many violations: a list of 50,000 agents that all break one
rule is one finding, not 50,000 (and not minutes of validation)."""
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# Responses for requests that match no operation, looked up in components.responses.
UNROUTED_RESPONSES = {404: "RouteNotFound", 405: "MethodNotAllowed"}


@dataclass(frozen=True)
class Operation:
    method: str
    """Upper case, e.g. ``PUT``."""
    path: str
    """The document's path template, e.g. ``/tenants/{tenantId}/agentstatus/agents``."""
    operation_id: str
    responses: Mapping[str, Any]


def _pointer(*segments: str) -> str:
    """A URI fragment (JSON pointer) for the given object keys."""
    escaped = (quote(s.replace("~", "~0").replace("/", "~1"), safe="") for s in segments)
    return "/" + "/".join(escaped)


def media_type_of(content_type: str | None) -> str:
    """``application/json``, lower case, without parameters; empty when none is given."""
    return (content_type or "").split(";")[0].strip().lower()


def declared_media_type(content: Mapping[str, Any], media_type: str) -> str | None:
    """The key of ``content`` that describes ``media_type``: itself, else its range
    (``application/*``), else ``*/*`` (OpenAPI's media type ranges); None when none does."""
    ranges = [media_type, media_type.split("/")[0] + "/*"] if media_type else []
    return next((key for key in [*ranges, "*/*"] if key in content), None)


def is_json_media_type(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


class ContractValidator:
    """One OpenAPI document, ready to judge responses to its operations."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = copy.deepcopy(document)
        resource: Resource[Any] = Resource.from_contents(
            self.document, default_specification=DRAFT202012
        )
        self._registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)
        self._operations = {(op.method, op.path): op for op in self._read_operations()}
        self._by_id = {op.operation_id: op for op in self._operations.values()}
        self._validators = {
            location: self._compile(location) for location in self._schema_locations()
        }

    def _read_operations(self) -> Iterator[Operation]:
        for path, item in self.document.get("paths", {}).items():
            for method in HTTP_METHODS:
                if method in item:
                    operation = item[method]
                    yield Operation(
                        method=method.upper(),
                        path=path,
                        operation_id=operation["operationId"],
                        responses=operation.get("responses", {}),
                    )

    def _schema_locations(self) -> Iterator[str]:
        """The pointer of every media-type and header schema of every response."""
        responses = [
            _pointer("paths", op.path, op.method.lower(), "responses", code)
            for op in self._operations.values()
            for code in op.responses
        ] + [
            _pointer("components", "responses", name)
            for name in self.document.get("components", {}).get("responses", {})
        ]
        for location in responses:
            where, response = self._follow(location)
            for media_type, media in response.get("content", {}).items():
                if "schema" in media:
                    yield _pointer(*where, "content", media_type, "schema")
            for name in response.get("headers", {}):
                header_where, header = self._follow(_pointer(*where, "headers", name))
                if "schema" in header:
                    yield _pointer(*header_where, "schema")

    def _compile(self, location: str) -> Draft202012Validator:
        # Entered through the document's URI, so "#/components/..." resolves in the document.
        return Draft202012Validator(
            {"$ref": f"{DOCUMENT_URI}#{location}"},
            registry=self._registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )

    def _follow(self, location: str) -> tuple[list[str], Mapping[str, Any]]:
        """The object at a pointer, following local ``$ref``s: its key path and itself."""
        keys = [
            unquote(part).replace("~1", "/").replace("~0", "~") for part in location.split("/")[1:]
        ]
        node: Any = self.document
        for key in keys:
            node = node[key]
        while "$ref" in node:
            reference = str(node["$ref"])
            if not reference.startswith("#/"):
                raise ValueError(f"the document is not bundled: $ref {reference!r}")
            return self._follow(reference[1:])
        return keys, node

    # -- lookups ---------------------------------------------------------------------------

    @property
    def operations(self) -> list[Operation]:
        return list(self._operations.values())

    def operation(self, method: str, path: str) -> Operation | None:
        """The operation at a path template; a HEAD request is answered by its GET."""
        method = "GET" if method.upper() == "HEAD" else method.upper()
        return self._operations.get((method, path))

    def route(self, method: str, path: str) -> Operation | None:
        """The operation a concrete path (below the server URL, query ignored) reaches with
        this method: among the templates that match it, the one with the most literal
        segments (``.../agents/bulk`` before ``.../agents/{agentId}``)."""
        method = "GET" if method.upper() == "HEAD" else method.upper()
        segments = [unquote(part) for part in path.split("?")[0].strip("/").split("/")]
        best: tuple[int, Operation] | None = None
        for (candidate_method, template), operation in self._operations.items():
            parts = template.strip("/").split("/")
            if candidate_method != method or len(parts) != len(segments):
                continue
            if all(p.startswith("{") or p == s for p, s in zip(parts, segments, strict=True)):
                literal = sum(not part.startswith("{") for part in parts)
                if best is None or literal > best[0]:
                    best = (literal, operation)
        return None if best is None else best[1]

    def operation_by_id(self, operation_id: str) -> Operation:
        try:
            return self._by_id[operation_id]
        except KeyError:
            known = ", ".join(sorted(self._by_id))
            raise KeyError(f"no operation {operation_id!r}; the document has: {known}") from None

    def _response_location(self, operation: Operation | None, status: int) -> str | None:
        """Where the document declares the response for this status, or None."""
        if operation is None:
            name = UNROUTED_RESPONSES.get(status)
            declared = self.document.get("components", {}).get("responses", {})
            if name is None or name not in declared:
                return None
            return _pointer("components", "responses", name)
        for key in (str(status), f"{str(status)[0]}XX", "default"):
            if key in operation.responses:
                return _pointer("paths", operation.path, operation.method.lower(), "responses", key)
        return None

    # -- judging ---------------------------------------------------------------------------

    def violations(
        self,
        operation: Operation | None,
        status: int,
        body: bytes,
        *,
        content_type: str | None,
        headers: Mapping[str, str] | None,
    ) -> list[str]:
        """Every way this response breaks the document; empty when it conforms.

        ``operation`` None means the request matched no operation: it is judged against the
        document's ``RouteNotFound`` / ``MethodNotAllowed`` responses. ``headers`` None means
        they are unknown (a saved body), so only the status, media type and body are judged.
        """
        where = "no operation" if operation is None else operation.operation_id
        location = self._response_location(operation, status)
        if location is None:
            return [f"status {status} is not declared for {where}"]
        keys, response = self._follow(location)
        problems = []
        if headers is not None:
            lowered = {name.lower(): value for name, value in headers.items()}
            problems = [
                f"{where} {status}: {problem}"
                for problem in self._header_violations(keys, response, lowered)
            ]
        content = response.get("content", {})
        media_type = media_type_of(content_type)
        declared = declared_media_type(content, media_type)
        if not content:
            if body:
                problems.append(f"{where} {status} declares no body, but {len(body)} bytes came")
        elif declared is None:
            problems.append(
                f"{where} {status}: Content-Type {media_type or '(none)'!r} is not one of "
                f"{', '.join(content)}"
            )
        elif "schema" in content[declared]:
            validator = self._validators[_pointer(*keys, "content", declared, "schema")]
            problems.extend(
                f"{where} {status}: {problem}"
                for problem in _body_violations(validator, media_type, body)
            )
        return problems

    def answer_violations(
        self, operation: Operation | None, status: int, body: bytes, headers: Mapping[str, str]
    ) -> list[str]:
        """``violations`` of an answer whose headers are all known, its media type read from
        its ``Content-Type`` header in any letter case."""
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
        return self.violations(operation, status, body, content_type=content_type, headers=headers)

    def _header_violations(
        self, keys: list[str], response: Mapping[str, Any], headers: Mapping[str, str]
    ) -> Iterator[str]:
        for name in response.get("headers", {}):
            header_keys, header = self._follow(_pointer(*keys, "headers", name))
            value = headers.get(name.lower())
            if value is None:
                if header.get("required", False):
                    yield f"the required header {name} is missing"
                continue
            if "schema" in header:
                validator = self._validators[_pointer(*header_keys, "schema")]
                error = best_match(validator.iter_errors(value))
                if error is not None:
                    yield f"header {name}: {error.message}"


def _body_violations(
    validator: Draft202012Validator, media_type: str, body: bytes
) -> Iterator[str]:
    instance: Any
    if is_json_media_type(media_type):
        try:
            instance = json.loads(body)
        except RecursionError:
            yield "the body nests too deep to be read as JSON"
            return
        except ValueError as unreadable:
            # The first clause only: no advice to call sys.set_int_max_str_digits.
            yield f"the body is not JSON: {str(unreadable).split(';')[0][:MAX_MESSAGE]}"
            return
    else:
        instance = body.decode("utf-8", errors="replace")
    errors = list(itertools.islice(validator.iter_errors(instance), MAX_BODY_VIOLATIONS + 1))
    for error in sorted(errors[:MAX_BODY_VIOLATIONS], key=lambda e: e.json_path):
        yield f"body {error.json_path[:MAX_MESSAGE]}: {error.message[:MAX_MESSAGE]}"
    if len(errors) > MAX_BODY_VIOLATIONS:
        yield f"body: more than {MAX_BODY_VIOLATIONS} violations, the rest not listed"
