"""One replay of a recording: the mappings chosen, then each answered exchange sent again to
a fresh in-process emulator (Flask's test client, no socket) and its answer compared."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

from flask.testing import FlaskClient

from mock_server.app import create_app
from mock_server.live.recording import Message, answered
from mock_server.live.replay.compare import Difference, Normaliser, compare
from mock_server.live.replay.mapping import IdMap, first_sightings, map_agents, map_tenants
from mock_server.live.upstream import NOT_FORWARDED
from schemas.wire import basic_authorization

PATH_SAFE = "/!$&'()*+,;=:@~"
"""What a path segment may hold unencoded (RFC 3986, 3.3), beside letters, digits and "-._"."""
WRONG_TOKEN = "not-the-token"
"""Sent where the upstream answered 401, to ask the emulator the same question."""


@dataclass
class Outcome:
    """What the replay of one recorded exchange found."""

    number: int
    method: str
    path: str
    replayed_path: str
    recorded_status: int
    emulator_status: int
    differences: list[Difference] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        return any(not difference.informational for difference in self.differences)

    def to_json(self) -> dict[str, Any]:
        """The fields, named with hyphens as the rest of the report is."""
        return {name.replace("_", "-"): value for name, value in asdict(self).items()}


@dataclass
class ReplayRun:
    """A recording against one emulator: the mappings, then one outcome per exchange."""

    exchanges: list[dict[str, Any]]
    document: Mapping[str, Any]
    profile: str
    ids: IdMap
    credentials: tuple[str, str] = field(repr=False)
    normalise: Normaliser

    @classmethod
    def prepare(
        cls,
        exchanges: list[dict[str, Any]],
        document: Mapping[str, Any],
        profile: str,
        tenant_map: Mapping[str, str],
        agent_map: Mapping[str, str],
    ) -> ReplayRun:
        tenants, home = map_tenants(exchanges, document, tenant_map)
        sightings = first_sightings(exchanges)
        agents = map_agents(sightings, home.get("agents", []), agent_map)
        names = {
            str(agent["name"])
            for tenant in document["tenants"]
            for agent in tenant.get("agents", [])
            if agent.get("name")
        } | set(_recorded_names(exchanges))
        normalise = Normaliser(
            tenants=set(tenants) | set(tenants.values()),
            agents=set(sightings) | set(agents.values()),
            names=names,
        )
        return cls(
            exchanges,
            document,
            profile,
            IdMap(tenants, agents),
            (str(home["username"]), str(home["token"])),
            normalise,
        )

    def run(self) -> list[Outcome]:
        client = create_app(self.document, profile=self.profile).test_client()
        return [
            self._replay(client, number, exchange) for number, exchange in answered(self.exchanges)
        ]

    def _replay(self, client: FlaskClient, number: int, exchange: Mapping[str, Any]) -> Outcome:
        request = Message.of(exchange.get("request"))
        path = self.ids.path(exchange["path"])
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in NOT_FORWARDED and not name.lower().endswith("authorization")
        }
        if request.header("Authorization") is not None:
            username, token = self.credentials
            if exchange["status"] == 401:
                token = WRONG_TOKEN
            headers["Authorization"] = basic_authorization(username, token)
        answer = client.open(
            quote(path, safe=PATH_SAFE),  # the path was recorded decoded: a "?" in it is data
            method=exchange["method"],
            query_string=exchange.get("query") or "",
            headers=headers,
            data=self.ids.body(request),
        )
        emulator = Message(dict(answer.headers), answer.get_data())
        recorded = Message.of(exchange["response"])
        return Outcome(
            number,
            exchange["method"],
            exchange["path"],
            path,
            exchange["status"],
            answer.status_code,
            compare(exchange["status"], recorded, answer.status_code, emulator, self.normalise),
        )


def _recorded_names(exchanges: Iterable[Mapping[str, Any]]) -> Iterable[str]:
    for exchange in exchanges:
        body = (exchange.get("response") or {}).get("body")
        entries = body.get("data") if isinstance(body, dict) else None
        for entry in [body, *(entries if isinstance(entries, list) else [])]:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"]:
                yield entry["name"]
