"""Authentication and tenant isolation: who may call, and on which tenant's path."""

from __future__ import annotations

import pytest

from contract_tests.conformance import Conformance
from contract_tests.http import ApiTransport, Credentials
from contract_tests.target import Target
from mock_server.harness.handle import Emulator
from schemas.wire import FORBIDDEN_XML

# The reference answers 403 ("not authorized to access this tenant"); a tenant that does not
# exist may as well be 401 or 404. Only an answer with data breaks the vendor contract.
REFUSED = (401, 403, 404)


def list_with(api: ApiTransport, credentials: Credentials | None) -> int:
    answer = api.send(
        "GET",
        api.agents_path(),
        operation="getagentsstatus",
        credentials=credentials,
        anonymous=credentials is None,
    )
    return answer.status


def test_the_right_credentials_are_accepted(api: ApiTransport) -> None:
    assert list_with(api, api.credentials) == 200


def test_a_wrong_token_is_401(api: ApiTransport) -> None:
    wrong = Credentials(api.credentials.username, api.credentials.token + "-wrong")
    status = list_with(api, wrong)
    assert status == 401, f"a wrong token must be refused with 401, the target answered {status}"


def test_an_unknown_user_is_401(api: ApiTransport) -> None:
    status = list_with(api, Credentials("kit-no-such-user", api.credentials.token))
    assert status == 401, f"an unknown user must be refused with 401, the target answered {status}"


def test_no_authorization_header_is_401(api: ApiTransport) -> None:
    status = list_with(api, None)
    assert status == 401, (
        f"a call without credentials must be refused with 401, the target answered {status}"
    )


def test_writes_with_a_wrong_token_are_401(target: Target, conformance: Conformance) -> None:
    """Every operation of the reference declares 401; the writes name only an agent the
    target answered 404 for, so even a wrong answer cannot change anyone."""
    api = target.api
    unknown = target.unknown_agent_id()
    wrong = Credentials(api.credentials.username, api.credentials.token + "-wrong")
    single = api.set_agent(unknown, {"agent-status": 3}, credentials=wrong)
    assert single.status == 401, f"a set with a wrong token must be 401: {single.describe()}"
    if conformance.bulk_method is not None:
        entries = {"agents": [{"agent-id": unknown, "agent-status": 3}]}
        bulk = api.bulk(conformance.bulk_method, entries, credentials=wrong)
        assert bulk.status == 401, f"a bulk with a wrong token must be 401: {bulk.describe()}"


def test_writes_on_another_tenants_path_are_refused(
    target: Target, conformance: Conformance
) -> None:
    """Valid credentials cannot write on a tenant path that is not theirs (the reference's 403
    on every operation); the writes name only an agent proven unknown, so they change no one."""
    api, other = target.api, target.other_tenant()
    unknown = target.unknown_agent_id()
    answers = [api.set_agent(unknown, {"agent-status": 3}, tenant=other)]
    if conformance.bulk_method is not None:
        entries = {"agents": [{"agent-id": unknown, "agent-status": 3}]}
        answers.append(api.bulk(conformance.bulk_method, entries, tenant=other))
    for answer in answers:
        assert answer.status in REFUSED, (
            f"a write on another tenant's path must be refused: {answer.describe()}"
        )
        if answer.status != 403:
            api.note("other_tenant_status", f"answered {answer.status}", answer.describe())


def test_valid_credentials_on_another_tenants_path_are_refused(target: Target) -> None:
    api = target.api
    other = api.agents_path(tenant=target.other_tenant())
    for path, operation in ((other, "getagentsstatus"), (other + "/ag1", "getagentstatus")):
        answer = api.send("GET", path, operation=operation)
        assert answer.status in REFUSED, (
            f"valid credentials on another tenant's path must be refused: {answer.describe()}"
        )
        if answer.status != 403:
            api.note("other_tenant_status", f"answered {answer.status}", answer.describe())


@pytest.mark.needs_control_plane("a live tenant cannot switch its Agent Status API off on demand")
def test_a_tenant_whose_api_is_disabled_gets_the_guides_xml_403(
    fresh: Target, emulator: Emulator
) -> None:
    emulator.set_api_enabled(False)
    try:
        answer = fresh.api.list_agents()
    finally:
        emulator.set_api_enabled(True)
    assert (answer.status, answer.media_type, answer.body) == (
        403,
        "application/xml",
        FORBIDDEN_XML.encode(),
    )


@pytest.mark.needs_control_plane("rotating a live token would lock out its owner")
def test_a_new_token_replaces_the_old_one_at_once(fresh: Target, emulator: Emulator) -> None:
    api = fresh.api
    new = Credentials(api.credentials.username, emulator.rotate_token())
    try:
        assert list_with(api, new) == 200
        assert list_with(api, api.credentials) == 401
    finally:
        emulator.reset_state()
    assert list_with(api, api.credentials) == 200
