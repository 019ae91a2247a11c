"""Soak run of the deterministic simulation: many more seeds than CI runs. Prints one JSON object:
seeds, seconds, seeds per second, and the failing seeds with the command that replays each.

    .venv/bin/python -m bench.soak [--seeds 100000] [--first 0] [--steps 40] [--processes N]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.sim.runner import DEFAULT_STEPS, kind, reproduction, run_many


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100_000)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--processes", type=int)
    args = parser.parse_args()
    summary = run_many(range(args.first, args.first + args.seeds), args.steps, args.processes)
    print(json.dumps({
        "seeds": summary.seeds, "steps": args.steps, "seconds": round(summary.seconds, 1),
        "seeds_per_second": round(summary.seeds_per_second, 1), "failing": len(summary.failing),
        "failures": [{"seed": seed, "kind": kind(v[0]), "replay": reproduction(seed, args.steps)}
                     for seed, v in sorted(summary.failing.items())[:20]],
    }))
    return 1 if summary.failing else 0


if __name__ == "__main__":
    sys.exit(main())
