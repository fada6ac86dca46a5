"""A contact center on a shift: Available agents get calls, take breaks, go offline and log out
now and then, on a simulated clock, with the vendor's ``Interaction`` events for every call
(``event-lifecycle.mdx``, the "Event Sequence Examples" of ``message-format.mdx``).

The simulator is the platform, not an API client: it saves agents' statuses directly, as the
control plane does, in the store's write transactions, so each change emits its
``AgentStatusChange`` through ``EventedStore``, and its ``Interaction`` events go into the same
transaction (``EventWriter.emit``). The API's rules are left alone: an agent it put on a call is
in 6, 7 or 8 like any other, and the API refuses to move it as it refuses any agent there.

Everything it knows lives in one record of the store (``RECORD``): the settings, the simulated
clock, each agent's next move, the calls under way and the counters. So the workers of a shared
store run one simulation: any of them may move the clock (``advance``), and with ``speed`` above
0 one at a time, the holder of a lease in the record, moves it with real time. Each step reads
the agents again first, so a change someone else made (the API, the control plane, a reset) is
seen before anything is decided for that agent: a call is only offered to an agent who is 4 now.

Deterministic: every draw comes from a ``random.Random`` seeded with the seed, the tenant and a
per-tenant count, and only the ticker's pace depends on the wall clock, so the same seed,
fixture and sequence of API calls and clock moves give the same events, timestamps included:
the events of a step carry its simulated time (``msgInfo.timestamp``, ``statusEventTS``,
``eventTS``), while those of the API keep the wall clock.
"""

from __future__ import annotations

import atexit
import math
import os
import random
import secrets
import string
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, fields, replace
from http import HTTPStatus
from typing import Any, TypeVar

import orjson

from mock_server.core.backend import AgentStatusBackend
from mock_server.core.entities import Agent, EventDraft, Tenant
from mock_server.core.errors import ApiError, InvalidRequest
from mock_server.core.events import INTERACTION, EventWriter
from mock_server.core.store import StateReader
from schemas.rules import (
    LOGGED_OUT_STATUS_CODE_ITEM_ID,
    LOGGED_OUT_STATUS_CODE_LIST_ID,
    AgentStatus,
)

RECORD = "simulation"
"""The store record holding the whole simulation (``StateReader.record``)."""
QUEUE_ID = 1000
"""The one queue of a simulated tenant (``queueId``, ``queueList``)."""
HOUR_MS = 3_600_000
MAX_SPEED = 3600.0
"""An hour of the shift per second of real time: beyond it a tick cannot keep up."""
MAX_ADVANCE_MS = 86_400_000
"""The most one ``POST /__admin/clock`` moves: a day, some 2,000 steps at the default rates."""
TICK_SECONDS = 0.1
"""How often the leading process moves the clock when ``speed`` is above 0."""
LEASE_MS = 1_000
"""How long a leader that stopped ticking (its process died) keeps others from taking over."""
GUID_ALPHABET = string.ascii_letters + string.digits

IN, OUT = "in", "out"
QUEUED, OFFERED, TALKING, WRAPPING = "queued", "offered", "talking", "wrapping"
PHASE_STATUS = {
    OFFERED: AgentStatus.TRANSACT_OFFERED,
    TALKING: AgentStatus.PROCESS_TRANSACT,
    WRAPPING: AgentStatus.POST_PROCESS,
}
"""The status an agent has in each phase of a call the simulator gave it."""

Codes = tuple[int | None, int | None, str | None]
"""An agent's status-code list, item and short code."""
NO_CODES: Codes = (None, None, None)
LOGGED_OUT_CODES: Codes = (LOGGED_OUT_STATUS_CODE_LIST_ID, LOGGED_OUT_STATUS_CODE_ITEM_ID, None)
"""What the API stores for an agent logged out without a reason code."""


class SimulationNotRunning(ApiError):
    """409: the clock of a simulation that is not running cannot be moved."""

    status = HTTPStatus.CONFLICT

    def __init__(self) -> None:
        super().__init__("No simulation is running; start one with POST /__admin/simulation first.")


