"""A fixture file cannot exhaust memory, stall the emulator or end in a traceback (issue 14).

Aliases ("billion laughs") are bounded in what they repeat, a file in its size, and every
refusal is one line naming the file; error messages quote a bounded excerpt of a value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mock_server import cli
from mock_server.core import fixtures
from mock_server.core.fixtures import (
    MAX_ALIASED_NODES,
    MAX_FIXTURE_BYTES,
    FixtureError,
    load_fixture,
)

MESSAGE_LIMIT = 300
"""No refusal below quotes more than this: the file's name, the path and an excerpt."""
TENANT = "tenants:\n  - tenant-id: acme\n    username: u\n    token: t\n"


@pytest.fixture(params=["C", "Python"])
def yaml_loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each test once with libyaml's loader (the default when installed) and once with the
    pure-Python one the emulator falls back to."""
    if request.param == "C":
        assert fixtures.YAML_LOADER is yaml.CSafeLoader  # the wheel ships libyaml
    else:
        monkeypatch.setattr(fixtures, "YAML_LOADER", yaml.SafeLoader)
    yield request.param


def laughs(levels: int) -> str:
    """Each level an anchored list of nine aliases of the level below: 9**levels strings."""
    lines = ["tenants:", "  - &a0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"  - &a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]" for n in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def refusal(path: Path) -> str:
    with pytest.raises(FixtureError) as refused:
        load_fixture(path)
    message = refused.value.detail
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    assert len(message) < MESSAGE_LIMIT + len(str(path))
    return message


def test_aliases_that_repeat_more_than_the_bound_are_refused(
    tmp_path: Path, yaml_loader: str
) -> None:
    levels = 6  # 9**6 = 531,441 strings: past the bound, yet cheap to refuse or, before, to load
    assert 9**levels > MAX_ALIASED_NODES
    path = tmp_path / "laughs.yaml"
    path.write_text(laughs(levels))
    assert path.stat().st_size < 1024
    message = refusal(path)
    assert f"aliases repeat more than {MAX_ALIASED_NODES:,} values" in message


def test_aliases_within_the_bound_are_read(tmp_path: Path, yaml_loader: str) -> None:
    path = tmp_path / "shared.yaml"
    path.write_text(
        TENANT
        + "    groups:\n      - &group {id: 1, status-code-lists: []}\n"
        + "    agents:\n"
        + "".join(
            f"      - {{<<: &agent {{group-id: 1, agent-status: 4}}, agent-id: a{n}}}\n"
            if n == 0
            else f"      - {{<<: *agent, agent-id: a{n}}}\n"
            for n in range(50)
        )
    )
    [tenant] = load_fixture(path)["tenants"]
    assert [agent["agent-status"] for agent in tenant["agents"]] == [4] * 50


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path, yaml_loader: str) -> None:
    """It repeats without end: the count stops at the bound."""
    path = tmp_path / "loop.yaml"
    path.write_text("tenants: &loop [[*loop]]\n")
    assert f"aliases repeat more than {MAX_ALIASED_NODES:,} values" in refusal(path)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_file_over_the_size_limit_is_refused_before_it_is_read(
    tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"huge{suffix}"
    with path.open("wb") as file:
        file.truncate(MAX_FIXTURE_BYTES + 1)  # sparse: costs no disk and no time to make
    message = refusal(path)
    assert f"{MAX_FIXTURE_BYTES + 1:,} bytes" in message
    assert f"{MAX_FIXTURE_BYTES // 2**20} MiB" in message


def test_a_file_at_the_size_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "padded.yaml"
    text = TENANT + "# padding\n"
    path.write_text(text + "#" * (MAX_FIXTURE_BYTES - len(text) - 1) + "\n")
    assert path.stat().st_size == MAX_FIXTURE_BYTES
    assert load_fixture(path)["tenants"][0]["tenant-id"] == "acme"


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_schema_refusal_quotes_an_excerpt_of_a_big_value(tmp_path: Path, suffix: str) -> None:
    document = {"tenants": [list(range(200_000))]}
    path = tmp_path / f"list{suffix}"
    path.write_text(json.dumps(document))  # JSON is YAML too
    assert "$.tenants[0]: [0, 1, 2," in refusal(path)


def test_a_refusal_quotes_an_excerpt_of_an_unknown_field(tmp_path: Path) -> None:
    path = tmp_path / "field.json"  # YAML keeps a key under 1,024 characters; JSON does not
    tenant = {"tenant-id": "acme", "username": "u", "token": "t", "x" * 100_000: 1}
    path.write_text(json.dumps({"tenants": [tenant]}))
    assert "$.tenants[0]: Additional properties are not allowed ('xxx" in refusal(path)


def test_a_refusal_quotes_an_excerpt_of_a_huge_number(tmp_path: Path) -> None:
    path = tmp_path / "number.yaml"
    path.write_text(
        TENANT
        + "    groups: [{id: 1}]\n"
        + f"    agents: [{{agent-id: a, group-id: 1, agent-status: {'9' * 4000}}}]\n"
    )
    assert "agent-status: <an integer of" in refusal(path)


UNREADABLE = {
    "integer of 5000 digits.yaml": (
        TENANT + f"    groups: [{{id: {'9' * 5000}}}]\n",
        "not valid YAML at line 5, column 19: Exceeds the limit (4300 digits) for integer",
    ),
    "integer of 5000 digits.json": (
        '{"tenants": [{"groups": [{"id": ' + "9" * 5000 + "}]}]}",
        "not valid JSON: ",
    ),
    "no such date.yaml": (TENANT + "    name: 2026-02-30\n", "not valid YAML at line 5, column 11"),
    "nested 100000 deep.json": ("[" * 100_000 + "]" * 100_000, "not valid JSON: nested"),
    "nested 100000 deep.yaml": ("[" * 100_000 + "]" * 100_000, "not valid YAML"),
    "unclosed.yaml": ("tenants: [\n", "not valid YAML at line 2, column 1: "),
    "two documents.yaml": ("tenants: []\n---\ntenants: []\n", "not valid YAML at line 2"),
    "control character.yaml": ("tenants: \x00\n", "not valid YAML"),
}


@pytest.mark.parametrize(("name", "case"), UNREADABLE.items(), ids=UNREADABLE.keys())
def test_an_unreadable_document_is_one_line(
    tmp_path: Path, yaml_loader: str, name: str, case: tuple[str, str]
) -> None:
    text, expected = case
    path = tmp_path / name.replace(" ", "-")
    path.write_text(text)
    assert refusal(path).startswith(f"{path}: {expected}")


def test_a_file_that_is_not_utf8_is_refused_naming_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(TENANT.replace("acme", "caf\xe9").encode("latin-1"))
    assert refusal(path) == f"{path}: not UTF-8 text: byte 0xe9 at offset 27 cannot be decoded."


def test_a_byte_order_mark_is_accepted_in_json_as_in_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_text('\ufeff{"tenants": []}', encoding="utf-8")
    assert load_fixture(path) == {"tenants": []}


def test_a_directory_or_a_missing_file_is_one_line(tmp_path: Path) -> None:
    assert refusal(tmp_path) == f"{tmp_path}: cannot be read: Is a directory."
    missing = tmp_path / "absent.yaml"
    assert refusal(missing) == f"{missing}: cannot be read: No such file or directory."


def test_an_endless_file_is_read_no_further_than_the_limit() -> None:
    """/dev/zero's size is 0 by stat: the read stops one byte past the limit all the same."""
    assert f"more than the {MAX_FIXTURE_BYTES // 2**20} MiB" in refusal(Path("/dev/zero"))


def test_serve_reports_a_bad_fixture_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(laughs(6))
    assert cli.main(["serve", "--fixture", str(path), "--port", "0"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"agentstatus-mock: bad fixture: {path}: ")
    assert error.count("\n") == 1
    assert len(error) < MESSAGE_LIMIT + len(str(path)) + len("agentstatus-mock: bad fixture: ")
