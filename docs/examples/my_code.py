"""Stands in for your code in the README's examples: puts an agent on break through the Agent
Status API with `requests`, trying again when the connection drops or the service answers 5xx
(as code that talks to a real service should)."""

from __future__ import annotations

import time

import requests

ON_BREAK = 3
ATTEMPTS = 3


def put_on_break(api_url: str, tenant: str, auth: tuple[str, str], agent_id: str) -> None:
    url = f"{api_url}/tenants/{tenant}/agentstatus/agents/{agent_id}"
    for attempt in range(1, ATTEMPTS + 1):
        try:
            answer = requests.put(url, json={"agent-status": ON_BREAK}, auth=auth, timeout=10)
        except requests.ConnectionError:
            if attempt == ATTEMPTS:
                raise
        else:
            if answer.status_code < 500 or attempt == ATTEMPTS:
                answer.raise_for_status()
                return
        time.sleep(0.05 * attempt)
