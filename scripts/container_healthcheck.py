#!/opt/agentstatus/bin/python
"""The container's HEALTHCHECK (in the image: /opt/agentstatus/bin/container-healthcheck).

Exit 0 when ``GET /__admin/health`` answers 200 on the emulator's port ($AGENTSTATUS_PORT,
8080) over the container's loopback, 1 otherwise. The health endpoint needs no admin token.
Plain HTTP first, then HTTPS (``serve --tls``; the certificate is not checked: this is the
emulator's own port, and only whether it answers matters).
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.request

TIMEOUT_SECONDS = 2.0
LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "::1": "[::1]", "": "127.0.0.1"}


def healthy(url: str) -> bool:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS, context=context) as answer:
            return bool(answer.status == 200)
    except (OSError, ValueError):
        return False


def main() -> int:
    host = os.environ.get("AGENTSTATUS_HOST", "0.0.0.0")
    host = LOOPBACK.get(host, host)
    port = os.environ.get("AGENTSTATUS_PORT", "8080")
    for scheme in ("http", "https"):
        if healthy(f"{scheme}://{host}:{port}/__admin/health"):
            return 0
    print(f"unhealthy: no 200 from /__admin/health on port {port}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
