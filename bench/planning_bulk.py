"""Benchmark: the bulk re-plan (1,000 appointments over 50 resources by default) through the whole
local stack (Azurite, both emulators, the function app under the dev host). Prints one JSON object:
writes and HTTP round trips to Graph per phase (create, move, replay of the same webhooks) and the
seconds each phase took to converge.

    .venv/bin/python -m bench.planning_bulk [--appointments 1000] [--resources 50]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools.local_stack import stack_factory  # noqa: E402
from devtools.planning_bulk import run_bulk  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appointments", type=int, default=1000)
    parser.add_argument("--resources", type=int, default=50)
    args = parser.parse_args()
    with stack_factory() as start:
        result = run_bulk(start(), args.appointments, args.resources, timeout=900)
    out = asdict(result)
    out["resources"] = len(result.resources)
    out["events_per_resource"] = sorted(set(result.events_per_resource.values()))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
