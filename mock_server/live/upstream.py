"""Where the live service is, for the commands that meet it (``import`` reads it, ``proxy``
relays to it): the ``AGENTSTATUS_*`` variables their options default from, and the API root
those options name."""

from __future__ import annotations

import argparse

from schemas.wire import (
    ENV_BASE_URL,
    ENV_PLATFORM,
    ENV_TENANT,
    ENV_USERNAME,
    platform_url,
)

ENV = {
    "base_url": ENV_BASE_URL,
    "platform": ENV_PLATFORM,
    "tenant": ENV_TENANT,
    "username": ENV_USERNAME,
}
"""Each option's variable, by the option's name (the token is never an option)."""
TIMEOUT_SECONDS = 30.0
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length"}
"""Headers never relayed: whoever sends the message on recomputes them (requests for the
upstream, Werkzeug for the client)."""


def api_url(args: argparse.Namespace) -> str:
    """The API root from ``--base-url``, or from ``--platform`` through the vendor's platform
    list (``schemas.wire.UnknownPlatform``, naming the known ones, for a name it lacks)."""
    if args.base_url:
        return str(args.base_url)
    return platform_url(str(args.platform))