@dataclass(frozen=True, slots=True)
class TenantPlan:
    """How one tenant's shift goes: rates per hour, durations as means in seconds (each drawn
    from an exponential distribution, as a Poisson process has them)."""

    agents: tuple[str, ...] | None = None
    """The agents simulated, in this order; None: every agent of the tenant, new ones too."""
    calls_per_hour: float = 60.0
    """Calls arriving at the tenant's queue, inbound and outbound together."""
    outbound_share: float = 0.2
    """The share of those calls an available agent places (the "mix")."""
    ring_seconds: float = 8.0
    talk_seconds: float = 180.0
    wrap_seconds: float = 30.0
    patience_seconds: float = 90.0
    """How long a caller waits in the queue for an available agent before hanging up."""
    breaks_per_hour: float = 0.5
    """Per available agent, as are the next two rates."""
    break_seconds: float = 600.0
    offline_per_hour: float = 0.5
    offline_seconds: float = 300.0
    logouts_per_hour: float = 0.05
    logged_out_seconds: float = 1800.0
    """How long a logged-out agent (the simulator's or anyone's) takes to log in again."""


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """What ``POST /__admin/simulation`` asks for."""

    seed: int = 0
    speed: float = 1.0
    """Simulated time per real time; 0: only ``advance`` moves the clock."""
    start_ms: int | None = None
    """Where the simulated clock starts (epoch ms); None: the wall clock's now."""
    tenants: Mapping[str, TenantPlan] | None = None
    """None: every tenant, each with the default plan."""


@dataclass(slots=True)
class AgentRun:
    """What the simulator knows of one agent: the status it last saw or gave it, since when,
    when it moves next on its own (None: not until someone else moves it), and its call."""

    status: int
    since_ms: int
    due_ms: int | None = None
    call: str | None = None


@dataclass(slots=True)
class CallRun:
    """A call under way: its phase, and when that phase ends."""

    direction: str
    phase: str
    number: int
    phone: int
    created_ms: int
    due_ms: int
    agent: str | None = None


@dataclass(slots=True)
class Counters:
    calls: int = 0
    """Inbound calls that arrived."""
    outbound: int = 0
    """Outbound calls placed."""
    unplaced: int = 0
    """Outbound calls not placed: no agent was available."""
    answered: int = 0
    completed: int = 0
    abandoned: int = 0
    """Callers who hung up in the queue."""
    interrupted: int = 0
    """Calls cut short: someone else moved the agent, or the simulation stopped."""
    breaks: int = 0
    offline: int = 0
    logouts: int = 0
    returns: int = 0
    """Agents back to Available from a break, offline work or a logout."""
    changes_seen: int = 0
    """Agents someone else moved (or removed) while the simulator had them."""
    events: int = 0
    """Events this simulation emitted for the tenant (its status changes and interactions)."""


@dataclass(slots=True)
class TenantRun:
    plan: TenantPlan
    rolls: int = 0
    """How many random generators the tenant's steps have drawn from."""
    transactions: int = 0
    next_call_ms: int | None = None
    agents: dict[str, AgentRun] = field(default_factory=dict)
    calls: dict[str, CallRun] = field(default_factory=dict)
    """In arrival order: the queue is first come, first served."""
    counters: Counters = field(default_factory=Counters)


@dataclass(slots=True)
class Run:
    """The whole simulation, as the record keeps it."""

    seed: int
    speed: float
    generation: int
    """Counts the simulations started on this state: a step of an older one never applies."""
    running: bool
    start_ms: int
    clock_ms: int
    tenants: dict[str, TenantRun]
    steps: int = 0
    leader: str | None = None
    """The process (``Simulator``) that moves the clock with real time, while its lease holds."""
    leader_pid: int | None = None
    renewed_ms: int = 0
    wall_ref: float = 0.0
    """The wall-clock second up to which the leader has moved the clock."""


def load_run(state: StateReader) -> Run | None:
    raw = state.record(RECORD)
    if raw is None:
        return None
    data = orjson.loads(raw)
    tenants = data.pop("tenants")
    return Run(**data, tenants={tenant_id: _tenant_run(run) for tenant_id, run in tenants.items()})


def _tenant_run(data: dict[str, Any]) -> TenantRun:
    plan = data["plan"]
    agents = plan["agents"]
    return TenantRun(
        plan=TenantPlan(**{**plan, "agents": None if agents is None else tuple(agents)}),
        rolls=data["rolls"],
        transactions=data["transactions"],
        next_call_ms=data["next_call_ms"],
        agents={agent_id: AgentRun(**agent) for agent_id, agent in data["agents"].items()},
        calls={guid: CallRun(**call) for guid, call in data["calls"].items()},
        counters=Counters(**data["counters"]),
    )


def _save_run(state: EventWriter, run: Run) -> None:
    state.put_record(RECORD, orjson.dumps(run))


