"""The reference client of the 8x8 Agent Status API, and the ``agentstatus`` command line.

::

    from client import AgentStatusClient, AgentStatus, StatusCode

    with AgentStatusClient.from_env() as api:
        for agent in api.list_agents(group_id=100):
            print(agent.agent_id, agent.status_label)
        api.set_agent_status("ag64oyEUb_Sk6bxVB9P5yaaa", AgentStatus.ON_BREAK,
                             StatusCode(801, 1725, "Lunch"))

The statuses and transition rules are ``schemas.rules``, re-exported here, never re-typed.
The error hierarchy is described in ``client.errors``, the retry policy in ``client.retry``.
"""

from client.api import AgentStatusClient
from client.auth import TokenAuth
from client.config import platform_url
from client.errors import (
    AgentNotFoundError,
    AgentStatusError,
    ApiNotEnabledError,
    AuthenticationError,
    ChangeRejectedError,
    ConfigurationError,
    ForbiddenError,
    MethodNotAllowedError,
    RateLimitedError,
    ServerError,
    TenantForbiddenError,
    TransitionNotAllowedError,
    TransportError,
    UnexpectedResponseError,
)
from client.models import (
    Agent,
    BulkResult,
    ChangeOutcome,
    StatusChange,
    StatusCode,
    check_transition,
    parse_status,
)
from client.retry import NO_RETRY, RetryPolicy
from schemas.rules import SETTABLE, AgentStatus, can_transition, transition_refusal
from schemas.wire import platforms

__all__ = [
    "NO_RETRY",
    "SETTABLE",
    "Agent",
    "AgentNotFoundError",
    "AgentStatus",
    "AgentStatusClient",
    "AgentStatusError",
    "ApiNotEnabledError",
    "AuthenticationError",
    "BulkResult",
    "ChangeOutcome",
    "ChangeRejectedError",
    "ConfigurationError",
    "ForbiddenError",
    "MethodNotAllowedError",
    "RateLimitedError",
    "RetryPolicy",
    "ServerError",
    "StatusChange",
    "StatusCode",
    "TenantForbiddenError",
    "TokenAuth",
    "TransitionNotAllowedError",
    "TransportError",
    "UnexpectedResponseError",
    "can_transition",
    "check_transition",
    "parse_status",
    "platform_url",
    "platforms",
    "transition_refusal",
]
