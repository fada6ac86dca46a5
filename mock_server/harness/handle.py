"""A running emulator as a test sees it: where it is, whose credentials, and its control plane.

The pytest plugin and the in-process mode both hand out an ``Emulator``. Everything it does
goes over HTTP to ``/__admin/`` (in-process: through the same in-process transport), so one
handle works for a server in this process, in another process, or with no server at all.
Reads and clears are scoped to the handle's tenant, and ``faults.clear()`` removes only the
faults this handle created, so tests sharing one emulator cannot undo each other's setup.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import requests
from requests.adapters import BaseAdapter

from client.errors import describe_failure
from mock_server.http.control import ADMIN_HEADER, ADMIN_ROOT
from schemas.wire import API_BASE, BULK, STATUS_CODE_FIELDS, agents_path, segment

TIMEOUT_SECONDS = 10.0
StatusCodes = tuple[int | None, int | None, str | None]


class ControlPlaneError(AssertionError):
    """The control plane refused a call the test relied on, or nothing answered it; the
    message carries the detail in one line. ``status`` is the refusal's (None: no answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SentChange(NamedTuple):
    """One agent status change a client sent: ``codes`` is (list id, item id, short code)."""

    agent_id: str
    status: int | None
    codes: StatusCodes | None = None


def tenant_path(tenant: str, *rest: str) -> str:
    """``/tenants/{tenant}/...`` below the control plane's root, each id one escaped segment."""
    return "".join(f"/{segment(part)}" for part in ("tenants", tenant, *rest))