_SIMULATED_MS: ContextVar[int | None] = ContextVar("simulated_ms", default=None)
"""The simulated time of the write transaction this thread (or task) is in; None: none."""


class SimulatedClock:
    """The clock an ``EventedStore`` stamps events with: the simulated time inside the
    simulator's own write transactions, the wall clock everywhere else."""

    def __init__(self, wall: Callable[[], float]) -> None:
        self.wall = wall

    def __call__(self) -> float:
        simulated = _SIMULATED_MS.get()
        # Half a millisecond more, so that the store's int(seconds * 1000) gives it back exactly.
        return self.wall() if simulated is None else (simulated + 0.5) / 1000


@contextmanager
def _simulated(at_ms: int | None) -> Iterator[None]:
    token = _SIMULATED_MS.set(at_ms)
    try:
        yield
    finally:
        _SIMULATED_MS.reset(token)


def _next_due(run: Run) -> int | None:
    dues = [
        due
        for tenant in run.tenants.values()
        for due in (
            tenant.next_call_ms,
            *(agent.due_ms for agent in tenant.agents.values()),
            *(call.due_ms for call in tenant.calls.values()),
        )
        if due is not None
    ]
    return min(dues, default=None)


def _unseen(tenant: TenantRun, agents: list[Agent]) -> bool:
    """Whether someone else changed (or removed, or added) an agent since the last step."""
    statuses = {agent.agent_id: agent.status for agent in agents}
    if any(statuses.get(agent_id) != run.status for agent_id, run in tenant.agents.items()):
        return True
    return tenant.plan.agents is None and any(
        agent_id not in tenant.agents for agent_id in statuses
    )


def _next_instant(run: Run, state: StateReader, target: int) -> int | None:
    """When the next step happens: now if there are changes to see, else at the next thing
    due up to ``target``, else at ``target`` itself (moving the clock only); None when the
    clock is at ``target`` with nothing left to do."""
    for tenant_id, tenant in run.tenants.items():
        if state.tenant(tenant_id) is None or _unseen(tenant, state.agents(tenant_id)):
            return run.clock_ms
    due = _next_due(run)
    if due is not None and due <= target:
        return max(due, run.clock_ms)
    return target if run.clock_ms < target else None


