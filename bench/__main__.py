"""`make bench` = `python -m bench`: every benchmark against the local stack, one JSON document.

    python -m bench                      # all benchmarks, full size (about 15 minutes on 2 cores)
    python -m bench --quick              # smaller sizes (a few minutes)
    python -m bench intake latency       # only these
    python -m bench --tiny --out x.json  # the smallest sizes (the smoke test in `make test` runs these)
    python -m bench --list

Each benchmark brings up its own stack (Azurite in memory, both emulators and the dev host, each in
its own process on free ports; logs in .run/bench/<name>/). Writes `bench/results/latest.json`
(figures with unit, value, target and met, plus the machine) and prints a table. A missed target
never fails the run; a benchmark that crashes is reported and makes the exit code 1.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from bench import cold_start, ds_emulator, history, intake, latency, outlook_round, planning_bulk
from bench.core import RESULTS, Context, Figure, document, machine, table, write

BENCHMARKS: dict[str, tuple[Callable[[Context], list[Figure]], str]] = {
    "intake": (intake.run, "webhook intake: latency and rate at 1/8/32 concurrent clients"),
    "latency": (latency.run, "one change to the other side, both directions, also after 5 s idle"),
    "bulk": (planning_bulk.run, "planning → Outlook in bulk: writes/s, round trips, Table operations per change"),
    "outlook_round": (outlook_round.run, "Outlook → board: a full round of a mailbox with 1,000 items"),
    "history": (history.run, "poll_planning and reconcile_exchange with 0 / 10,000 / 100,000 historical mappings"),
    "cold_start": (cold_start.run, "import time of the webhook path and the app, first answer after start"),
    "ds_emulator": (ds_emulator.run, "the Dime.Scheduler emulator's write cost against its store size"),
}


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run (default all: {', '.join(BENCHMARKS)})")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", const="quick", dest="mode", help="smaller sizes")
    size.add_argument("--tiny", action="store_const", const="tiny", dest="mode", help="smallest sizes (smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json", help="the JSON document (default %(default)s)")
    parser.add_argument("--run-dir", type=Path, default=Path(".run") / "bench", help="stack logs")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    if args.list:
        for name, (_, what) in BENCHMARKS.items():
            print(f"{name:14} {what}")
        return 0
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    # Ctrl-C or SIGTERM unwinds through the stacks' context managers, so every process they started
    # stops (set explicitly: a shell that starts this in the background leaves SIGINT ignored).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    mode = args.mode or "full"
    ctx = Context(mode=mode, run_dir=args.run_dir.resolve(), verbose=not args.quiet)
    started = machine()
    figures: list[Figure] = []
    runs: dict[str, dict[str, Any]] = {}
    for name in args.names or list(BENCHMARKS):
        benchmark, _ = BENCHMARKS[name]
        ctx.log(f"{name} ({mode})")
        began = time.monotonic()
        try:
            found = benchmark(ctx)
            error = None
        except KeyboardInterrupt:
            print(f"interrupted during {name}; the document has the benchmarks before it", file=sys.stderr)
            return 130
        except Exception as exc:  # report and go on: one broken benchmark must not hide the others
            traceback.print_exc()
            found, error = [], f"{type(exc).__name__}: {exc}"
        for figure in found:
            figure.benchmark = name
        figures += found
        runs[name] = {"seconds": round(time.monotonic() - began, 1), "figures": len(found), "error": error}
        write(document(mode, figures, runs, started), args.out)  # a partial document survives a crash later on
    print(table(figures))
    print(f"\n{len(figures)} figures, mode {mode}, {started['cores']} cores, {started['date']}; written to {args.out}")
    failed = [name for name, r in runs.items() if r["error"]]
    if failed:
        print(f"benchmarks that crashed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
