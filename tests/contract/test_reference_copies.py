"""The repository's copies of the vendor's files are byte-equal to ``../shared/reference/``.

The tests read the copies (``schemas/official-openapi.json``, ``tests/reference/``), so they run
in a clone with no ``../shared`` beside it; where the folder is there (CI has it), this keeps
the copies from drifting from what the vendor published.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support_contract import REFERENCE_COPIES, ROOT, SHARED_REFERENCE, reference_name


@pytest.mark.parametrize("copy", REFERENCE_COPIES, ids=lambda copy: str(reference_name(copy)))
def test_the_copy_is_byte_equal_to_the_shared_reference(copy: Path) -> None:
    if not SHARED_REFERENCE.is_dir():
        pytest.skip(
            f"{SHARED_REFERENCE} does not exist (a clone with no ../shared beside it): the "
            "in-repo copies cannot be compared here; CI, which has it, compares them"
        )
    original = SHARED_REFERENCE / reference_name(copy)
    assert original.is_file(), f"{copy.relative_to(ROOT)} copies no file of {SHARED_REFERENCE}"
    assert copy.read_bytes() == original.read_bytes(), (
        f"{copy.relative_to(ROOT)} differs from {original}: copy it again (cp {original} {copy})"
    )