class _Shift:
    """One tenant's part of one step, at ``now``, inside a write transaction."""

    def __init__(
        self, seed: int, tenant: Tenant, run: TenantRun, state: EventWriter, now: int
    ) -> None:
        self.seed = seed
        self.tenant = tenant
        self.tenant_id = tenant.tenant_id
        self.run = run
        self.plan = run.plan
        self.state = state
        self.now = now
        self.agents = {agent.agent_id: agent for agent in state.agents(self.tenant_id)}
        self._rng: random.Random | None = None

    @property
    def rng(self) -> random.Random:
        """This step's generator, drawn for the first time only when something is random."""
        if self._rng is None:
            # A string seed is hashed with SHA-512: the same in every process and run.
            self._rng = random.Random(f"{self.seed}/{self.tenant_id}/{self.run.rolls}")
            self.run.rolls += 1
        return self._rng

    # -- time ---------------------------------------------------------------------------

    def after(self, mean_seconds: float) -> int:
        """``now`` plus an exponential draw of that mean, at least a millisecond later."""
        return self.now + max(1, round(self.rng.expovariate(1 / (mean_seconds * 1000))))

    def every(self, per_hour: float) -> int | None:
        return None if per_hour <= 0 else self.after(HOUR_MS / per_hour / 1000)

    def idle_rate(self) -> float:
        return self.plan.breaks_per_hour + self.plan.offline_per_hour + self.plan.logouts_per_hour

    def dwell(self, status: int) -> int | None:
        """When an agent found in ``status`` moves on its own next."""
        if status == AgentStatus.WAIT_TRANSACT:
            return self.every(self.idle_rate())
        means: dict[int, float] = {
            AgentStatus.ON_BREAK: self.plan.break_seconds,
            AgentStatus.WORK_OFFLINE: self.plan.offline_seconds,
            AgentStatus.LOGGED_OUT: self.plan.logged_out_seconds,
        }
        mean = means.get(status)
        return None if mean is None else self.after(mean)

    # -- the step -----------------------------------------------------------------------

    def begin(self) -> None:
        """The shift starts: every simulated agent as it is now, the first call drawn."""
        order = self.plan.agents if self.plan.agents is not None else tuple(self.agents)
        for agent_id in order:
            status = self.agents[agent_id].status
            self.run.agents[agent_id] = AgentRun(status, self.now, self.dwell(status))
        self.run.next_call_ms = self.every(self.plan.calls_per_hour)

    def observe(self) -> None:
        """Take in what someone else changed: a moved agent's call ends, and the agent goes
        on from the status it is in now."""
        for agent_id, run in list(self.run.agents.items()):
            current = self.agents.get(agent_id)
            if current is not None and current.status == run.status:
                continue
            self.run.counters.changes_seen += 1
            if run.call is not None:
                self.end_call(run.call, "SYSTEM", "CEC_DISCONNECT_FAILED")
                self.run.counters.interrupted += 1
            if current is None:
                del self.run.agents[agent_id]
                continue
            run.status, run.since_ms = current.status, self.now
            run.due_ms = self.dwell(current.status)
        if self.plan.agents is None:
            for agent_id, agent in self.agents.items():
                if agent_id not in self.run.agents:
                    self.run.agents[agent_id] = AgentRun(
                        agent.status, self.now, self.dwell(agent.status)
                    )

    def run_due(self) -> None:
        """Everything due now: calls first (they free agents), then agents' own moves, then a
        new call, then the queue goes to whoever is available."""
        for guid, call in list(self.run.calls.items()):
            if call.due_ms <= self.now:
                self.call_moves(guid, call)
        for agent_id, run in self.run.agents.items():
            if run.call is None and run.due_ms is not None and run.due_ms <= self.now:
                self.agent_moves(agent_id, run)
        if self.run.next_call_ms is not None and self.run.next_call_ms <= self.now:
            self.arrive()
            self.run.next_call_ms = self.every(self.plan.calls_per_hour)
        self.dispatch()

    def stop(self) -> None:
        """The simulation stops: every call ends now, and its agent is Available again."""
        for guid, call in list(self.run.calls.items()):
            if call.phase == QUEUED:
                self.interaction(guid, call, "InteractionUnqueued", "CS_DISCONNECTED")
                self.end_call(guid, "SYSTEM", "CEC_DISCONNECT_CANCELLED")
            else:
                agent = self.agents.get(call.agent or "")
                if agent is not None and agent.status == PHASE_STATUS[call.phase]:
                    self.interaction(guid, call, "InteractionDeassigned", "CS_DISCONNECTED")
                    self.end_call(guid, "SYSTEM", "CEC_DISCONNECT_CANCELLED")
                    self.move(agent.agent_id, AgentStatus.WAIT_TRANSACT, NO_CODES)
                else:
                    self.end_call(guid, "SYSTEM", "CEC_DISCONNECT_FAILED")
            self.run.counters.interrupted += 1

    # -- agents -------------------------------------------------------------------------

    def move(self, agent_id: str, status: AgentStatus, codes: Codes) -> None:
        """Save the agent in ``status``, directly: the platform's own change, not the API's."""
        list_id, item_id, short_code = codes
        updated = replace(
            self.agents[agent_id],
            status=int(status),
            list_id=list_id,
            item_id=item_id,
            short_code=short_code,
        )
        self.state.save_agent(self.tenant_id, updated)
        self.agents[agent_id] = updated
        run = self.run.agents[agent_id]
        run.status, run.since_ms = int(status), self.now
        self.run.counters.events += 1

    def reason(self, agent: Agent) -> Codes:
        """A reason code of the agent's group, drawn; none when the group has no list."""
        group = self.tenant.groups.get(agent.group_id)
        lists = [
            self.tenant.status_code_lists[list_id]
            for list_id in (() if group is None else group.status_code_lists)
            if list_id in self.tenant.status_code_lists
            and self.tenant.status_code_lists[list_id].items
        ]
        if not lists:
            return NO_CODES
        code_list = self.rng.choice(lists)
        item_id = self.rng.choice(list(code_list.items))
        return code_list.id, item_id, code_list.items[item_id]

    def agent_moves(self, agent_id: str, run: AgentRun) -> None:
        """An agent's own move: from Available to a break, offline work or a logout (by
        their rates), and back to Available from any of them."""
        agent = self.agents[agent_id]
        counters = self.run.counters
        if run.status == AgentStatus.WAIT_TRANSACT:
            draw = self.rng.random() * self.idle_rate()
            if draw < self.plan.breaks_per_hour:
                self.move(agent_id, AgentStatus.ON_BREAK, self.reason(agent))
                counters.breaks += 1
            elif draw < self.plan.breaks_per_hour + self.plan.offline_per_hour:
                self.move(agent_id, AgentStatus.WORK_OFFLINE, self.reason(agent))
                counters.offline += 1
            else:
                self.move(agent_id, AgentStatus.LOGGED_OUT, LOGGED_OUT_CODES)
                counters.logouts += 1
        elif run.status in (AgentStatus.ON_BREAK, AgentStatus.WORK_OFFLINE, AgentStatus.LOGGED_OUT):
            self.move(agent_id, AgentStatus.WAIT_TRANSACT, NO_CODES)
            counters.returns += 1
        run.due_ms = self.dwell(run.status)

    def available(self) -> str | None:
        """The agent Available and without a call for the longest (the first such in order)."""
        free = [
            (run.since_ms, agent_id)
            for agent_id, run in self.run.agents.items()
            if run.status == AgentStatus.WAIT_TRANSACT and run.call is None
        ]
        return min(free, key=lambda pair: pair[0])[1] if free else None

    # -- calls --------------------------------------------------------------------------

    def guid(self) -> str:
        """The vendor's shape: ``int-<created ms, hex>-<25 characters>-phone-00-<tenant>``."""
        tail = "".join(self.rng.choice(GUID_ALPHABET) for _ in range(25))
        return f"int-{self.now:x}-{tail}-phone-00-{self.tenant_id}"

    def interaction(
        self, guid: str, call: CallRun, event: str, call_state: str, **extra: Any
    ) -> None:
        """Emit one ``Interaction`` event, with the fields the vendor's reference names."""
        seconds = self.now // 1000
        body: dict[str, Any] = {
            "event": event,
            "interactionGUID": guid,
            "callState": call_state,
            "mediaType": "phone",
            "direction": call.direction,
            "isAgentInitiated": call.direction == OUT,
            "resourceType": 0,
            "queueId": QUEUE_ID,
            "queueList": QUEUE_ID,
            "queueTime": call.created_ms // 1000,
            "transactionNum": call.number,
            "interactionEventTS": seconds,
            "eventTS": seconds,
            "attachedData": {
                "attachedDatum": [{"attachedDataKey": "phoneNum", "attachedDataValue": call.phone}]
            },
        }
        if call.agent is not None:
            body["agentId"] = call.agent
            body["participatingAgents"] = call.agent
        body.update(extra)
        # No agent id for the stream's agent-v1 topics: the vendor publishes agent events there.
        self.state.emit(self.tenant_id, EventDraft(INTERACTION, "", body))
        self.run.counters.events += 1

    def end_call(self, guid: str, initiator: str, reason: str) -> None:
        """The call's last event; its agent (if any) is free of it."""
        call = self.run.calls.pop(guid)
        self.interaction(
            guid,
            call,
            "InteractionDeleted",
            "CS_DISCONNECTED",
            hangupInitiator=initiator,
            callHangupReason=reason,
            dispositionCode=1000,
        )
        agent = self.run.agents.get(call.agent or "")
        if agent is not None and agent.call == guid:
            agent.call = None

    def arrive(self) -> None:
        """A call: inbound into the queue, or outbound placed by an available agent."""
        outbound = self.rng.random() < self.plan.outbound_share
        agent_id = self.available() if outbound else None
        if outbound and agent_id is None:
            self.run.counters.unplaced += 1
            return
        self.run.transactions += 1
        guid = self.guid()
        phone = self.rng.randrange(2_000_000_000, 10_000_000_000)
        if agent_id is not None:
            call = CallRun(OUT, OFFERED, self.run.transactions, phone, self.now, self.now)
            self.run.calls[guid] = call
            self.interaction(guid, call, "InteractionCreated", "CS_IDLE")
            self.assign(guid, call, agent_id)
            self.run.counters.outbound += 1
            return
        patience = self.after(self.plan.patience_seconds)
        call = CallRun(IN, QUEUED, self.run.transactions, phone, self.now, patience)
        self.run.calls[guid] = call
        self.interaction(guid, call, "InteractionCreated", "CS_QUEUED")
        self.interaction(guid, call, "InteractionQueued", "CS_QUEUED", priority=50)
        self.run.counters.calls += 1

    def assign(self, guid: str, call: CallRun, agent_id: str) -> None:
        """The call is offered to the agent, who rings (6)."""
        call.agent, call.phase, call.due_ms = agent_id, OFFERED, self.after(self.plan.ring_seconds)
        run = self.run.agents[agent_id]
        run.call, run.due_ms = guid, None
        self.interaction(guid, call, "InteractionAssigned", "CS_INPROGRESS")
        self.move(agent_id, AgentStatus.TRANSACT_OFFERED, NO_CODES)

    def dispatch(self) -> None:
        """Queued calls, oldest first, each to the agent Available for the longest."""
        for guid, call in self.run.calls.items():
            if call.phase != QUEUED:
                continue
            agent_id = self.available()
            if agent_id is None:
                return
            self.assign(guid, call, agent_id)

    def call_moves(self, guid: str, call: CallRun) -> None:
        """The end of a call's phase: the next event of the vendor's sequence, and the agent's
        next status (6 -> 7 -> 8 -> 4)."""
        counters = self.run.counters
        if call.phase == QUEUED:
            self.interaction(guid, call, "InteractionUnqueued", "CS_DISCONNECTED")
            self.end_call(guid, "CUSTOMER", "CEC_DISCONNECT_CANCELLED")
            counters.abandoned += 1
            return
        agent_id = call.agent or ""
        if call.phase == OFFERED:
            accepted = (
                "InteractionAccepted" if call.direction == IN else "InteractionCustomerAccepted"
            )
            self.interaction(guid, call, accepted, "CS_CONNECTED")
            self.move(agent_id, AgentStatus.PROCESS_TRANSACT, NO_CODES)
            call.phase, call.due_ms = TALKING, self.after(self.plan.talk_seconds)
            counters.answered += 1
        elif call.phase == TALKING:
            self.interaction(guid, call, "InteractionPostProcess", "CS_DISCONNECTED")
            self.move(agent_id, AgentStatus.POST_PROCESS, NO_CODES)
            call.phase, call.due_ms = WRAPPING, self.after(self.plan.wrap_seconds)
        else:
            self.interaction(guid, call, "InteractionEndPostProcess", "CS_DISCONNECTED")
            self.interaction(guid, call, "InteractionDeassigned", "CS_DISCONNECTED")
            self.end_call(guid, self.rng.choice(("CUSTOMER", "AGENT")), "CEC_DISCONNECT_NORMAL")
            self.move(agent_id, AgentStatus.WAIT_TRANSACT, NO_CODES)
            self.run.agents[agent_id].due_ms = self.dwell(AgentStatus.WAIT_TRANSACT)
            counters.completed += 1


