"""Where the live service is, for the commands that meet it (``import`` reads it, ``proxy``
relays to it): the ``AGENTSTATUS_*`` variables their options default from, and the API root
those options name."""

from __future__ import annotations

import argparse

from schemas.wire import platform_url

ENV = {
    "base_url": "AGENTSTATUS_BASE_URL",
    "platform": "AGENTSTATUS_PLATFORM",
    "tenant": "AGENTSTATUS_TENANT",
    "username": "AGENTSTATUS_USERNAME",
}
TOKEN_ENV = "AGENTSTATUS_TOKEN"
TIMEOUT_SECONDS = 30.0


def api_url(args: argparse.Namespace) -> str:
    """The API root from ``--base-url``, or from ``--platform`` through the vendor's platform
    list (``schemas.wire.UnknownPlatform``, naming the known ones, for a name it lacks)."""
    if args.base_url:
        return str(args.base_url)
    return platform_url(str(args.platform))
