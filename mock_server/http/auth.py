"""HTTP Basic, as the API takes it: the tenant's username and action token, or a 401 that
says precisely what is wrong with the header. No Flask, so a recording can be scrubbed with it."""

from __future__ import annotations

import base64

from mock_server.core.errors import AuthenticationFailed


def basic_credentials(header: str | None) -> tuple[str, str]:
    """Username and token from an ``Authorization: Basic …`` header, or a precise 401."""
    if not header:
        raise AuthenticationFailed(
            "The Authorization header is missing; use HTTP Basic with the tenant's username "
            "and action token."
        )
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise AuthenticationFailed("The Authorization header must use the Basic scheme.")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except ValueError:  # bad base64, non-ASCII text or invalid UTF-8
        raise AuthenticationFailed(
            "The Basic credentials are not valid base64 of 'username:token'."
        ) from None
    username, colon, token = decoded.partition(":")
    if not colon:
        raise AuthenticationFailed("The Basic credentials must have the form 'username:token'.")
    return username, token
