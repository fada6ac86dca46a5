"""``make fuzz``: the contract kit against random variants of the vendor double.

``tests/kit/test_kit_against_double.py`` runs a handful of chosen variants that together take
every value of every switch; this module draws whole combinations at random (seeded, so a
failure can be run again: ``AGENTSTATUS_FUZZ_SEED``), ``AGENTSTATUS_FUZZ_VARIANTS`` of them,
and holds each to the same standard: the kit passes, with exactly the findings its switches
predict. Its name keeps it out of ``make test``; ``make fuzz`` names it.
"""

from __future__ import annotations

import os
import random
from dataclasses import fields
from pathlib import Path

import pytest

from tests.kit.test_kit_against_double import assert_the_kit_passes_with_exactly_its_findings
from tests.kit.vendor_double import SWITCHES, Variant

COUNT = int(os.environ.get("AGENTSTATUS_FUZZ_VARIANTS", "12"))
SEED = int(os.environ.get("AGENTSTATUS_FUZZ_SEED", "0"))
BULK_METHODS = (frozenset({"POST"}), frozenset({"PUT"}), frozenset({"PUT", "POST"}))
# The reference's limit, or the guide's none; a tenant of 120 agents pages when pagination is on.
BULK_LIMITS = (100, None)
FILLERS = (0, 120)


def random_variant(rng: random.Random) -> Variant:
    """Any combination of the switches the vendor documents allow (no broken rule)."""
    chosen: dict[str, object] = {}
    for field in fields(Variant):
        if field.name in SWITCHES:
            chosen[field.name] = rng.choice(SWITCHES[field.name])
        elif field.type == "bool":
            chosen[field.name] = rng.random() < 0.5
    chosen["bulk_methods"] = rng.choice(BULK_METHODS)
    chosen["bulk_limit"] = rng.choice(BULK_LIMITS)
    chosen["filler_agents"] = rng.choice(FILLERS)
    return Variant(**chosen)  # type: ignore[arg-type]


VARIANTS = [random_variant(random.Random(SEED + index)) for index in range(COUNT)]


@pytest.mark.parametrize("variant", VARIANTS, ids=[f"seed{SEED + index}" for index in range(COUNT)])
def test_the_kit_passes_any_allowed_combination_with_exactly_its_findings(
    variant: Variant, tmp_path: Path
) -> None:
    assert_the_kit_passes_with_exactly_its_findings(variant, tmp_path)
