"""The proof is only as good as the bugs it catches: every planted bug of `devtools/sim/mutations.py` (each one
a planner or a technician would notice) must break an invariant in some seed that CI runs. A planted bug's run
stops at its first failing seed, so a caught bug costs a few seeds. `SIM_MUTANT_SEEDS` bounds the hunt (the
seeds are the first of those `test_simulation.py` runs clean)."""

from __future__ import annotations

import logging
import os

import pytest

from devtools.sim.mutations import MUTANTS, planted
from devtools.sim.runner import hunt
from devtools.sim.world import run_seed

MUTANT_SEEDS = int(os.environ.get("SIM_MUTANT_SEEDS", "600"))


@pytest.mark.timeout(600)
@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_every_planted_bug_breaks_an_invariant_in_some_seed(mutant: object) -> None:
    from devtools.sim.mutations import Mutant

    assert isinstance(mutant, Mutant)
    verdict = hunt(mutant.name, range(MUTANT_SEEDS), processes=2)
    assert verdict.caught_by is not None, (f"planted bug {mutant.name!r} ({mutant.what_a_user_sees}) went unnoticed "
                                           f"by {verdict.seeds_run} seeds")


def test_a_planted_bug_is_gone_once_its_run_ends() -> None:
    """Planting is undone: the seed that catches a bug passes again afterwards (no bug leaks into other tests)."""
    logging.disable(logging.CRITICAL)
    with planted("body_dropped"):
        assert run_seed(3).violations, "seed 3 caught body_dropped when this test was written"
    assert run_seed(3).violations == []
