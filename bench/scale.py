"""Large tenants in-process: load time, memory per agent, and list time against size."""

from __future__ import annotations

import gc
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import orjson

from bench.fixtures import big_tenant, big_tenant_id
from mock_server.core.backend import AgentStatusBackend
from mock_server.core.fixtures import load_fixture
from mock_server.core.sqlite_store import SQLiteStore
from mock_server.http.api import agents_json

SIZES = (1_000, 10_000, 50_000)
LIST_REPEATS = 5


def _list_seconds(backend: AgentStatusBackend, tenant_id: str) -> float:
    """One list call rendered to bytes, as the view does (uncached), best of a few."""
    best = float("inf")
    for _ in range(LIST_REPEATS):
        started = time.perf_counter()
        agents_json(backend.list_agents(tenant_id))
        best = min(best, time.perf_counter() - started)
    return best


def measure(size: int, directory: Path) -> dict[str, Any]:
    tenant_id = big_tenant_id(size)
    path = directory / f"tenants-{size}.json"
    path.write_bytes(orjson.dumps({"tenants": [big_tenant(size)]}))

    started = time.perf_counter()
    document = load_fixture(path)
    load_seconds = time.perf_counter() - started

    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    backend = AgentStatusBackend(document)
    build_seconds = time.perf_counter() - started
    gc.collect()
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    memory_list = _list_seconds(backend, tenant_id)

    started = time.perf_counter()
    store = SQLiteStore(directory / f"state-{size}.sqlite")
    sqlite_backend = AgentStatusBackend(document, store=store)
    seed_seconds = time.perf_counter() - started
    sqlite_list = _list_seconds(sqlite_backend, tenant_id)
    store.close()
    return {
        "agents": size,
        "fixture_file_bytes": path.stat().st_size,
        "load_fixture_seconds": round(load_seconds, 3),
        "memory_store_build_seconds": round(build_seconds, 3),
        "memory_bytes_per_agent": round(retained / size),
        "memory_peak_bytes_per_agent": round(peak / size),
        "sqlite_seed_seconds": round(seed_seconds, 3),
        "list_ms_memory": round(memory_list * 1000, 2),
        "list_ms_sqlite": round(sqlite_list * 1000, 2),
        "list_us_per_agent_memory": round(memory_list * 1e6 / size, 2),
        "list_us_per_agent_sqlite": round(sqlite_list * 1e6 / size, 2),
    }


def measure_all() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="agentstatus-bench-") as directory:
        return [measure(size, Path(directory)) for size in SIZES]
