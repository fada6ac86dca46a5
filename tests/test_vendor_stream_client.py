"""Acceptance with the vendor's own code: the Python client of the Event Streaming service
(``streaming/examples/python.mdx``), saved to a file unchanged and run against ``serve --tls``
trusting the printed authority through ``SSL_CERT_FILE``, prints the ``AgentStatusChange``
payload of a status change made through the API."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import requests
from conftest import DEMO_TENANT, DEMO_TOKEN, DEMO_USERNAME, api_path, read_line
from test_tls import cache_env, serving

BOB = "agAQDqmvKiRbG4ekigNSmbbb"
VENDOR_STREAM_CLIENT = Path(__file__).parent / "reference" / "streaming" / "examples" / "python.mdx"
"""The vendor's page with its client: a byte copy of ../shared's (test_reference_copies)."""


def vendor_client(tmp_path: Path) -> Path:
    """The page's "Complete Example", byte for byte, as the page tells a user to save it."""
    page = VENDOR_STREAM_CLIENT.read_text(encoding="utf-8")
    after = page[page.index("## Complete Example") :]
    found = re.search(r"```python\n(.*?)```", after, re.DOTALL)
    assert found is not None, "the vendor's page has no complete Python example"
    saved = tmp_path / "pulsar_simple_client.py"
    saved.write_text(found.group(1), encoding="utf-8")
    return saved


def test_the_vendors_python_client_prints_a_status_change(tmp_path: Path) -> None:
    client = vendor_client(tmp_path)
    with serving(tmp_path, "--tls") as server:
        port = server.base.rsplit(":", 1)[1]
        env = {**cache_env(tmp_path), "SSL_CERT_FILE": str(server.ca)}
        with subprocess.Popen(
            [
                sys.executable,
                str(client),
                "--host",
                "127.0.0.1",
                "--port",
                port,
                "--tenant",
                DEMO_TENANT,
                "--x-api-key",
                DEMO_TOKEN,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        ) as listener:
            assert listener.stderr is not None and listener.stdout is not None
            deadline = time.monotonic() + 30
            while "Successfully connected" not in read_line(listener.stderr):
                assert time.monotonic() < deadline, "the vendor's client did not connect"
            answer = requests.put(
                server.base + api_path(suffix=f"/{BOB}"),
                json={"agent-status": 5},
                auth=(DEMO_USERNAME, DEMO_TOKEN),
                verify=str(server.ca),
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
            printed = json.loads(read_line(listener.stdout))
            listener.terminate()
    change = printed["AgentStatusChange"]
    assert (change["agentId"], change["newState"]) == (BOB, 5)
    assert change["msgInfo"]["sequenceId"] >= 1
