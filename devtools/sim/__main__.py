"""`python -m devtools.sim`: run seeds of the simulation, or replay one with its trace.

    python -m devtools.sim --seeds 0:2000            # many seeds, a summary of what failed
    python -m devtools.sim --seed 1234 --trace       # one seed, every move it made
    python -m devtools.sim --seed 1234 --shrink      # the fewest actor steps that still fail
    python -m devtools.sim --mutants --seeds 0:500   # each planted bug: the first seed that catches it
    python -m devtools.sim --seed 12 --mutant body_dropped --trace   # a seed with one planted bug
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from devtools.sim.runner import DEFAULT_STEPS, HASH_SEED, hunt, kind, reproduction, run_many, shrink
from devtools.sim.world import run_seed


def main(argv: list[str] | None = None) -> int:
    if os.environ.get("PYTHONHASHSEED") != HASH_SEED:  # the same set order as the test run: an exact replay
        os.execve(sys.executable, [sys.executable, "-m", "devtools.sim", *(argv or sys.argv[1:])],
                  {**os.environ, "PYTHONHASHSEED": HASH_SEED})
    logging.disable(logging.CRITICAL)  # the connector's own log lines would drown the trace
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int)
    parser.add_argument("--seeds", default="0:200", help="first:last (exclusive)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--shrink", action="store_true")
    parser.add_argument("--processes", type=int)
    parser.add_argument("--mutants", action="store_true", help="hunt every planted bug (devtools/sim/mutations.py)")
    parser.add_argument("--mutant", help="plant this bug for the run")
    args = parser.parse_args(argv)
    if args.mutants:
        return _hunt_all(args)
    if args.mutant and args.seed is None:
        first, last = (int(x) for x in args.seeds.split(":"))
        verdict = hunt(args.mutant, range(first, last), args.steps, args.processes)
        print(f"{args.mutant}: " + (f"caught by seed {verdict.caught_by}: {verdict.violation}"
                                    if verdict.caught_by is not None else f"missed by {verdict.seeds_run} seeds"))
        return 0 if verdict.caught_by is not None else 1
    if args.mutant:
        from devtools.sim.mutations import planted

        with planted(args.mutant):
            return _run(args)
    return _run(args)


def _hunt_all(args: argparse.Namespace) -> int:
    from devtools.sim.mutations import MUTANTS

    first, last = (int(x) for x in args.seeds.split(":"))
    missed = 0
    for mutant in MUTANTS:
        verdict = hunt(mutant.name, range(first, last), args.steps, args.processes)
        missed += verdict.caught_by is None
        found = f"caught by seed {verdict.caught_by}: {kind(verdict.violation)}" if verdict.caught_by is not None \
            else f"MISSED by {verdict.seeds_run} seeds"
        print(f"{mutant.name:28} {found}  ({verdict.seeds_run} seeds, {verdict.seconds:.0f} s)", flush=True)
    print(f"mutation score: {len(MUTANTS) - missed} of {len(MUTANTS)} planted bugs caught")
    return 1 if missed else 0


def _run(args: argparse.Namespace) -> int:
    if args.seed is not None:
        result = shrink(args.seed, args.steps) if args.shrink else run_seed(args.seed, args.steps, trace=args.trace)
        if args.trace or args.shrink:
            print("\n".join(result.log))
        print(f"seed {args.seed}, {result.steps} steps: " + ("; ".join(result.violations) or "all invariants hold"))
        return 1 if result.violations else 0
    first, last = (int(x) for x in args.seeds.split(":"))
    summary = run_many(range(first, last), args.steps, args.processes)
    print(f"{summary.seeds} seeds in {summary.seconds:.1f} s ({summary.seeds_per_second:.1f} seeds/s), "
          f"{len(summary.failing)} failing")
    for seed, violations in sorted(summary.failing.items())[:20]:
        print(f"  seed {seed}: {kind(violations[0])}  →  {reproduction(seed, args.steps)}")
    return 1 if summary.failing else 0


if __name__ == "__main__":
    sys.exit(main())
