"""The emulator's control plane, for what a live tenant cannot show on demand.

Only an emulator target has one; every check that needs it is marked ``needs_control_plane``
and reported as not applicable on a live target.
"""

from __future__ import annotations

from typing import Any

import requests

ADMIN_HEADER = "X-Admin-Token"
TIMEOUT_SECONDS = 10.0


class ControlPlane:
    """``/__admin/`` of one emulator, for one tenant."""

    def __init__(self, root_url: str, tenant: str, admin_token: str | None = None) -> None:
        self.root_url = root_url.rstrip("/")
        self.tenant = tenant
        self._session = requests.Session()
        if admin_token is not None:
            self._session.headers[ADMIN_HEADER] = admin_token

    def close(self) -> None:
        self._session.close()

    def _call(self, method: str, path: str, body: object = None) -> Any:
        response = self._session.request(
            method, f"{self.root_url}/__admin{path}", json=body, timeout=TIMEOUT_SECONDS
        )
        assert response.status_code < 300, (
            f"control plane {method} {path} -> {response.status_code}: {response.text[:300]}"
        )
        return response.json() if response.content else None

    def tenant_state(self) -> dict[str, Any]:
        """The tenant in the fixture format: groups, status-code lists, agents with group-id."""
        state: dict[str, Any] = self._call("GET", f"/tenants/{self.tenant}")
        return state

    def reset_tenant(self) -> None:
        self._call("POST", f"/tenants/{self.tenant}/reset")

    def put_agent(self, agent_id: str, document: dict[str, Any]) -> None:
        """Create or replace an agent in any status 0-11 (fixture agent format)."""
        self._call("PUT", f"/tenants/{self.tenant}/agents/{agent_id}", document)

    def delete_agent(self, agent_id: str) -> None:
        self._call("DELETE", f"/tenants/{self.tenant}/agents/{agent_id}")

    def set_api_enabled(self, enabled: bool) -> None:
        self._call("PATCH", f"/tenants/{self.tenant}", {"api-enabled": enabled})

    def rotate_token(self) -> str:
        token: str = self._call("POST", f"/tenants/{self.tenant}/token")["token"]
        return token
