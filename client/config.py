"""Where the client connects and as whom: a base URL or a platform name, and the
``AGENTSTATUS_*`` environment. Every mistake here is a ``ConfigurationError``, raised before
anything is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict
from urllib.parse import urlsplit

from client.errors import ConfigurationError
from schemas import wire
from schemas.wire import (
    ENV_BASE_URL,
    ENV_PLATFORM,
    ENV_TENANT,
    ENV_TOKEN,
    ENV_USERNAME,
    UnknownPlatform,
)


class Connection(TypedDict):
    """The client's connection arguments, as the environment gives them."""

    base_url: str | None
    platform: str | None
    tenant: str
    username: str
    token: str


def platform_url(name: str) -> str:
    """The base URL of a platform named as the vendor does (``na12``, ``EU7``, ``bc2``)."""
    try:
        return wire.platform_url(name)
    except UnknownPlatform as unknown:
        raise ConfigurationError(str(unknown)) from None


def base_url_of(base_url: str | None, platform: str | None) -> str:
    """The API base URL from exactly one of a URL and a platform name, without a final ``/``."""
    if (base_url is None) == (platform is None):
        raise ConfigurationError("give exactly one of base_url and platform")
    url = (platform_url(platform) if platform is not None else str(base_url)).strip()
    must = f"base URL must be http(s)://host/..., got {url!r}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- read for its check: a port out of range raises
    except ValueError as problem:
        raise ConfigurationError(f"{must}: {problem}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(must)
    return url.rstrip("/")


def environment_settings(env: Mapping[str, str]) -> Connection:
    """The client's connection arguments from ``AGENTSTATUS_*`` variables.

    ``AGENTSTATUS_BASE_URL`` wins over ``AGENTSTATUS_PLATFORM`` when both are set.
    """

    def required(name: str) -> str:
        value = env.get(name, "").strip()
        if not value:
            raise ConfigurationError(f"environment variable {name} is not set")
        return value

    base_url, platform = env.get(ENV_BASE_URL, "").strip(), env.get(ENV_PLATFORM, "").strip()
    if not base_url and not platform:
        raise ConfigurationError(
            f"environment variable {ENV_BASE_URL} (or {ENV_PLATFORM}) is not set"
        )
    return {
        "base_url": base_url or None,
        "platform": None if base_url else platform,
        "tenant": required(ENV_TENANT),
        "username": required(ENV_USERNAME),
        "token": required(ENV_TOKEN),
    }
