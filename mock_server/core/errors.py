"""Every error the emulator can answer, one class each, carrying its status and reason.

The backend raises them; one renderer (``mock_server.http.problems``) answers them, as
RFC 7807 Problem JSON, or as the guide's XML body for the "API not enabled" 403.
Views never build an error body themselves.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from http import HTTPStatus
from types import MappingProxyType

EXCERPT_LENGTH = 40
"""How much of a value an error message quotes."""


def excerpt(value: object, limit: int = EXCERPT_LENGTH) -> str:
    """The start of ``value`` as Python prints it, at most ``limit`` characters (``...`` when
    cut): built only as far as it is shown, so any depth or size of a parsed body is safe
    (``repr`` recurses, and refuses integers of more than 4,300 digits)."""
    shown: list[str] = []
    length = 0
    for token in _tokens(value, limit):
        shown.append(token)
        length += len(token)
        if length > limit:
            return "".join(shown)[: limit - 3] + "..."
    return "".join(shown)


class _Text(str):
    """A piece of punctuation in ``_tokens``' work list, as opposed to a value."""


def _tokens(value: object, limit: int) -> Iterator[str]:
    pending: list[object] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, _Text):
            yield item
        elif isinstance(item, dict):
            parts: list[object] = [_Text("{")]
            for number, (key, member) in enumerate(item.items()):
                if number * 4 > limit:
                    parts.append(_Text(", ..."))
                    break
                parts += [_Text(", ")] if number else []
                parts += [key, _Text(": "), member]
            pending += reversed([*parts, _Text("}")])
        elif isinstance(item, list | tuple):
            parts = [_Text("[")]
            for number, member in enumerate(item):
                if number * 3 > limit:
                    parts.append(_Text(", ..."))
                    break
                parts += [_Text(", "), member] if number else [member]
            pending += reversed([*parts, _Text("]")])
        elif isinstance(item, str):
            yield repr(item[: limit + 1]) if len(item) > limit else repr(item)
        elif isinstance(item, int) and not isinstance(item, bool) and item.bit_length() > 128:
            yield f"<an integer of {item.bit_length()} bits>"
        else:
            yield repr(item)


class ApiError(Exception):
    """Base of every refusal. ``detail`` names exactly what was wrong."""

    status: int = HTTPStatus.INTERNAL_SERVER_ERROR
    headers: Mapping[str, str] = MappingProxyType({})
    """Sent with the error's answer; read-only, as a class default is shared."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidRequest(ApiError):
    """400: malformed JSON, wrong types, unknown or unsettable values, refused transitions."""

    status = HTTPStatus.BAD_REQUEST


class AuthenticationFailed(ApiError):
    """401: missing, malformed or wrong Basic credentials."""

    status = HTTPStatus.UNAUTHORIZED
    headers = MappingProxyType(
        {"WWW-Authenticate": 'Basic realm="8x8 Agent Status API", charset="UTF-8"'}
    )


class TenantForbidden(ApiError):
    """403: valid credentials used on a tenant path that is not theirs (reference wording)."""

    status = HTTPStatus.FORBIDDEN

    def __init__(self, detail: str = "You are not authorized to access this tenant.") -> None:
        super().__init__(detail)


class ApiNotEnabled(ApiError):
    """403 with the guide's XML body: the tenant's Agent Status API is switched off."""

    status = HTTPStatus.FORBIDDEN

    def __init__(
        self, detail: str = "The Agent Status API is not enabled for this tenant."
    ) -> None:
        super().__init__(detail)


class AgentNotFound(ApiError):
    """404: the agent id is not one of the tenant's agents."""

    status = HTTPStatus.NOT_FOUND

    def __init__(self, agent_id: str) -> None:
        super().__init__(f"The agent does not exist: '{agent_id}'.")
        self.agent_id = agent_id


class TenantNotFound(ApiError):
    """404 on the control plane: no tenant by that id."""

    status = HTTPStatus.NOT_FOUND

    def __init__(self, tenant_id: str) -> None:
        super().__init__(f"The tenant does not exist: '{tenant_id}'.")


class RouteNotFound(ApiError):
    """404: no operation at this path (unknown API version or path)."""

    status = HTTPStatus.NOT_FOUND


class MethodNotAllowed(ApiError):
    """405: the path exists but not with this method; ``Allow`` lists the methods it has."""

    status = HTTPStatus.METHOD_NOT_ALLOWED

    def __init__(self, detail: str, allowed: list[str]) -> None:
        super().__init__(detail)
        self.headers = MappingProxyType({"Allow": ", ".join(sorted(allowed))})


class PayloadTooLarge(ApiError):
    """413: the body is over the emulator's size limit."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class UnsupportedMediaType(ApiError):
    """415: a write whose body is not declared as JSON."""

    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE


class AdminForbidden(ApiError):
    """403 on the control plane: the X-Admin-Token header is missing or wrong."""

    status = HTTPStatus.FORBIDDEN


class ResponseContractViolation(ApiError):
    """500 in --validate-responses mode: the emulator was about to break its own contract."""

    status = HTTPStatus.INTERNAL_SERVER_ERROR
