"""The simulator's control plane: ``/__admin/simulation`` starts, shows and stops a simulated
shift (``mock_server.core.simulator``), ``/__admin/clock`` moves its clock and answers once
everything due has happened. Behind the admin token like every ``/__admin/`` path (the admin
blueprint's check runs before every request)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from flask import Blueprint, Flask, Response, current_app

from mock_server.core.errors import InvalidRequest, excerpt
from mock_server.core.simulator import (
    MAX_ADVANCE_MS,
    MAX_SPEED,
    SimulationConfig,
    Simulator,
    TenantPlan,
)
from mock_server.http.context import EXTENSION, EmulatorState, read_json_body
from mock_server.http.control import ADMIN_ROOT
from mock_server.http.parsing import SINGLE_BODY, describe
from mock_server.http.rendering import json_response
from schemas.wire import MAX_SAFE_INTEGER, integral

simulation = Blueprint("simulation", __name__, url_prefix=ADMIN_ROOT)
SIMULATOR_EXTENSION = "agentstatus.simulator"

TOP_FIELDS = ("seed", "speed", "start-ms", "tenants")
RATES = ("calls-per-hour", "breaks-per-hour", "offline-per-hour", "logouts-per-hour")
DURATIONS = (
    "ring-seconds",
    "talk-seconds",
    "wrap-seconds",
    "patience-seconds",
    "break-seconds",
    "offline-seconds",
    "logged-out-seconds",
)
TENANT_FIELDS = ("agents", "mix", *RATES, *DURATIONS)
MIX_FIELDS = ("inbound", "outbound")
CLOCK_FIELDS = ("advance-ms", "advance-seconds")
MAX_RATE = 100_000.0
"""Per hour: some 28 calls a second, far more than a tenant of people takes."""
MAX_DURATION = 86_400.0


def install_simulation(app: Flask) -> Simulator:
    """Give ``app`` the simulator's routes over its backend; a full reset stops it."""
    state: EmulatorState = app.extensions[EXTENSION]
    simulator = Simulator(state.backend)
    app.extensions[SIMULATOR_EXTENSION] = simulator
    state.reset_hooks.append(simulator.halt)
    app.register_blueprint(simulation)
    simulator.resume()
    return simulator


def simulator_of(app: Flask) -> Simulator:
    simulator: Simulator = app.extensions[SIMULATOR_EXTENSION]
    return simulator


@simulation.post("/simulation")
def start_simulation() -> Response:
    return json_response(simulator_of(current_app).start(simulation_config(read_json_body())))


@simulation.get("/simulation")
def get_simulation() -> Response:
    return json_response(simulator_of(current_app).status())


@simulation.delete("/simulation")
def stop_simulation() -> Response:
    return json_response(simulator_of(current_app).stop())


@simulation.post("/clock")
def move_clock() -> Response:
    return json_response(simulator_of(current_app).advance(clock_advance(read_json_body())))


def simulation_config(body: object) -> SimulationConfig:
    """``POST /__admin/simulation``'s body, typed, or a 400 naming the field; whether its
    tenants and agents exist is the simulator's to say."""
    document = _object(body, SINGLE_BODY)
    _known(document, TOP_FIELDS, SINGLE_BODY)
    config = SimulationConfig()
    if "seed" in document:
        seed = integral(document["seed"])
        if seed is None or abs(seed) > MAX_SAFE_INTEGER:
            raise InvalidRequest(
                f"seed must be an integer within +-(2**53 - 1), got {describe(document['seed'])}."
            )
        config = replace(config, seed=seed)
    if "speed" in document:
        config = replace(config, speed=_number(document["speed"], "speed", 0, MAX_SPEED))
    if "start-ms" in document:
        start = integral(document["start-ms"])
        if start is None or not 0 <= start <= MAX_SAFE_INTEGER:
            raise InvalidRequest(
                "start-ms must be an integer from 0 to 2**53 - 1 (epoch milliseconds), got "
                f"{describe(document['start-ms'])}."
            )
        config = replace(config, start_ms=start)
    if "tenants" in document:
        tenants = _object(document["tenants"], "tenants")
        if not tenants:
            raise InvalidRequest("tenants must name at least one tenant (leave it out for all).")
        config = replace(
            config,
            tenants={
                tenant_id: _plan(settings, f"tenants.{tenant_id[:40]}")
                for tenant_id, settings in tenants.items()
            },
        )
    return config