class ControlPlane:
    """Calls to ``/__admin/`` that either succeed or raise with the emulator's own reason.

    The one client of the control plane: the harness's handle and the contract kit use it.
    With a ``transport`` (the in-process one, into the very app that serves ``base_url``),
    the calls go through it instead of a socket; the environment's proxies and netrc, which
    only a network call would use, are then not read."""

    def __init__(
        self,
        base_url: str,
        admin_token: str | None = None,
        *,
        transport: BaseAdapter | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._admin_token = admin_token
        self._transport = transport
        self._session: requests.Session | None = None

    @property
    def session(self) -> requests.Session:
        """Made on the first call: a test that never calls does not pay for a session."""
        if self._session is None:
            self._session = requests.Session()
            if self._admin_token is not None:
                self._session.headers[ADMIN_HEADER] = self._admin_token
            if self._transport is not None:
                self._session.mount(f"{self.base_url}{ADMIN_ROOT}/", self._transport)
                self._session.trust_env = False
        return self._session

    def call(
        self,
        method: str,
        path: str,
        body: object = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """``path`` below the control plane's root, its ids already escaped (``tenant_path``)."""
        try:
            response = self.session.request(
                method,
                f"{self.base_url}{ADMIN_ROOT}{path}",
                json=body,
                params=params,
                timeout=TIMEOUT_SECONDS,
            )
        except (requests.ConnectionError, requests.Timeout) as error:
            raise ControlPlaneError(
                f"{method} {ADMIN_ROOT}{path}: {describe_failure(error, self.base_url)}"
            ) from None
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = None
            detail = problem.get("detail") if isinstance(problem, dict) else None
            raise ControlPlaneError(
                f"{method} {ADMIN_ROOT}{path} -> {response.status_code}: "
                f"{' '.join(str(detail or response.text).split())}",
                response.status_code,
            )
        return response.json() if response.content else None

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


class Faults:
    """Faults scoped to one tenant: each is added with ``match.tenant`` set to it."""

    def __init__(self, control: ControlPlane, tenant: str) -> None:
        self._control = control
        self._tenant = tenant
        self._owned: list[str] = []

    def add(
        self,
        action: Mapping[str, Any] | None = None,
        *,
        method: str | None = None,
        path: str | None = None,
        path_regex: str | None = None,
        agent: str | None = None,
        latency_ms: int | None = None,
        times: int | None = None,
        probability: float | None = None,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """Create a fault (see ``/__admin/faults``) on this tenant's requests; returns it."""
        match = {
            "tenant": self._tenant,
            "method": method,
            "path": path,
            "path-regex": path_regex,
            "agent": agent,
        }
        definition = {
            "match": {key: value for key, value in match.items() if value is not None},
            "action": None if action is None else dict(action),
            "latency-ms": latency_ms,
            "times": times,
            "probability": probability,
            "seed": seed,
        }
        fault: dict[str, Any] = self._control.call(
            "POST",
            "/faults",
            {key: value for key, value in definition.items() if value is not None},
        )
        self._owned.append(fault["id"])
        return fault

    def fail(
        self,
        status: int,
        *,
        body: object = None,
        headers: Mapping[str, str] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Answer ``status`` instead of the API (429 gets ``Retry-After: 1`` by default)."""
        action: dict[str, Any] = {"type": "respond", "status": status}
        if body is not None:
            action["body"] = body
        if headers is not None:
            action["headers"] = dict(headers)
        return self.add(action, **options)

    def forbidden_xml(self, **options: Any) -> dict[str, Any]:
        """The guide's ``<API><Error>403 - Forbidden.</Error></API>``."""
        return self.add({"type": "forbidden-xml"}, **options)

    def drop(self, **options: Any) -> dict[str, Any]:
        """Close the connection without answering."""
        return self.add({"type": "drop"}, **options)

    def malformed(self, **options: Any) -> dict[str, Any]:
        """Process the request, then answer only the first half of the body."""
        return self.add({"type": "malformed"}, **options)

    def delay(self, latency_ms: int, **options: Any) -> dict[str, Any]:
        """Answer normally, ``latency_ms`` later."""
        return self.add(None, latency_ms=latency_ms, **options)

    def list(self) -> list[dict[str, Any]]:
        """This handle's faults, with their ``hits`` and ``remaining`` counters."""
        faults: list[dict[str, Any]] = self._control.call("GET", "/faults")["faults"]
        return [fault for fault in faults if fault["id"] in self._owned]

    def get(self, fault_id: str) -> dict[str, Any]:
        fault: dict[str, Any] = self._control.call("GET", f"/faults/{fault_id}")
        return fault

    def delete(self, fault_id: str) -> None:
        self._control.call("DELETE", f"/faults/{fault_id}")
        self._owned.remove(fault_id)

    def clear(self) -> None:
        """Remove every fault this handle created, and only those."""
        for fault_id in list(self._owned):
            try:
                self.delete(fault_id)
            except ControlPlaneError:
                self._owned.remove(fault_id)


class JournalView:
    """One tenant's entries of the emulator's request journal, read through the control plane
    (the journal itself lives in the server: ``mock_server.testdouble.journal``)."""

    def __init__(self, control: ControlPlane, tenant: str) -> None:
        self._control = control
        self._tenant = tenant

    def entries(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        agent: str | None = None,
        status: int | None = None,
    ) -> list[dict[str, Any]]:
        """This tenant's exchanges, oldest first; ``path`` is a prefix."""
        filters = {"tenant": self._tenant, "method": method, "path": path, "agent": agent}
        params = {key: value for key, value in filters.items() if value is not None}
        if status is not None:
            params["status"] = str(status)
        entries: list[dict[str, Any]] = self._control.call("GET", "/requests", params=params)[
            "requests"
        ]
        return entries

    def clear(self) -> None:
        self._control.call("DELETE", "/requests", params={"tenant": self._tenant})

    def changes(self, *, accepted_only: bool = False) -> list[SentChange]:
        """Every status change sent, single or bulk, in order; optionally only accepted ones."""
        return sent_changes(self.entries(), accepted_only=accepted_only)

    def assert_sent_changes(
        self, expected: Sequence[SentChange | tuple[Any, ...]], *, accepted_only: bool = False
    ) -> None:
        """Exactly these changes, in this order: (agent, status) or (agent, status, codes)."""
        actual = self.changes(accepted_only=accepted_only)
        wanted = [tuple(change) for change in expected]
        seen = [tuple(change)[: len(want)] for change, want in zip(actual, wanted, strict=False)]
        if len(actual) != len(wanted) or seen != wanted:
            lines = "\n".join(f"  {tuple(change)}" for change in actual) or "  (none)"
            raise AssertionError(f"expected the client to send {wanted}, but it sent:\n{lines}")


def _codes(body: Mapping[str, Any]) -> StatusCodes | None:
    list_id, item_id, short_code = STATUS_CODE_FIELDS
    codes = (body.get(list_id), body.get(item_id), body.get(short_code))
    return None if codes == (None, None, None) else codes


def sent_changes(
    entries: Iterable[Mapping[str, Any]], *, accepted_only: bool = False
) -> list[SentChange]:
    """The changes in journal entries: single sets (PUT agents/{id}) and bulk entries."""
    changes: list[SentChange] = []
    for entry in entries:
        body = entry["request"]["body"]
        if not isinstance(body, dict) or entry["method"] not in ("PUT", "POST"):
            continue
        if entry["agent"] is not None and entry["method"] == "PUT":
            if not accepted_only or entry["status"] == 200:
                changes.append(SentChange(entry["agent"], body.get("agent-status"), _codes(body)))
        elif _is_bulk(entry):
            changes.extend(_bulk_changes(entry, body, accepted_only))
    return changes


def _is_bulk(entry: Mapping[str, Any]) -> bool:
    """A request on the tenant's bulk path (as served, under any API version)."""
    tenant = entry.get("tenant")
    return tenant is not None and str(entry["path"]).endswith(BULK.format(tenantId=tenant))


def _bulk_changes(
    entry: Mapping[str, Any], body: Mapping[str, Any], accepted_only: bool
) -> list[SentChange]:
    items = body.get("agents")
    if not isinstance(items, list):
        return []
    results: list[Any] = []
    response = entry.get("response") or {}
    if isinstance(response.get("body"), dict):
        results = response["body"].get("data") or []
    changes = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("agent-id"), str):
            continue
        if accepted_only and (
            entry["status"] != 207
            or index >= len(results)
            or results[index].get("change-status") != 200
        ):
            continue
        changes.append(SentChange(item["agent-id"], item.get("agent-status"), _codes(item)))
    return changes


EVENT_POLL_SECONDS = 0.01
EVENT_TIMEOUT_SECONDS = 5.0


class EventTimeout(AssertionError):
    """No event matched in time; the message lists what came meanwhile."""


class EventWatch:
    """A test's view of one tenant's events, read through the control plane
    (``GET /__admin/tenants/{id}/events``) like the rest of the handle: from the start of the
    tenant's log (the plugin's tenants and ``emulate()``'s state are new, so that is the
    test's own start), or from the newest at ``from_now()``. Each event is the vendor's
    payload, its kind the one key: ``{"AgentStatusChange": {"newState": 5, ...}}``."""

    def __init__(self, control: ControlPlane, tenant: str) -> None:
        self._control = control
        self._path = tenant_path(tenant, "events")
        self.position = 0
        """The number of the last event this watch has handed out."""

    def from_now(self) -> EventWatch:
        """Pass over every event so far: the next ones are those still to come."""
        self.position = self._read(0, 1)[1]
        return self

    def _read(self, after: int, limit: int = 1000) -> tuple[list[dict[str, Any]], int]:
        answer = self._control.call(
            "GET", self._path, params={"after": str(after), "limit": str(limit)}
        )
        return answer["events"], int(answer["last"])

    def new(self) -> list[dict[str, Any]]:
        """Every event since the last call (or since the watch began), oldest first."""
        found: list[dict[str, Any]] = []
        while True:
            events, last = self._read(self.position)
            for entry in events:
                self.position = int(entry["sequence"])
                found.append(entry["event"])
            if not events or self.position >= last:
                return found

    def wait_for(
        self, kind: str | None = None, *, timeout: float = EVENT_TIMEOUT_SECONDS, **fields: Any
    ) -> dict[str, Any]:
        """The body of the first new event of ``kind`` whose fields equal ``fields``
        (``agentId="ag…", newState=5``); the events before it are passed over. Raises
        ``EventTimeout`` naming what came instead."""
        deadline = time.monotonic() + timeout
        seen: list[dict[str, Any]] = []
        while True:
            for event in self.new():
                seen.append(event)
                ((event_kind, body),) = event.items()
                if (kind is None or event_kind == kind) and _has(body, fields):
                    return dict(body)
            if time.monotonic() >= deadline:
                wanted = ", ".join(f"{k}={v!r}" for k, v in fields.items())
                came = "; ".join(_short(event) for event in seen[-10:]) or "none"
                raise EventTimeout(
                    f"no {kind or 'event'} with {wanted or 'any fields'} within {timeout}s; "
                    f"events meanwhile: {came}"
                )
            time.sleep(EVENT_POLL_SECONDS)

    def assert_none(self, *, within: float = 0.2) -> None:
        """No new event at all for ``within`` seconds (a refused change emits nothing)."""
        deadline = time.monotonic() + within
        while True:
            events = self.new()
            if events:
                raise AssertionError(f"expected no event, got: {'; '.join(map(_short, events))}")
            if time.monotonic() >= deadline:
                return
            time.sleep(EVENT_POLL_SECONDS)


def _has(body: Mapping[str, Any], fields: Mapping[str, Any]) -> bool:
    return all(body.get(name) == value for name, value in fields.items())


def _short(event: Mapping[str, Any]) -> str:
    ((kind, body),) = event.items()
    details = ", ".join(f"{k}={body[k]!r}" for k in ("agentId", "newState", "event") if k in body)
    return f"{kind}({details})"


class Emulator:
    """One emulator and one tenant of it, with that tenant's credentials and control plane."""

    def __init__(
        self,
        base_url: str,
        tenant: str,
        username: str,
        token: str,
        *,
        admin_token: str | None = None,
        document: Mapping[str, Any] | None = None,
        transport: BaseAdapter | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tenant = tenant
        self.username = username
        self.token = token
        self._start_token = token  # a fixture tenant's reset gives this token back
        self._document = None if document is None else dict(document)
        self.control = ControlPlane(self.base_url, admin_token, transport=transport)
        self.faults = Faults(self.control, tenant)
        self.journal = JournalView(self.control, tenant)
        self.events = EventWatch(self.control, tenant)
        """The tenant's events: ``wait_for`` the one a change should emit, ``assert_none``
        after one that should emit nothing."""

    @property
    def api_url(self) -> str:
        """The API root, as a client's base URL (``…/api/v1``)."""
        return self.base_url + API_BASE

    @property
    def agents_url(self) -> str:
        return self.api_url + agents_path(self.tenant)

    @property
    def auth(self) -> tuple[str, str]:
        return (self.username, self.token)

    def session(self) -> requests.Session:
        """A requests session already carrying this tenant's Basic credentials."""
        session = requests.Session()
        session.auth = self.auth
        return session

    def state(self) -> dict[str, Any]:
        """The tenant as the control plane shows it (fixture format, no token)."""
        state: dict[str, Any] = self.control.call("GET", tenant_path(self.tenant))
        return state

    def agent(self, agent_id: str) -> dict[str, Any]:
        agents: list[dict[str, Any]] = self.state()["agents"]
        return next(agent for agent in agents if agent["agent-id"] == agent_id)

    def put_agent(self, agent_id: str, status: int, group_id: int, **fields: Any) -> dict[str, Any]:
        """Create or replace an agent in any status 0-11; extra fields use fixture names."""
        document = {"agent-status": status, "group-id": group_id}
        document.update({name.replace("_", "-"): value for name, value in fields.items()})
        agent: dict[str, Any] = self.control.call(
            "PUT", tenant_path(self.tenant, "agents", agent_id), document
        )
        return agent

    def delete_agent(self, agent_id: str) -> None:
        self.control.call("DELETE", tenant_path(self.tenant, "agents", agent_id))

    def set_api_enabled(self, enabled: bool) -> None:
        self.control.call("PATCH", tenant_path(self.tenant), {"api-enabled": enabled})

    def rotate_token(self) -> str:
        """A new action token; the handle switches to it, the old one stops working."""
        self.token = self.control.call("POST", tenant_path(self.tenant, "token"))["token"]
        return self.token

    def reset(self) -> None:
        """This tenant back to its starting document, its faults and journal cleared."""
        self.reset_state()
        self.faults.clear()
        self.journal.clear()

    def reset_state(self) -> None:
        """This tenant's agents, settings and token back to its starting document, and
        nothing else: its journal and faults stay (the contract kit resets a shared emulator
        this way, and must leave what its owner recorded or set up)."""
        if self._document is None:
            self.control.call("POST", tenant_path(self.tenant, "reset"))
            self.token = self._start_token
        else:
            self.control.call("PUT", tenant_path(self.tenant), self._document)
            self.token = self._document["token"]

    def close(self) -> None:
        """Remove what this handle set up; a tenant it created is deleted."""
        self.faults.clear()
        self.journal.clear()
        if self._document is not None:
            self.control.call("DELETE", tenant_path(self.tenant))
        self.control.close()

    @classmethod
    def create_tenant(
        cls,
        base_url: str,
        document: Mapping[str, Any],
        admin_token: str | None = None,
        *,
        transport: BaseAdapter | None = None,
    ) -> Emulator:
        """A new tenant from a fixture-format document (which must carry a unique id), its
        ``events`` watched from its creation on (not its agents' ``AgentCreated``);
        ``transport`` as for ``ControlPlane``."""
        handle = cls(
            base_url,
            document["tenant-id"],
            document["username"],
            document["token"],
            admin_token=admin_token,
            document=document,
            transport=transport,
        )
        handle.control.call("PUT", tenant_path(handle.tenant), dict(document))
        handle.events.from_now()
        return handle
