"""``python -m schemas validate`` judges a live capture against the vendor contract by default.

The vendor contract (``schemas/vendor-openapi.yaml``) decides the exit status; where the capture
only differs from the emulator's promise (``schemas/openapi.yaml``) it is printed, not failed.
``--document api`` holds the capture to the promise instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.__main__ import main

AGENT = "ag64oyEUb_Sk6bxVB9P5ye5w"
NOTE = "differs from the emulator's promise (not a failure): "


def saved(folder: Path, status_line: str, headers: dict[str, str], body: bytes) -> list[str]:
    """A ``curl -D headers -o body`` capture, as the command's ``--headers`` and body."""
    dump = "\r\n".join([status_line, *(f"{name}: {value}" for name, value in headers.items())])
    (folder / "headers.txt").write_text(dump + "\r\n\r\n", encoding="utf-8")
    (folder / "body").write_bytes(body)
    return ["--headers", str(folder / "headers.txt"), str(folder / "body")]


def problem_404(folder: Path) -> list[str]:
    """A vendor-style error: a problem object in application/json, no X-Request-Id."""
    body = {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no agent"}
    return saved(
        folder,
        "HTTP/1.1 404 Not Found",
        {"Content-Type": "application/json"},
        json.dumps(body).encode(),
    )


def test_a_json_problem_without_request_id_keeps_the_vendor_contract(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["validate", "--operation", "getagentstatus", *problem_404(tmp_path)])
    *notes, last = capsys.readouterr().out.splitlines()
    assert (code, last) == (0, "getagentstatus 404: conforms")
    assert notes
    assert all(note.startswith(NOTE) for note in notes)
    assert any("X-Request-Id" in note for note in notes)


def test_the_same_capture_breaks_the_emulators_promise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["validate", "--document", "api", "--operation", "getagentstatus"]
    assert main([*arguments, *problem_404(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "getagentstatus 404: the required header X-Request-Id is missing" in out
    assert NOTE not in out
    assert "conforms" not in out


def test_a_bulk_answered_200_breaks_the_vendor_contract(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {"agents": [{"agent-id": AGENT, "change-status": 200}]}
    capture = saved(
        tmp_path, "HTTP/1.1 200 OK", {"Content-Type": "application/json"}, json.dumps(body).encode()
    )
    for operation in ("setagentsstatuses", "setagentsstatusesput"):
        assert main(["validate", "--operation", operation, *capture]) == 1
        out = capsys.readouterr().out
        assert out == f"status 200 is not declared for {operation}\n"


def test_another_401_body_and_no_challenge_are_only_differences(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = saved(
        tmp_path, "HTTP/1.1 401 Unauthorized", {"Content-Type": "text/html"}, b"<h1>401</h1>"
    )
    assert main(["validate", "--operation", "getagentsstatus", *capture]) == 0
    out = capsys.readouterr().out
    assert NOTE in out
    assert out.endswith("getagentsstatus 401: conforms\n")
    assert main(["validate", "--document", "api", "--operation", "getagentsstatus", *capture]) == 1


def test_an_empty_or_other_single_set_200_is_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = saved(tmp_path, "HTTP/1.1 200 OK", {}, b"")
    assert main(["validate", "--operation", "setagentstatus", *empty]) == 0
    assert capsys.readouterr().out.endswith("setagentstatus 200: conforms\n")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"status": "done"}), encoding="utf-8")
    assert main(["validate", "--operation", "setagentstatus", "--status", "200", str(other)]) == 0
    assert NOTE in capsys.readouterr().out


def test_extra_members_and_float_numbers_are_differences(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = {"agent-id": AGENT, "agent-status": 3.0, "shift": "early"}
    body = tmp_path / "agent.json"
    body.write_text(json.dumps(agent), encoding="utf-8")
    assert main(["validate", "--operation", "getagentstatus", "--status", "200", str(body)]) == 0
    *notes, last = capsys.readouterr().out.splitlines()
    assert last == "getagentstatus 200: conforms"
    assert notes and all(note.startswith(NOTE) for note in notes)


def test_a_conforming_emulator_answer_prints_no_difference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    problem = {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "The agent does not exist",
        "instance": "urn:uuid:01234567-89ab-cdef-0123-456789abcdef",
    }
    capture = saved(
        tmp_path,
        "HTTP/1.1 404 NOT FOUND",
        {"Content-Type": "application/problem+json", "X-Request-Id": "0123456789abcdef" * 2},
        json.dumps(problem).encode(),
    )
    assert main(["validate", "--operation", "getagentstatus", *capture]) == 0
    assert capsys.readouterr().out == "getagentstatus 404: conforms\n"


def test_the_admin_document_has_no_second_layer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "reset.json"
    body.write_text(json.dumps({"reset": "all", "tenants": ["acmecorp01"]}), encoding="utf-8")
    arguments = ["validate", "--document", "admin", "--operation", "resetall", "--status", "200"]
    assert main([*arguments, str(body)]) == 0
    assert capsys.readouterr().out == "resetall 200: conforms\n"
    assert main(["validate", "--operation", "resetall", "--status", "200", str(body)]) == 2
    assert "no operation 'resetall'" in capsys.readouterr().err
