"""Where the control plane is and what locks it: the one definition, free of Flask, so that a
handle on a running emulator (``harness``, the contract kit) imports it without the server."""

ADMIN_ROOT = "/__admin"
ADMIN_HEADER = "X-Admin-Token"
ADMIN_TOKEN_ENV = "AGENTSTATUS_ADMIN_TOKEN"
"""Where ``serve`` and the pytest plugin read the admin token from."""
