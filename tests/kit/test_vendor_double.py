"""A short self-test of the independent vendor double (tests/kit/vendor_double.py)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from schemas.wire import agents_path
from tests.kit.vendor_double import TENANT, TOKEN, USERNAME, WRITABLE, Variant, serve

AUTH = (USERNAME, TOKEN)
ADA, BO, CY, DI, ED, FLO, GUS = WRITABLE
MAIN = Path(__file__).resolve().parents[2]


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.auth = AUTH
        yield session


def agents_url(root: str, suffix: str = "", tenant: str = TENANT) -> str:
    """The double's list path, or below it with ``suffix`` (``/{agent}``, ``/bulk``)."""
    return root + agents_path(tenant) + suffix


def test_guide_list_and_get(http: requests.Session) -> None:
    with serve() as root:
        listed = http.get(agents_url(root))
        assert listed.status_code == 200
        data = listed.json()["data"]
        assert len(data) == 9 and "page" not in listed.json()
        by_id = {agent["agent-id"]: agent for agent in data}
        assert by_id[GUS] == {"agent-id": GUS, "agent-status": 0, "name": "Gus Never"}
        assert by_id[FLO]["status-code-list-id"] == -1 and by_id[FLO]["status-code-item-id"] == 1
        assert "status-code-item-short-code" not in by_id[FLO]
        one = http.get(agents_url(root, f"/{CY}"))
        assert one.status_code == 200
        assert one.json() == {
            "agent-id": CY,
            "agent-status": 5,
            "status-code-list-id": 802,
            "status-code-item-id": 1801,
            "status-code-item-short-code": "Email",
            "name": "Cy Offline",
            "agent-sub-status": "stopnew",
        }
        group = http.get(agents_url(root), params={"groupId": "300"}).json()["data"]
        assert [agent["agent-id"] for agent in group] == [GUS, "agDoubleOnCall00000000008"]
        assert http.get(agents_url(root, "/agNoSuchAgent")).status_code == 404


def test_guide_set_single(http: requests.Session) -> None:
    body = {
        "agent-status": 5,
        "status-code-list-id": 801,
        "status-code-item-id": 1722,
        "status-code-item-short-code": "Meet",
    }
    with serve() as root:
        answer = http.put(agents_url(root, f"/{BO}"), json=body)
        assert answer.status_code == 200 and answer.content == b""
        after = http.get(agents_url(root, f"/{BO}")).json()
        assert {key: after[key] for key in body} == body
    with serve(Variant(single_success_body="guide")) as root:
        answer = http.put(agents_url(root, f"/{BO}"), json=body)
        assert answer.json() == {
            "reason": "OK",
            "change-status": 200,
            "message": "Agent status change successful",
        }


def test_guide_bulk(http: requests.Session) -> None:
    lunch = {"status-code-list-id": 801, "status-code-item-id": 1725}
    entries = [
        {"agent-id": BO, "agent-status": 3, **lunch, "status-code-item-short-code": "Lunch"},
        {"agent-id": DI, "agent-status": 3, **lunch, "status-code-item-short-code": "Lunch"},
        {"agent-id": "agNoSuchAgent", "agent-status": 3},
        {"agent-id": CY, "agent-status": 4, **lunch, "status-code-item-short-code": "Meet"},
    ]
    for variant in (Variant(), Variant(bulk_methods=frozenset({"PUT"}))):
        method = "PUT" if "PUT" in variant.bulk_methods else "POST"
        with serve(variant) as root:
            answer = http.request(method, agents_url(root, "/bulk"), json={"agents": entries})
            assert answer.status_code == 207
            results = answer.json()["data"]
            assert [(r["agent-id"], r["change-status"]) for r in results] == [
                (BO, 200),
                (DI, 200),
                ("agNoSuchAgent", 404),
                (CY, 400),
            ]
            assert results[3]["reason"] == "The status code item short code is invalid."
            for agent_id, status in ((BO, 3), (DI, 3), (CY, 5)):
                assert http.get(agents_url(root, f"/{agent_id}")).json()["agent-status"] == status


def test_transitions_refused_and_nothing_changes(http: requests.Session) -> None:
    with serve(Variant(error_body="spring")) as root:
        for agent_id, target in ((FLO, 4), (ED, 3), (GUS, 5), (ADA, 9), (ADA, 2)):
            before = http.get(agents_url(root, f"/{agent_id}")).json()
            refused = http.put(agents_url(root, f"/{agent_id}"), json={"agent-status": target})
            assert refused.status_code == 400, (agent_id, target)
            assert refused.json()["status"] == 400
            assert http.get(agents_url(root, f"/{agent_id}")).json() == before
        wrong_list = {"agent-status": 4, "status-code-list-id": 803, "status-code-item-id": 1901}
        assert http.put(agents_url(root, f"/{ADA}"), json=wrong_list).status_code == 400
        assert http.put(agents_url(root, f"/{ADA}"), json={"agent-status": 1}).status_code == 200
        assert http.put(agents_url(root, f"/{ADA}"), json={"agent-status": 3}).status_code == 400


