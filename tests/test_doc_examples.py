"""Every code example of the README and of docs/ runs as written.

Each fenced ``sh`` and ``python`` block is run: shell with bash (``set -euo pipefail``), Python
with this interpreter, and a block that defines ``test_`` functions under pytest, with the
project's plugin. They run in a folder holding ``docs/examples/`` (``my_code.py``,
``changes.csv``), against a real ``serve`` of the demo tenants: ``localhost:8080`` and
``127.0.0.1:8080`` become its address. ``yaml`` blocks that hold tenants load as fixtures.

An HTML comment on the lines just before a fence adapts the block, and says why:
``<!-- example: env K=V ... -->`` sets variables; ``<!-- example: replace OLD => NEW -->``
rewrites text before it runs (``{api}`` and ``{base}`` name the server's API root and base;
how a block meant for a live tenant runs against the emulator); ``<!-- example: own port -->``
gives 8080 a free port of its own (for a block that starts its own server);
``<!-- example: not run: WHY -->`` skips it, and WHY must say where it is covered instead.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from support_serving import Served, serve, stop_group

from mock_server.app import create_app

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLES = ROOT / "docs" / "examples"
RUNNABLE = {"sh", "python", "yaml"}
FENCE = re.compile(r"^```(\w*)\s*$")
DIRECTIVE = re.compile(r"^<!-- example: (.*) -->$")
SECONDS = 120
LOOPBACK_8080 = re.compile(r"(localhost|127\.0\.0\.1):8080")


@dataclass
class Example:
    document: Path
    line: int
    language: str
    code: str
    directives: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"

    def directive(self, kind: str) -> list[str]:
        return [text[len(kind) :].strip() for text in self.directives if text.startswith(kind)]


def examples() -> list[Example]:
    found: list[Example] = []
    for document in DOCUMENTS:
        lines = document.read_text(encoding="utf-8").splitlines()
        index = 0
        while index < len(lines):
            opening = FENCE.match(lines[index])
            if opening is None:
                index += 1
                continue
            end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
            directives = []
            before = index - 1
            while before >= 0 and (match := DIRECTIVE.match(lines[before])):
                directives.insert(0, match.group(1))
                before -= 1
            code = "\n".join(lines[index + 1 : end]) + "\n"
            found.append(Example(document, index + 1, opening.group(1), code, directives))
            index = end + 1
    return found


ALL = examples()
RUN = [example for example in ALL if example.language in RUNNABLE]


def test_every_block_names_a_language_and_every_skip_says_why() -> None:
    unnamed = [example.name for example in ALL if not example.language]
    assert unnamed == [], "fenced blocks without a language (sh, python, yaml, text, json)"
    for example in RUN:
        for reason in example.directive("not run:"):
            assert len(reason) > 20, f"{example.name}: say why it is not run, and where it is"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("doc-examples")) as running:
        yield running


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def prepared(example: Example, served: Served) -> tuple[str, dict[str, str]]:
    code = example.code
    for rule in example.directive("replace"):
        old, new = (part.strip() for part in rule.split("=>", 1))
        assert old in code, f"{example.name}: nothing to replace: {old!r}"
        code = code.replace(old, new.format(api=served.base + "/api/v1", base=served.base))
    port = served.port
    if example.directive("own port"):
        port = free_port()
        code = code.replace("--port 8080", f"--port {port}")
    code = LOOPBACK_8080.sub(f"127.0.0.1:{port}", code)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for assignments in example.directive("env"):
        for assignment in assignments.split():
            name, value = assignment.split("=", 1)
            env[name] = value
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [".", env.get("PYTHONPATH")]))
    return code, env


@pytest.mark.parametrize("example", RUN, ids=[example.name for example in RUN])
def test_the_example_runs(example: Example, served: Served, tmp_path: Path) -> None:
    reasons = example.directive("not run:")
    if reasons:
        pytest.skip(f"not run: {reasons[0]}")
    assert served.fresh("POST", "/__admin/reset").status_code == 200
    code, env = prepared(example, served)
    if example.language == "yaml":
        document = yaml.safe_load(code)
        if isinstance(document, dict) and "tenants" in document:
            create_app(document)  # checked as a fixture file is
        return
    shutil.copytree(EXAMPLES, tmp_path, dirs_exist_ok=True)
    if example.language == "sh":
        argv = ["bash", "-c", "set -euo pipefail\n" + code]
    elif re.search(r"^def test_", code, re.MULTILINE):
        (tmp_path / "test_example.py").write_text(code)
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
        argv.append("test_example.py")
    else:
        argv = [sys.executable, "-c", code]
    process = subprocess.Popen(
        argv,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # whatever it starts goes with it
    )
    try:
        out, err = process.communicate(timeout=SECONDS)
    finally:
        stop_group(process)
    assert process.returncode == 0, f"{example.name} failed:\n{out[-3000:]}\n{err[-3000:]}"
