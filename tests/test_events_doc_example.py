"""The event-stream example of docs/events.md runs as written, against a real ``serve`` (its
``localhost:8080`` pointed at the test's server), and prints the change it made."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from support_serving import serve

README = Path(__file__).resolve().parents[1] / "docs" / "events.md"
MARKER = "Listening while changing a status"


def example() -> str:
    text = README.read_text(encoding="utf-8")
    after = text[text.index(MARKER) :]
    found = re.search(r"```python\n(.*?)```", after, re.DOTALL)
    assert found is not None, f"no python example after {MARKER!r} in the README"
    return found.group(1)


def test_the_readme_event_example_prints_the_change(tmp_path: Path) -> None:
    with serve(tmp_path) as served:
        code = example().replace("localhost:8080", f"127.0.0.1:{served.port}")
        ran = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
        )
    assert ran.returncode == 0, ran.stderr
    change = json.loads(ran.stdout)["AgentStatusChange"]
    assert (change["agentId"], change["newState"]) == ("agAQDqmvKiRbG4ekigNSmbbb", 5)
