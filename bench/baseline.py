"""The bare Flask baseline: what the server alone costs, to express the emulator as ratios.

Run as ``python -m bench.baseline --workers N --port 0``: it serves under the very server the
emulator uses with the same worker count (granian's workers, through the same RSGI bridge)
and prints ``listening on PORT``.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from typing import Any

import orjson
from flask import Flask, Response, jsonify, request

from bench.fixtures import big_tenant
from mock_server.serving.production import (
    mark_ready,
    new_ready_directory,
    remove_ready_directory,
    run_workers,
)
from mock_server.serving.rsgi import RSGIBridge

LIST_SIZE = 1_000
API_FIELDS = (
    "agent-id",
    "agent-status",
    "status-code-list-id",
    "status-code-item-id",
    "status-code-item-short-code",
    "name",
)


def listed_agents(size: int) -> list[dict[str, Any]]:
    """The benchmark tenant's agents as the API lists them, so that the bare list serialises
    the very bytes the emulator serves for that tenant."""
    return [
        {field: agent[field] for field in API_FIELDS if field in agent}
        for agent in big_tenant(size)["agents"]
    ]


def create_baseline_app() -> Flask:
    """A small JSON read, a JSON write into a dict, and a 1,000-agent list (json and orjson)."""
    app = Flask(__name__)
    statuses: dict[str, Any] = {"agent-1": {"agent-id": "agent-1", "agent-status": 4}}
    agents = listed_agents(LIST_SIZE)

    @app.get("/tiny/<agent_id>")
    def tiny_get(agent_id: str) -> Response:
        return jsonify(statuses.get(agent_id, {}))

    @app.put("/tiny/<agent_id>")
    def tiny_put(agent_id: str) -> Response:
        body = request.get_json()
        statuses[agent_id] = {"agent-id": agent_id, "agent-status": body["agent-status"]}
        return jsonify({"reason": "OK"})

    @app.get("/list/json")
    def list_json() -> Response:
        return jsonify({"data": agents})

    @app.get("/list/orjson")
    def list_orjson() -> Response:
        return Response(orjson.dumps({"data": agents}), mimetype="application/json")

    return app


def load_baseline(ready_directory: str, workers: int) -> RSGIBridge:
    """In a worker: the baseline app under the emulator's bridge, without an access log."""
    bridge = RSGIBridge(create_baseline_app(), multiprocess=workers > 1, access_log=None)
    mark_ready(ready_directory)
    return bridge


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    def announce(port: int) -> None:
        print(f"listening on {port}", flush=True)

    ready_directory = new_ready_directory()
    try:
        run_workers(
            partial(load_baseline, ready_directory, args.workers),
            host="127.0.0.1",
            port=args.port,
            workers=args.workers,
            ready_directory=ready_directory,
            announce=announce,
        )
    finally:
        remove_ready_directory(ready_directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
