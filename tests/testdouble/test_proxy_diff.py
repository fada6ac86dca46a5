"""``proxy``, ``validate-recording`` and ``diff``: an emulator stands in for the live tenant."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import DEMO_TENANT, DEMO_TOKEN, DEMO_USERNAME, OTHER_TENANT, api_path
from flask import Flask

from mock_server import create_app
from mock_server.cli import main
from mock_server.http.context import EXTENSION, EmulatorState
from mock_server.live.proxy import create_proxy_app, upstream_root
from mock_server.serving.threaded import RunningServer, start_in_thread

BIN = Path(sys.executable).parent
BOB = "agAQDqmvKiRbG4ekigNSmbbb"
BUSY = "agBacU3lzDPXzaLLkPZCLk1V"
UNKNOWN = "agNoSuchAgent00000000000"
ENCODED = base64.b64encode(f"{DEMO_USERNAME}:{DEMO_TOKEN}".encode()).decode()


@pytest.fixture(scope="module")
def live_app() -> Flask:
    return create_app()


@pytest.fixture(scope="module")
def live_service(live_app: Flask) -> Iterator[RunningServer]:
    with start_in_thread(live_app) as server:
        yield server


@pytest.fixture
def upstream(live_app: Flask, live_service: RunningServer) -> RunningServer:
    """The "live" service: a default-profile emulator of the demo tenants, fresh per test."""
    state: EmulatorState = live_app.extensions[EXTENSION]
    state.backend.reset()
    for path in ("/__admin/faults", "/__admin/requests"):
        assert requests.delete(live_service.base_url + path, timeout=10).ok
    return live_service


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    return tmp_path / "live.jsonl"


@pytest.fixture
def proxy(upstream: RunningServer, recording: Path) -> Iterator[RunningServer]:
    with start_in_thread(create_proxy_app(upstream.base_url, recording)) as server:
        yield server


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as demo:
        demo.auth = (DEMO_USERNAME, DEMO_TOKEN)
        yield demo


def record_a_session(proxy: RunningServer, session: requests.Session) -> list[int]:
    """Reads, writes and refusals of every kind, through the proxy; the statuses answered."""
    agents = proxy.base_url + api_path()
    bulk = {
        "agents": [{"agent-id": BOB, "agent-status": 5}, {"agent-id": UNKNOWN, "agent-status": 5}]
    }
    answers = [
        session.get(agents),
        session.get(f"{agents}/{BOB}"),
        session.put(f"{agents}/{BOB}", json={"agent-status": 3}),
        session.post(f"{agents}/bulk", json=bulk),
        session.get(f"{agents}/bulk"),
        session.get(f"{agents}/{UNKNOWN}"),
        session.put(f"{agents}/{BUSY}", json={"agent-status": 3}),
        session.get(proxy.base_url + api_path(OTHER_TENANT)),
        requests.get(agents, timeout=10),
        requests.get(agents, auth=(DEMO_USERNAME, "wrong-token"), timeout=10),
    ]
    return [answer.status_code for answer in answers]


def lines(recording: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in recording.read_text(encoding="utf-8").splitlines()]


def rewrite(recording: Path, exchanges: list[dict[str, Any]]) -> None:
    recording.write_text("".join(json.dumps(entry) + "\n" for entry in exchanges), encoding="utf-8")


def diff(recording: Path, *options: str) -> tuple[int, dict[str, Any]]:
    """``agentstatus-mock diff --json``: the exit status and the report."""
    output = io.StringIO()
    with redirect_stdout(output):
        status = main(["diff", str(recording), "--json", *options])
    report: dict[str, Any] = json.loads(output.getvalue())
    return status, report


def differences(report: dict[str, Any], number: int) -> list[dict[str, Any]]:
    exchange = next(e for e in report["exchanges"] if e["number"] == number)
    found: list[dict[str, Any]] = exchange["differences"]
    return found


def test_answers_pass_through_unchanged(
    upstream: RunningServer, proxy: RunningServer, session: requests.Session
) -> None:
    direct = session.get(upstream.base_url + api_path())
    proxied = session.get(proxy.base_url + api_path())
    assert (proxied.status_code, proxied.content) == (direct.status_code, direct.content)
    refused = session.put(proxy.base_url + api_path(suffix=f"/{BUSY}"), json={"agent-status": 3})
    assert refused.status_code == 400
    assert refused.headers["Content-Type"] == "application/problem+json"
    journal = requests.get(f"{upstream.base_url}/__admin/requests?method=PUT", timeout=10)
    [sent] = journal.json()["requests"]
    assert refused.headers["X-Request-Id"] == sent["response"]["headers"]["X-Request-Id"]
    assert refused.json() == sent["response"]["body"]
    assert sent["request"]["headers"]["Authorization"] == "Basic ***"


def test_faulted_answers_keep_their_status_headers_and_text_body(
    upstream: RunningServer, proxy: RunningServer, session: requests.Session
) -> None:
    fault = {
        "action": {
            "type": "respond",
            "status": 429,
            "body": "slow down",
            "headers": {"Retry-After": "7", "X-Custom": "kept"},
        }
    }
    assert requests.post(f"{upstream.base_url}/__admin/faults", json=fault, timeout=10).ok
    answer = session.get(proxy.base_url + api_path())
    assert (answer.status_code, answer.text) == (429, "slow down")
    assert answer.headers["Retry-After"] == "7"
    assert answer.headers["X-Custom"] == "kept"
    assert answer.headers["Content-Type"].startswith("text/plain")


def test_every_exchange_is_recorded_masked(
    proxy: RunningServer, session: requests.Session, recording: Path
) -> None:
    statuses = record_a_session(proxy, session)
    session.get(proxy.base_url + api_path(), params={"echo": DEMO_TOKEN})
    text = recording.read_text(encoding="utf-8")
    assert DEMO_TOKEN not in text
    assert ENCODED not in text
    recorded = lines(recording)
    assert [entry["status"] for entry in recorded] == [*statuses, 200]
    sent = [entry["request"]["headers"].get("Authorization") for entry in recorded]
    assert sent == ["Basic ***"] * 8 + [None, "Basic ***", "Basic ***"]
    assert recorded[-1]["query"] == "echo=***"
    put = recorded[2]
    assert (put["method"], put["path"]) == ("PUT", api_path(suffix=f"/{BOB}"))
    assert put["request"]["body"] == {"agent-status": 3}
    assert put["response"]["body"]["reason"] == "OK"
    assert put["duration-ms"] > 0


def test_an_unreachable_upstream_is_a_502_naming_the_error(
    tmp_path: Path, session: requests.Session
) -> None:
    with start_in_thread(create_app()) as gone:
        closed = gone.base_url
    record = tmp_path / "down.jsonl"
    with start_in_thread(create_proxy_app(closed, record)) as proxy:
        answer = session.get(proxy.base_url + api_path())
    assert answer.status_code == 502
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert "connection refused" in answer.json()["detail"]
    assert closed in answer.json()["detail"]
    [entry] = lines(record)
    assert (entry["status"], entry["response"]) == (None, None)
    assert "connection refused" in entry["error"]
    assert DEMO_TOKEN not in record.read_text() and ENCODED not in record.read_text()


def test_a_recording_replays_without_difference_on_the_same_profile(
    proxy: RunningServer, session: requests.Session, recording: Path
) -> None:
    record_a_session(proxy, session)
    status, report = diff(recording)
    assert status == 0, report
    assert report["summary"] == {
        "exchanges": 10,
        "replayed": 10,
        "skipped": 0,
        "differing": 0,
        "informational-only": 0,
        "same": 10,
    }
    assert report["exchanges"] == []


def test_the_guide_profile_differs_on_the_bulk_method(
    proxy: RunningServer, session: requests.Session, recording: Path
) -> None:
    record_a_session(proxy, session)
    status, report = diff(recording, "--profile", "guide")
    assert status == 1
    post_bulk = differences(report, 4)
    assert {"kind": "status", "where": None, "recorded": 207, "emulator": 405} in [
        {k: d[k] for k in ("kind", "where", "recorded", "emulator")} for d in post_bulk
    ]
    allow = next(d for d in post_bulk if d["kind"] == "header")
    assert (allow["where"], allow["recorded"], allow["emulator"]) == ("Allow", None, "PUT")
    get_bulk = differences(report, 5)
    assert [
        (d["kind"], d["recorded"], d["emulator"]) for d in get_bulk if d["kind"] == "header"
    ] == [("header", "POST, PUT", "PUT")]
    forbidden = differences(report, 8)
    assert [(d["kind"], d["recorded"], d["emulator"]) for d in forbidden] == [
        ("content-type", "application/problem+json", "application/xml"),
        ("body-type", "object", "text"),
    ]


def test_the_reference_profile_differs_on_success_bodies(
    proxy: RunningServer,
    session: requests.Session,
    recording: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    record_a_session(proxy, session)
    status, report = diff(recording, "--profile", "reference")
    assert status == 1
    assert [
        (d["kind"], d["where"], d["recorded"], d["emulator"]) for d in differences(report, 3)
    ] == [("body-type", "$", "object", "empty")]
    assert [
        (d["kind"], d["where"], d["recorded"], d["emulator"]) for d in differences(report, 4)
    ] == [("body-keys", "$.data[]", ["message"], [])]
    assert main(["diff", str(recording), "--profile", "reference"]) == 1
    human = capsys.readouterr().out
    assert (
        f"#3 PUT {api_path(suffix=f'/{BOB}')}\n  body $: recorded object, emulator empty" in human
    )
    assert "differ" in human.splitlines()[-1]


def test_a_hand_edited_status_is_reported(
    proxy: RunningServer, session: requests.Session, recording: Path
) -> None:
    record_a_session(proxy, session)
    edited = lines(recording)
    edited[0]["status"] = 503
    rewrite(recording, edited)
    status, report = diff(recording)
    assert status == 1
    assert report["summary"]["differing"] == 1
    assert [(d["kind"], d["recorded"], d["emulator"]) for d in differences(report, 1)] == [
        ("status", 503, 200)
    ]


def test_live_tenants_and_agents_are_mapped_onto_the_fixture(
    proxy: RunningServer, session: requests.Session, recording: Path
) -> None:
    record_a_session(proxy, session)
    live_bob = "agLiveBobLiveBobLiveBob0"
    text = recording.read_text(encoding="utf-8")
    recording.write_text(text.replace(DEMO_TENANT, "livecorp9").replace(BOB, live_bob))
    status, report = diff(recording)
    assert status == 0, report
    assert report["tenant-map"] == {"livecorp9": DEMO_TENANT}
    assert report["agent-map"] == {live_bob: BOB}
    assert report["exchanges"] == []
    assert diff(recording, "--agent-map", f"{live_bob}={BUSY}")[0] == 1


def test_a_live_status_written_with_a_zero_fraction_maps_by_that_status(recording: Path) -> None:
    """The reference types ``agent-status`` as a number: 3.0 is status 3 (on break)."""
    live = "agLiveBreakLiveBreak0000"
    on_break = "agcI08WoHmiXWnhREl-Asie_"
    body = {"agent-id": live, "name": "Live Breaker", "agent-status": 3.0}
    read = {
        "method": "GET",
        "path": api_path(suffix=f"/{live}"),
        "query": "",
        "request": {"headers": {"Authorization": "Basic ***"}, "body": None, "json": False},
        "response": {"headers": {"Content-Type": "application/json"}, "body": body, "json": True},
        "status": 200,
    }
    rewrite(recording, [read])
    assert diff(recording)[1]["agent-map"] == {live: on_break}


def test_reasons_differing_only_after_normalisation_are_informational(
    proxy: RunningServer, session: requests.Session, recording: Path
) -> None:
    record_a_session(proxy, session)
    edited = lines(recording)
    edited[6]["response"]["body"]["detail"] = "Live wording for this refusal."
    rewrite(recording, edited)
    status, report = diff(recording)
    assert status == 0
    assert report["summary"]["informational-only"] == 1
    [reason] = differences(report, 7)
    assert (reason["kind"], reason["where"], reason["informational"]) == (
        "reason",
        "$.detail",
        True,
    )


def test_the_recording_conforms_to_the_contract_until_edited(
    proxy: RunningServer,
    session: requests.Session,
    recording: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    record_a_session(proxy, session)
    assert main(["validate-recording", str(recording)]) == 0
    assert "10 exchanges checked against the vendor contract" in capsys.readouterr().out
    edited = lines(recording)
    edited[1]["response"]["body"]["agent-status"] = "4"
    rewrite(recording, edited)
    assert main(["validate-recording", str(recording)]) == 1
    *violations, summary = capsys.readouterr().out.splitlines()
    assert violations
    where = f"#2 GET {api_path(suffix=f'/{BOB}')}: getagentstatus 200: body $['agent-status']: "
    assert all(violation.startswith(where) for violation in violations)
    assert "1 break it; 0 differ" in summary


def test_usage_errors_exit_2(tmp_path: Path, recording: Path) -> None:
    assert main(["diff", str(tmp_path / "missing.jsonl")]) == 2
    recording.write_text("not json\n", encoding="utf-8")
    assert main(["validate-recording", str(recording)]) == 2
    recording.write_text(
        json.dumps({"method": "GET", "path": api_path(), "status": 200, "response": None}) + "\n"
    )
    assert main(["diff", str(recording), "--tenant-map", f"{DEMO_TENANT}=nosuch"]) == 2
    with pytest.raises(SystemExit) as bad_option:
        main(["diff", str(recording), "--tenant-map", "no-equals-sign"])
    assert bad_option.value.code == 2
    assert (
        main(
            [
                "proxy",
                "--upstream",
                "http://127.0.0.1:9",
                "--host",
                "0.0.0.0",
                "--record",
                str(recording),
            ]
        )
        == 2
    )
    assert main(["proxy", "--upstream", "https://u:p@example.com", "--record", str(recording)]) == 2


def test_the_cli_proxies_and_records(upstream: RunningServer, recording: Path) -> None:
    help_text = subprocess.run(
        [str(BIN / "agentstatus-mock"), "--help"], capture_output=True, text=True, timeout=30
    ).stdout
    assert all(command in help_text for command in ("proxy", "diff", "validate-recording"))
    command = [
        str(BIN / "agentstatus-mock"),
        "proxy",
        "--upstream",
        f"{upstream.base_url}/api/v1",
        "--port",
        "0",
        "--record",
        str(recording),
    ]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            banner = process.stdout.readline().split()
            assert banner[:3] == ["Recording", "proxy", "on"]
            answer = requests.get(
                banner[3] + api_path(suffix=f"/{BOB}"), auth=(DEMO_USERNAME, DEMO_TOKEN), timeout=10
            )
            assert (answer.status_code, answer.json()["agent-status"]) == (200, 4)
        finally:
            process.terminate()
            _, errors = process.communicate(timeout=10)
    [entry] = lines(recording)
    assert (entry["path"], entry["status"]) == (api_path(suffix=f"/{BOB}"), 200)
    assert DEMO_TOKEN not in errors and ENCODED not in errors


@pytest.mark.parametrize(
    ("given", "root"),
    [
        ("https://vcc-na12.8x8.com", "https://vcc-na12.8x8.com"),
        ("https://vcc-na12.8x8.com/api/v1/", "https://vcc-na12.8x8.com"),
        ("http://127.0.0.1:8080/gateway/api/v1", "http://127.0.0.1:8080/gateway"),
    ],
)
def test_the_upstream_is_the_platform_root_or_the_api_root(given: str, root: str) -> None:
    assert upstream_root(given) == root