def _step(run: Run, state: EventWriter, now: int) -> None:
    """One step at ``now``: each tenant sees what changed, then does what is due."""
    for tenant_id in list(run.tenants):
        tenant = state.tenant(tenant_id)
        if tenant is None:
            del run.tenants[tenant_id]
            continue
        shift = _Shift(run.seed, tenant, run.tenants[tenant_id], state, now)
        shift.observe()
        shift.run_due()
    run.clock_ms = now
    run.steps += 1


Result = TypeVar("Result")
_LIVE: weakref.WeakSet[Simulator] = weakref.WeakSet()


class Simulator:
    """This process's handle on the simulation of one state; the simulation itself is in the
    store, so every process's ``Simulator`` over a shared store drives the same one."""

    def __init__(
        self,
        backend: AgentStatusBackend,
        wall: Callable[[], float] = time.time,
        tick_seconds: float = TICK_SECONDS,
    ) -> None:
        self._store = backend.evented_store
        if not isinstance(self._store.clock, SimulatedClock):
            self._store.clock = SimulatedClock(self._store.clock)
        self._wall = wall
        self._tick_seconds = tick_seconds
        self._id = secrets.token_hex(8)
        self._lock = threading.Lock()
        self._ticker: threading.Thread | None = None
        self._kicked = False
        self._closing = threading.Event()
        _LIVE.add(self)

    # -- what the control plane calls ---------------------------------------------------

    def start(self, config: SimulationConfig) -> dict[str, Any]:
        """Start a simulation, ending the calls of one already running (at its own time)."""
        wall = self._wall()

        def act(state: EventWriter, _: int | None) -> Run:
            previous = load_run(state)
            run = self._new_run(
                state, config, wall, 1 if previous is None else previous.generation + 1
            )
            if previous is not None and previous.running:
                self._finish(state, previous)
            _save_run(state, run)
            return run

        run = self._write_at(_running_clock, act, skip_when_none=False)
        if run is not None and run.speed > 0:
            self._kick()
        return self.status()

    def stop(self) -> dict[str, Any]:
        """Stop the simulation: its calls end now and their agents are Available again."""

        def act(state: EventWriter, _: int | None) -> None:
            run = load_run(state)
            if run is not None and run.running:
                self._finish(state, run)
                _save_run(state, run)

        self._write_at(_running_clock, act)
        return self.status()

    def halt(self) -> None:
        """``stop`` for the control plane's full reset, which wants no answer."""
        self.stop()

    def status(self) -> dict[str, Any]:
        """The simulation and its counters (``{"running": false}`` before the first)."""
        with self._store.reading() as state:
            run = load_run(state)
        if run is None:
            return {"running": False, "tenants": {}}
        if run.running and run.speed > 0:
            self._kick()  # takes over if the leading process is gone
        return _view(run)

    def advance(self, milliseconds: int) -> dict[str, Any]:
        """Move the simulated clock forward, applying everything due on the way, now."""
        with self._store.reading() as state:
            run = load_run(state)
        if run is None or not run.running:
            raise SimulationNotRunning()
        self._advance_to(run.clock_ms + milliseconds, run.generation, lead=False)
        return self.status()

    def resume(self) -> None:
        """At start-up: keep a running simulation moving with real time (a restart with the
        same state file, or a worker replaced)."""
        with self._store.reading() as state:
            run = load_run(state)
        if run is not None and run.running and run.speed > 0:
            self._kick()

    def close(self) -> None:
        """Stop this process's ticker (the simulation stays in the store)."""
        self._closing.set()
        with self._lock:
            ticker = self._ticker
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join(timeout=5)

    # -- steps --------------------------------------------------------------------------

    def _write_at(
        self,
        instant_of: Callable[[StateReader], int | None],
        act: Callable[[EventWriter, int | None], Result],
        *,
        skip_when_none: bool = True,
    ) -> Result | None:
        """``act`` in a write transaction whose events carry the simulated time
        ``instant_of`` finds. It is looked at before the transaction (which stamps its events
        when it opens) and again inside it: if another process moved the simulation between
        the two, it looks again. None (without acting) when the instant is None and
        ``skip_when_none``."""
        while True:
            with self._store.reading() as state:
                instant = instant_of(state)
            if instant is None and skip_when_none:
                return None
            with _simulated(instant), self._store.writing() as writer:
                if instant_of(writer) == instant:
                    return act(writer, instant)

    def _advance_to(self, target: int, generation: int, *, lead: bool) -> None:
        """Step until the clock reaches ``target``; a leader renews its lease on the way."""

        def instant_of(state: StateReader) -> int | None:
            run = load_run(state)
            if run is None or not run.running or run.generation != generation:
                return None
            return _next_instant(run, state, target)

        def act(state: EventWriter, instant: int | None) -> bool:
            run = load_run(state)
            if run is None or instant is None:
                return False
            _step(run, state, instant)
            if lead and run.leader == self._id:
                run.renewed_ms = int(self._wall() * 1000)
            _save_run(state, run)
            return True

        while self._write_at(instant_of, act):
            pass

    def _new_run(
        self, state: EventWriter, config: SimulationConfig, wall: float, generation: int
    ) -> Run:
        """The simulation ``config`` asks for, or a 400 naming a tenant or agent not there."""
        plans = config.tenants
        if plans is None:
            plans = {tenant_id: TenantPlan() for tenant_id in state.tenant_ids()}
        start = int(wall * 1000) if config.start_ms is None else config.start_ms
        run = Run(config.seed, config.speed, generation, True, start, start, {}, wall_ref=wall)
        for tenant_id, plan in plans.items():
            tenant = state.tenant(tenant_id)
            if tenant is None:
                raise InvalidRequest(f"tenants.{tenant_id[:40]}: the tenant does not exist.")
            known = {agent.agent_id for agent in state.agents(tenant_id)}
            for index, agent_id in enumerate(plan.agents or ()):
                if agent_id not in known:
                    raise InvalidRequest(
                        f"tenants.{tenant_id[:40]}.agents[{index}]: the agent does not exist: "
                        f"'{agent_id[:40]}'."
                    )
            tenant_run = TenantRun(plan)
            _Shift(config.seed, tenant, tenant_run, state, start).begin()
            run.tenants[tenant_id] = tenant_run
        return run

    def _finish(self, state: EventWriter, run: Run) -> None:
        for tenant_id, tenant_run in run.tenants.items():
            tenant = state.tenant(tenant_id)
            if tenant is not None:
                _Shift(run.seed, tenant, tenant_run, state, run.clock_ms).stop()
        run.running = False
        run.leader = run.leader_pid = None

    # -- the ticker (speed above 0) -----------------------------------------------------

    def _kick(self) -> None:
        """Make sure this process ticks (as the leader, or standing by to take over)."""
        with self._lock:
            self._kicked = True
            if self._ticker is None and not self._closing.is_set():
                self._ticker = threading.Thread(
                    target=_beat,
                    args=(weakref.ref(self), self._closing, self._tick_seconds),
                    name="agentstatus-simulation",
                    daemon=True,
                )
                self._ticker.start()

    def _keep_ticking(self) -> bool:
        """Called by the ticker after a beat that found nothing to tick: it ends, unless a
        simulation was started meanwhile."""
        with self._lock:
            if self._kicked:
                return True
            self._ticker = None
            return False

    def tick(self) -> bool:
        """One beat: the leader moves the clock by the real time since its last beat times
        ``speed``; another process only checks the lease. False when nothing runs with
        real time any more."""
        with self._lock:
            self._kicked = False
        now = self._wall()
        with self._store.reading() as state:
            run = load_run(state)
        if run is None or not run.running or run.speed <= 0:
            return False
        if not self._may_lead(run, now):
            return True
        with self._store.writing() as writer:
            claimed = self._claim(writer, now)
        if claimed is not None:
            self._advance_to(*claimed, lead=True)
        return True

    def _may_lead(self, run: Run, now: float) -> bool:
        return run.leader in (None, self._id) or now * 1000 - run.renewed_ms > LEASE_MS

    def _claim(self, state: EventWriter, now: float) -> tuple[int, int] | None:
        """Take or renew the lease; the target the clock moves to and the generation."""
        run = load_run(state)
        if run is None or not run.running or run.speed <= 0 or not self._may_lead(run, now):
            return None
        if run.leader not in (None, self._id):
            run.wall_ref = now  # a new leader does not catch up on time nobody ticked
        moved = math.floor((now - run.wall_ref) * 1000 * run.speed)
        run.wall_ref += moved / 1000 / run.speed
        run.leader, run.leader_pid, run.renewed_ms = self._id, os.getpid(), int(now * 1000)
        _save_run(state, run)
        return run.clock_ms + moved, run.generation


