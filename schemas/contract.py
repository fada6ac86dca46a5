"""Checking one HTTP response against an OpenAPI document: status, headers, media type, body.

The emulator's ``--validate-responses`` mode, the test suite and ``python -m schemas validate``
all use this one implementation, so "conforms to the contract" means the same everywhere.
Validators are compiled once, when a ``ContractValidator`` is built.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOCUMENT_URI = "urn:agentstatus-twin:openapi"
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


def is_json_media_type(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


class ContractValidator:
    """One OpenAPI document, ready to judge responses to its operations."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        resource: Resource[Any] = Resource.from_contents(document, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)
        self._operations = {(op.method, op.path): op for op in self._read_operations()}
        self._by_id = {op.operation_id: op for op in self._operations.values()}
        self._validators: dict[str, Draft202012Validator] = {}
        for location, schema in self._response_schemas():
            self._validators[location] = self._compile(location, schema)

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

    def _response_schemas(self) -> Iterator[tuple[str, Any]]:
        """Every media-type schema and header schema of every response, with its location."""
        found = [
            (_pointer("paths", op.path, op.method.lower(), "responses", code), response)
            for op in self._operations.values()
            for code, response in op.responses.items()
        ] + [
            (_pointer("components", "responses", name), response)
            for name, response in self.document.get("components", {})
            .get("responses", {})
            .items()
        ]
        for location, response in found:
            resolved = self.resolve(response)
            for media_type, media in resolved.get("content", {}).items():
                if "schema" in media:
                    yield self._media_key(resolved, media_type), media["schema"]
            for name, header in resolved.get("headers", {}).items():
                header = self.resolve(header)
                if "schema" in header:
                    yield self._header_key(resolved, name), header["schema"]
            del location

    def _media_key(self, response: Mapping[str, Any], media_type: str) -> str:
        return f"{id(response)}:media:{media_type}"

    def _header_key(self, response: Mapping[str, Any], name: str) -> str:
        return f"{id(response)}:header:{name.lower()}"

    def _compile(self, location: str, schema: Any) -> Draft202012Validator:
        del location
        # A schema that $refs into the document is entered through the document's URI, so
        # its own "#/components/..." references resolve against the whole document.
        wrapper = {"$ref": f"{DOCUMENT_URI}#{self._locate(schema)}"} if "$ref" in schema else schema
        return Draft202012Validator(
            wrapper, registry=self._registry, format_checker=Draft202012Validator.FORMAT_CHECKER
        )

    def _locate(self, schema: Mapping[str, Any]) -> str:
        reference = str(schema["$ref"])
        if not reference.startswith("#/"):
            raise ValueError(f"the document is not bundled: $ref {reference!r}")
        return _pointer(*(part.replace("~1", "/").replace("~0", "~") for part in reference[2:].split("/")))

    def resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        """A response or header object, following a local ``$ref``."""
        while "$ref" in node:
            reference = str(node["$ref"])
            if not reference.startswith("#/"):
                raise ValueError(f"the document is not bundled: $ref {reference!r}")
            target: Any = self.document
            for part in reference[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    # -- lookups ---------------------------------------------------------------------------

    @property
    def operations(self) -> list[Operation]:
        return list(self._operations.values())

    def operation(self, method: str, path: str) -> Operation | None:
        """The operation at a path template; a HEAD request is answered by its GET."""
        method = "GET" if method.upper() == "HEAD" else method.upper()
        return self._operations.get((method, path))

    def operation_by_id(self, operation_id: str) -> Operation:
        try:
            return self._by_id[operation_id]
        except KeyError:
            known = ", ".join(sorted(self._by_id))
            raise KeyError(f"no operation {operation_id!r}; the document has: {known}") from None

    def response_for(self, operation: Operation | None, status: int) -> Mapping[str, Any] | None:
        """The response object the document declares for this status, or None."""
        if operation is None:
            name = UNROUTED_RESPONSES.get(status)
            responses = self.document.get("components", {}).get("responses", {})
            return self.resolve(responses[name]) if name in responses else None
        for key in (str(status), f"{str(status)[0]}XX", "default"):
            if key in operation.responses:
                return self.resolve(operation.responses[key])
        return None

    # -- judging ---------------------------------------------------------------------------

    def violations(
        self,
        operation: Operation | None,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
    ) -> list[str]:
        """Every way this response breaks the document; empty when it conforms.

        ``operation`` None means the request matched no operation (judged against the
        document's ``RouteNotFound`` / ``MethodNotAllowed`` responses).
        """
        where = "no operation" if operation is None else operation.operation_id
        response = self.response_for(operation, status)
        if response is None:
            return [f"status {status} is not declared for {where}"]
        lowered = {name.lower(): value for name, value in headers.items()}
        problems = list(self._header_violations(response, lowered))
        content = response.get("content", {})
        if not content:
            if body:
                problems.append(f"{where} {status} declares no body, but {len(body)} bytes came")
            return problems
        media_type = lowered.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in content:
            declared = ", ".join(content)
            problems.append(
                f"{where} {status}: Content-Type {media_type or '(none)'!r} is not one of "
                f"{declared}"
            )
            return problems
        problems.extend(self._body_violations(response, media_type, body, f"{where} {status}"))
        return problems

    def _header_violations(
        self, response: Mapping[str, Any], headers: Mapping[str, str]
    ) -> Iterator[str]:
        for name, header in response.get("headers", {}).items():
            header = self.resolve(header)
            value = headers.get(name.lower())
            if value is None:
                if header.get("required", False):
                    yield f"required header {name} is missing"
                continue
            validator = self._validators.get(self._header_key(response, name))
            error = None if validator is None else best_match(validator.iter_errors(value))
            if error is not None:
                yield f"header {name}: {error.message}"

    def _body_violations(
        self, response: Mapping[str, Any], media_type: str, body: bytes, where: str
    ) -> Iterator[str]:
        validator = self._validators.get(self._media_key(response, media_type))
        if validator is None:
            return
        instance: Any
        if is_json_media_type(media_type):
            try:
                instance = json.loads(body)
            except ValueError as error:
                yield f"{where}: the body is not JSON: {error}"
                return
        else:
            instance = body.decode("utf-8", errors="replace")
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.path)):
            yield f"{where}: body {error.json_path}: {error.message}"
