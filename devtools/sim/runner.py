"""Running many seeds: in parallel processes, with a one-line reproduction and a shrunk schedule for
each failing seed."""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from devtools.sim.world import Result, run_seed

DEFAULT_STEPS = 40
HASH_SEED = "0"


@dataclass
class Summary:
    seeds: int
    seconds: float
    failing: dict[int, list[str]] = field(default_factory=dict)

    @property
    def seeds_per_second(self) -> float:
        return self.seeds / self.seconds if self.seconds else 0.0


def _quiet_run(args: tuple[int, int] | tuple[int, int, str]) -> tuple[int, list[str]]:
    logging.disable(logging.CRITICAL)  # the connector logs every activity entry: millions in a soak
    seed, steps = args[0], args[1]
    if len(args) > 2:
        from devtools.sim.mutations import planted

        with planted(args[2]):  # type: ignore[misc]
            return seed, run_seed(seed, steps).violations
    return seed, run_seed(seed, steps).violations


@dataclass
class Verdict:
    mutant: str
    caught_by: int | None  # the first seed that broke an invariant with the mutant planted
    violation: str
    seeds_run: int
    seconds: float


def hunt(mutant: str, seeds: Iterable[int], steps: int = DEFAULT_STEPS, processes: int | None = None) -> Verdict:
    """Run seeds with `mutant` planted until one of them fails (a planted bug's run stops at its first
    failing seed); `caught_by` None means no seed noticed it."""
    work = [(seed, steps, mutant) for seed in seeds]
    started = time.monotonic()
    workers = processes or os.cpu_count() or 1
    ran = 0
    if workers == 1:
        for args in work:
            ran += 1
            seed, violations = _quiet_run(args)
            if violations:
                return Verdict(mutant, seed, violations[0], ran, time.monotonic() - started)
        return Verdict(mutant, None, "", ran, time.monotonic() - started)
    os.environ["PYTHONHASHSEED"] = HASH_SEED
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for seed, violations in pool.imap(_quiet_run, work, 1):  # in order: the first failing seed is the lowest
            ran += 1
            if violations:
                pool.terminate()
                return Verdict(mutant, seed, violations[0], ran, time.monotonic() - started)
    return Verdict(mutant, None, "", ran, time.monotonic() - started)


def run_many(seeds: Iterable[int], steps: int = DEFAULT_STEPS, processes: int | None = None) -> Summary:
    """Every seed once; seeds run in `processes` worker processes (default: one per core)."""
    work = [(seed, steps) for seed in seeds]
    started = time.monotonic()
    workers = processes or os.cpu_count() or 1
    if workers == 1:
        results = map(_quiet_run, work)
        summary = Summary(len(work), 0.0, {s: v for s, v in results if v})
    else:
        # Fresh interpreters with a fixed hash seed: set iteration order is then the same as in
        # `python -m devtools.sim --seed N` (which sets it too), so every failing seed replays exactly.
        os.environ["PYTHONHASHSEED"] = HASH_SEED
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            summary = Summary(len(work), 0.0, {s: v for s, v in pool.imap_unordered(_quiet_run, work, 16) if v})
    summary.seconds = time.monotonic() - started
    return summary


def kind(violation: str) -> str:
    """A violation without its ids: what kind of failure it is."""
    return re.sub(r"[0-9a-f]{8}|AAMk-\S+|\d+", "#", violation)


def shrink(seed: int, steps: int = DEFAULT_STEPS) -> Result:
    """The shortest schedule of this seed (fewest actor steps) that still shows its first kind of failure."""
    logging.disable(logging.CRITICAL)
    first = run_seed(seed, steps)
    if not first.violations:
        return first
    wanted = kind(first.violations[0])
    best = first
    for fewer in range(1, steps):
        attempt = run_seed(seed, fewer)
        if any(kind(v) == wanted for v in attempt.violations):
            best = attempt
            break
    return run_seed(seed, _steps_of(best, steps), trace=True)


def _steps_of(result: Result, default: int) -> int:
    return result.steps if result.steps else default


def reproduction(seed: int, steps: int = DEFAULT_STEPS) -> str:
    return f"python -m devtools.sim --seed {seed} --steps {steps} --trace"
