"""What every benchmark shares: figures with their targets, the run context (size mode, the stack),
percentiles, and the report (`bench/results/latest.json` and the table on stdout).

A figure is a measured number with a unit and, where the issue sets one, a target (`"<= 100"`,
`">= 400"`, `"== 1.00"`): `met` is true or false against it, null when there is no target.
Benchmarks never fail on a timing: a missed target is a `met: false` figure, not an error.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devtools.benchstack.stack import BenchStack

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
MODES = ("tiny", "quick", "full")


@dataclass
class Figure:
    name: str
    unit: str
    value: float | None
    target: str | None = None  # "<= 100", ">= 400", "< 2000", "== 1.00"; None: informative only
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    benchmark: str = ""

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        if self.value is None or (isinstance(self.value, float) and math.isnan(self.value)):
            return False
        op, _, number = self.target.partition(" ")
        bound = float(number)
        value = float(self.value)
        if op == "==":
            return abs(value - bound) <= 0.005 * max(1.0, abs(bound))
        return {"<=": value <= bound, "<": value < bound, ">=": value >= bound, ">": value > bound}[op]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["met"] = self.met
        return out


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest-rank on the sorted values; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def rounded(value: float, digits: int = 1) -> float:
    return value if math.isnan(value) else round(value, digits)


@dataclass
class Context:
    """One benchmark run: its size mode and where its stacks keep their logs."""

    mode: str = "quick"
    run_dir: Path = field(default_factory=lambda: ROOT / ".run" / "bench")
    verbose: bool = True

    def size(self, tiny: Any, quick: Any, full: Any) -> Any:
        return {"tiny": tiny, "quick": quick, "full": full}[self.mode]

    @contextmanager
    def stack(self, name: str, **settings: str) -> Iterator[BenchStack]:
        """A fresh stack (its own in-memory Azurite: no state or queue backlog from another benchmark)."""
        with BenchStack.start(self.run_dir / name, **settings) as stack:
            yield stack

    def log(self, message: str) -> None:
        if self.verbose:
            print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def document(mode: str, figures: list[Figure], runs: dict[str, dict[str, Any]], started: dict[str, Any]) -> dict[str, Any]:
    met = [f.met for f in figures]
    return {
        "mode": mode,
        "machine": {**started, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "benchmarks": runs,
        "summary": {"figures": len(figures), "with_target": sum(m is not None for m in met),
                    "met": sum(m is True for m in met), "not_met": sum(m is False for m in met)},
        "figures": [f.to_json() for f in figures],
    }


def write(doc: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")


def _value(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return f"{value:g}"


def table(figures: list[Figure]) -> str:
    rows = [("figure", "value", "unit", "target", "met")]
    for f in figures:
        mark = {True: "yes", False: "NO", None: ""}[f.met]
        rows.append((f.name, _value(f.value), f.unit, f.target or "", mark))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) if i != 1 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths, strict=True)))
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
