"""Large tenant sets for the benchmark: the demo tenants plus tenants of N generated agents."""

from __future__ import annotations

from typing import Any

from mock_server.core.fixtures import load_fixture

STATUSES = (1, 3, 4, 5, 4, 4, 2, 9)


def big_tenant_id(size: int) -> str:
    return f"bench{size}"


def big_tenant(size: int) -> dict[str, Any]:
    """A tenant of ``size`` agents in two groups, most in 4 WAIT_TRANSACT, some with codes."""
    agents: list[dict[str, Any]] = []
    for number in range(size):
        agent: dict[str, Any] = {
            "agent-id": f"ag{size}x{number:07d}",
            "name": f"Agent {number}",
            "group-id": 10 + number % 2,
            "agent-status": STATUSES[number % len(STATUSES)] if number >= 100 else 4,
        }
        if agent["agent-status"] == 3:
            agent.update(
                {
                    "status-code-list-id": 1,
                    "status-code-item-id": 11,
                    "status-code-item-short-code": "Lunch",
                }
            )
        agents.append(agent)
    return {
        "tenant-id": big_tenant_id(size),
        "username": f"bench{size}user",
        "token": f"bench{size}token",
        "status-code-lists": [
            {
                "id": 1,
                "items": [{"id": 11, "short-code": "Lunch"}, {"id": 12, "short-code": "Meet"}],
            }
        ],
        "groups": [{"id": 10, "status-code-lists": [1]}, {"id": 11, "status-code-lists": [1]}],
        "agents": agents,
    }


def bench_fixture(*sizes: int) -> dict[str, Any]:
    """The demo tenant set plus one generated tenant per size."""
    demo = load_fixture()
    return {"tenants": [*demo["tenants"], *(big_tenant(size) for size in sizes)]}