def _running_clock(state: StateReader) -> int | None:
    run = load_run(state)
    return run.clock_ms if run is not None and run.running else None


def _beat(reference: weakref.ref[Simulator], closing: threading.Event, period: float) -> None:
    """The ticker's loop; it holds its simulator weakly, so a dropped app stops it."""
    while not closing.wait(period):
        simulator = reference()
        if simulator is None:
            return
        if not simulator.tick() and not simulator._keep_ticking():
            return
        del simulator


@atexit.register
def _stop_tickers() -> None:
    """At interpreter exit, before daemon threads are dropped: no ticker mid-transaction."""
    for simulator in list(_LIVE):
        simulator.close()


def _view(run: Run) -> dict[str, Any]:
    """The simulation as ``GET /__admin/simulation`` shows it."""
    return {
        "running": run.running,
        "seed": run.seed,
        "speed": run.speed,
        "start-ms": run.start_ms,
        "clock-ms": run.clock_ms,
        "elapsed-ms": run.clock_ms - run.start_ms,
        "steps": run.steps,
        "leader-pid": run.leader_pid if run.running and run.speed > 0 else None,
        "tenants": {
            tenant_id: {
                "agents": len(tenant.agents),
                "available": sum(
                    agent.status == AgentStatus.WAIT_TRANSACT and agent.call is None
                    for agent in tenant.agents.values()
                ),
                "on-call": sum(agent.call is not None for agent in tenant.agents.values()),
                "queued": sum(call.phase == QUEUED for call in tenant.calls.values()),
                "settings": plan_view(tenant.plan),
                "counters": {
                    _hyphenated(item.name): getattr(tenant.counters, item.name)
                    for item in fields(Counters)
                },
            }
            for tenant_id, tenant in run.tenants.items()
        },
    }


def plan_view(plan: TenantPlan) -> dict[str, Any]:
    """A plan in the request's terms: the rates, durations and ``mix``; ``agents`` if named."""
    view: dict[str, Any] = {} if plan.agents is None else {"agents": list(plan.agents)}
    for item in fields(TenantPlan):
        if item.name == "outbound_share":
            view["mix"] = {"inbound": 1 - plan.outbound_share, "outbound": plan.outbound_share}
        elif item.name != "agents":
            view[_hyphenated(item.name)] = getattr(plan, item.name)
    return view


def _hyphenated(name: str) -> str:
    return name.replace("_", "-")
