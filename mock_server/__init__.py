"""A stateful emulator of the 8x8 Contact Center Agent Status API.

The package is in layers, each a folder that imports only the ones below it (a test, and
the import-linter contract in ``pyproject.toml``, fail otherwise), from the top:

- ``cli`` — the command line (``agentstatus-mock``), which composes everything below;
- ``live`` and ``harness`` — from a live tenant (import, recording proxy, replay, diff) and
  what a test holds (``emulate()``, the pytest plugin, the control-plane handle);
- ``app`` and ``serving`` — the application factory, and the servers that run an app;
- ``testdouble`` — fault injection and the request journal, around the API;
- ``http`` — the wire: views, authentication, Problem rendering, control plane, documents;
- ``core`` — the state and the rules applied to it, with no Flask.

The public names are ``create_app``, for tests without a server ``emulate`` and ``emulated``
(``mock_server.harness.inprocess``), and ``Emulator``, the handle either gives a test; they
are imported lazily, so that importing a lower layer does not load the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mock_server.app import create_app
    from mock_server.harness.handle import Emulator
    from mock_server.harness.inprocess import emulate, emulated

__all__ = ["Emulator", "create_app", "emulate", "emulated"]
_HOMES = {
    "create_app": "mock_server.app",
    "emulate": "mock_server.harness.inprocess",
    "emulated": "mock_server.harness.inprocess",
    "Emulator": "mock_server.harness.handle",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'mock_server' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
