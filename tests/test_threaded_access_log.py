"""The in-thread server's request log (the pytest plugin's server) never shows a query string:
the dashboard's ``?admin-token=`` and the streams' ``?x-api-key=`` travel there."""

from __future__ import annotations

import logging

import pytest
import requests

from mock_server.app import create_app
from mock_server.serving.threaded import start_in_thread

SECRET = "threaded-admin-secret"


def test_the_request_line_is_logged_without_its_query(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="werkzeug")
    with start_in_thread(create_app(admin_token=SECRET)) as server:
        answer = requests.get(
            f"{server.base_url}/__admin/dashboard?admin-token={SECRET}",
            allow_redirects=False,
            timeout=10,
        )
        refused = requests.get(f"{server.base_url}/__admin/tenants?x-api-key={SECRET}", timeout=10)
    assert (answer.status_code, refused.status_code) == (303, 403)
    assert "/__admin/dashboard" in caplog.text and "303" in caplog.text
    assert SECRET not in caplog.text