def test_bad_input_auth_and_tenant(http: requests.Session) -> None:
    with serve(Variant(error_media_type="application/problem+json", www_authenticate=True)) as root:
        for raw in ("{", "[]", '{"agent-status": "4"}', '{"agent-status": true}', "null"):
            answer = http.put(
                agents_url(root, f"/{BO}"),
                data=raw,
                headers={"Content-Type": "application/json"},
            )
            assert answer.status_code == 400, raw
            assert answer.headers["Content-Type"] == "application/problem+json"
            assert answer.json()["status"] == 400
        for bad in ('{"agents": {}}', '{"agents": [1]}', '{"agents": [{"agent-status": 3}]}'):
            answer = http.post(
                agents_url(root, "/bulk"), data=bad, headers={"Content-Type": "application/json"}
            )
            assert answer.status_code == 400, bad
        too_many = {"agents": [{"agent-id": BO, "agent-status": 4}] * 101}
        assert http.post(agents_url(root, "/bulk"), json=too_many).status_code == 400
        unauthorized = requests.get(agents_url(root), auth=(USERNAME, "wrong"))
        unauthorized.close()
        assert unauthorized.status_code == 401 and unauthorized.content == b""
        assert unauthorized.headers["WWW-Authenticate"].startswith("Basic realm=")
        other = http.get(agents_url(root, tenant="someoneelse"))
        assert other.status_code == 403
        assert other.json()["detail"] == "You are not authorized to access this tenant."
        assert http.delete(agents_url(root)).status_code == 405


def test_paging_when_honoured(http: requests.Session) -> None:
    with serve(Variant(pagination="honoured", filler_agents=250)) as root:
        seen: list[str] = []
        index = 0
        while True:
            answer = http.get(
                agents_url(root), params={"pageSize": "100.0", "pageIndex": str(index)}
            )
            assert answer.status_code == 200
            body = answer.json()
            assert body["page"] == {
                "pageSize": 100,
                "totalElements": 259,
                "totalPages": 3,
                "pageIndex": index,
            }
            seen += [agent["agent-id"] for agent in body["data"]]
            index += 1
            if index >= body["page"]["totalPages"]:
                break
        assert len(seen) == len(set(seen)) == 259
        assert seen[:250] == [f"agDoubleFiller{n:06d}" for n in range(1, 251)]
        assert set(WRITABLE) <= set(seen[250:])
        assert http.get(agents_url(root), params={"pageSize": 501}).status_code == 400
    with serve(Variant(filler_agents=250)) as root:
        answer = http.get(agents_url(root), params={"pageSize": 10, "pageIndex": 1}).json()
        assert len(answer["data"]) == 259 and "page" not in answer


def test_broken_logged_out_revived(http: requests.Session) -> None:
    with serve(Variant(broken=frozenset({"logged-out-revived"}))) as root:
        answer = http.put(agents_url(root, f"/{FLO}"), json={"agent-status": 4})
        assert answer.status_code == 200
        assert http.get(agents_url(root, f"/{FLO}")).json()["agent-status"] == 4


def test_broken_bulk_200_and_lying(http: requests.Session) -> None:
    entries = {"agents": [{"agent-id": BO, "agent-status": 3}, {"agent-id": ED, "agent-status": 4}]}
    with serve(Variant(broken=frozenset({"bulk-200", "bulk-result-lying"}))) as root:
        answer = http.post(agents_url(root, "/bulk"), json=entries)
        assert answer.status_code == 200
        assert [r["change-status"] for r in answer.json()["data"]] == [200, 200]
        assert http.get(agents_url(root, f"/{ED}")).json()["agent-status"] == 9


def test_command_line() -> None:
    command = [sys.executable, "-m", "tests.kit.vendor_double", "--pagination", "honoured"]
    with subprocess.Popen(command, cwd=MAIN, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            root = process.stdout.readline().strip()
            assert root.startswith("http://127.0.0.1:") and root.endswith("/api/v1")
            with requests.Session() as session:
                answer = session.get(agents_url(root), auth=AUTH)
            assert answer.json()["page"]["totalElements"] == 9
        finally:
            process.terminate()
            process.wait(timeout=10)
