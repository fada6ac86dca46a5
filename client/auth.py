"""The credentials the client sends: HTTP Basic with the tenant's username and action token."""

from __future__ import annotations

import requests
from requests.auth import AuthBase

from schemas.wire import basic_authorization


class TokenAuth(AuthBase):
    """HTTP Basic with the tenant's username and action token; its repr hides the token."""

    def __init__(self, username: str, token: str) -> None:
        self.username = username
        self._header = basic_authorization(username, token)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._header
        return request

    def __repr__(self) -> str:
        return f"TokenAuth(username={self.username!r}, token='***')"