def _plan(body: object, where: str) -> TenantPlan:
    settings = _object(body, where)
    _known(settings, TENANT_FIELDS, where)
    values: dict[str, Any] = {}
    for name in RATES:
        if name in settings:
            values[_attribute(name)] = _number(settings[name], f"{where}.{name}", 0, MAX_RATE)
    for name in DURATIONS:
        if name in settings:
            values[_attribute(name)] = _number(
                settings[name], f"{where}.{name}", 0, MAX_DURATION, above=True
            )
    if "mix" in settings:
        values["outbound_share"] = _outbound_share(settings["mix"], f"{where}.mix")
    if "agents" in settings:
        values["agents"] = _agents(settings["agents"], f"{where}.agents")
    return TenantPlan(**values)


def _outbound_share(body: object, where: str) -> float:
    """``{"inbound": 4, "outbound": 1}``: weights (a missing one is 0), not both 0."""
    mix = _object(body, where)
    _known(mix, MIX_FIELDS, where)
    inbound, outbound = (
        _number(mix.get(name, 0), f"{where}.{name}", 0, MAX_RATE) for name in MIX_FIELDS
    )
    if inbound + outbound == 0:
        raise InvalidRequest(f"{where} must give inbound or outbound a weight above 0.")
    return outbound / (inbound + outbound)


def _agents(body: object, where: str) -> tuple[str, ...]:
    if not isinstance(body, list):
        raise InvalidRequest(f"{where} must be an array of agent ids, got {describe(body)}.")
    seen: set[str] = set()
    for index, agent_id in enumerate(body):
        if not isinstance(agent_id, str):
            raise InvalidRequest(
                f"{where}[{index}] must be an agent id (a string), got {describe(agent_id)}."
            )
        if agent_id in seen:
            raise InvalidRequest(f"{where}[{index}]: {excerpt(agent_id)} is named twice.")
        seen.add(agent_id)
    return tuple(body)


def clock_advance(body: object) -> int:
    """``POST /__admin/clock``'s body: ``{"advance-ms": N}`` or ``{"advance-seconds": S}``,
    in milliseconds."""
    document = _object(body, SINGLE_BODY)
    _known(document, CLOCK_FIELDS, SINGLE_BODY)
    given = [name for name in CLOCK_FIELDS if name in document]
    if len(given) != 1:
        raise InvalidRequest("The request body must give one of advance-ms and advance-seconds.")
    (name,) = given
    if name == "advance-ms":
        milliseconds = integral(document[name])
        if milliseconds is None or not 0 <= milliseconds <= MAX_ADVANCE_MS:
            raise InvalidRequest(
                f"advance-ms must be an integer from 0 to {MAX_ADVANCE_MS}, got "
                f"{describe(document[name])}."
            )
        return milliseconds
    seconds = _number(document[name], name, 0, MAX_ADVANCE_MS / 1000)
    return round(seconds * 1000)


def _object(body: object, where: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest(f"{where} must be a JSON object, got {describe(body)}.")
    return body


def _known(document: dict[str, Any], names: tuple[str, ...], where: str) -> None:
    """A misspelt field is refused rather than ignored: a simulation it changes silently would
    be a long one to debug."""
    for name in document:
        if name not in names:
            raise InvalidRequest(
                f"{where}: {excerpt(name)} is not a field; the fields are {', '.join(names)}."
            )


def _number(value: object, where: str, low: float, high: float, *, above: bool = False) -> float:
    """A JSON number (not a boolean) from ``low`` (excluded when ``above``) to ``high``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"{where} must be a number, got {describe(value)}.")
    too_low = value <= low if above else value < low
    if too_low or value > high or (isinstance(value, float) and math.isnan(value)):
        bound = "above" if above else "from"
        raise InvalidRequest(
            f"{where} must be a number {bound} {low:g} and at most {high:g}, got {excerpt(value)}."
        )
    return float(value)


def _attribute(name: str) -> str:
    return name.replace("-", "_")
