"""The benchmarks keep working: `python -m bench --tiny` runs every one at its smallest size and each
produces well-formed figures. Shape and sanity only (a number, a unit, a target that parses, writes
per change a positive number, the JSON document written): never a timing."""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import BENCHMARKS

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(900)

# The figures each benchmark must produce (more are welcome), and the ones that must be positive.
EXPECTED: dict[str, dict[str, str]] = {
    "intake": {"intake.graph.c1.rate": "req/s", "intake.graph.c1.p99": "ms", "intake.scheduler.c1.rate": "req/s",
               "intake.scheduler.c1.p50": "ms", "intake.graph.cpu_ceiling": "req/s",
               "intake.queue_put_cpu": "ms"},
    "latency": {"latency.to_outlook.p50": "ms", "latency.to_outlook.idle.p99": "ms", "latency.to_planning.p50": "ms",
                "latency.to_planning.idle.p99": "ms"},
    "bulk": {"bulk.many.create.writes_per_s": "writes/s", "bulk.many.create.graph_writes_per_change": "writes",
             "bulk.many.move.round_trips_per_write": "requests", "bulk.many.create.table_ops_per_change": "operations",
             "bulk.busy.create.graph_ceiling_fraction": "fraction", "rss.devhost_peak_mb": "MB"},
    "outlook_round": {"outlook_round.items_per_s": "items/s", "outlook_round.import_calls_per_item": "requests"},
    "history": {"history.poll_planning.h0": "ms", "history.reconcile_exchange.h0": "ms"},
    "cold_start": {"cold.import_webhook_path_ms": "ms", "cold.import_app_ms": "ms", "cold.first_answer_ms": "ms"},
    "ds_emulator": {"ds_emulator.apply_growth": "ratio"},
}
POSITIVE = {"intake.graph.c1.rate", "intake.scheduler.c1.rate", "intake.graph.cpu_ceiling", "intake.queue_put_cpu",
            "latency.to_outlook.p50", "latency.to_planning.p50",
            "bulk.many.create.writes_per_s", "bulk.many.create.graph_writes_per_change",
            "bulk.many.move.graph_writes_per_change", "bulk.many.move.round_trips_per_write",
            "bulk.many.create.table_ops_per_change", "rss.devhost_peak_mb", "outlook_round.items_per_s",
            "outlook_round.import_calls_per_item", "cold.import_webhook_path_ms", "cold.import_app_ms",
            "cold.first_answer_ms", "ds_emulator.apply_growth"}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], str]]:
    out = tmp_path_factory.mktemp("bench") / "latest.json"
    done = subprocess.run([sys.executable, "-m", "bench", "--tiny", "--quiet", "--out", str(out),
                           "--run-dir", str(out.parent / "run")], cwd=ROOT, capture_output=True, text=True, timeout=850)
    assert done.returncode == 0, f"python -m bench --tiny failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    yield json.loads(out.read_text()), done.stdout


def test_the_document_is_written_with_the_machine(run: tuple[dict[str, Any], str]) -> None:
    doc, _ = run
    assert doc["mode"] == "tiny"
    assert doc["machine"]["cores"] >= 1 and doc["machine"]["python"] and doc["machine"]["date"]
    assert set(doc["benchmarks"]) == set(BENCHMARKS)
    assert all(r["error"] is None and r["figures"] > 0 for r in doc["benchmarks"].values()), doc["benchmarks"]
    assert doc["summary"]["figures"] == len(doc["figures"])


def test_every_figure_is_well_formed(run: tuple[dict[str, Any], str]) -> None:
    doc, stdout = run
    names = [f["name"] for f in doc["figures"]]
    assert len(names) == len(set(names)), "figure names are unique"
    for figure in doc["figures"]:
        assert figure["unit"], figure
        value = figure["value"]
        if value is None:  # a run that did not finish within its cap: says so, and misses its target
            assert figure["note"], figure
            assert figure["met"] in (None, False), figure
            continue
        assert isinstance(value, int | float) and math.isfinite(value) and value >= 0, figure
        if figure["target"] is None:
            assert figure["met"] is None, figure
        else:
            op, number = figure["target"].split(" ")
            assert op in ("<=", "<", ">=", ">", "==") and float(number) >= 0, figure
            assert isinstance(figure["met"], bool), figure
        assert figure["name"] in stdout, f"{figure['name']} missing from the table on stdout"


@pytest.mark.parametrize("benchmark", list(EXPECTED))
def test_each_benchmark_gives_its_figures(run: tuple[dict[str, Any], str], benchmark: str) -> None:
    doc, _ = run
    figures = {f["name"]: f for f in doc["figures"] if f["benchmark"] == benchmark}
    for name, unit in EXPECTED[benchmark].items():
        assert name in figures, f"{benchmark} gave no {name}: {sorted(figures)}"
        assert figures[name]["unit"] == unit
        if name in POSITIVE and figures[name]["value"] is not None:
            assert figures[name]["value"] > 0, figures[name]


def test_percentiles_are_ordered(run: tuple[dict[str, Any], str]) -> None:
    doc, _ = run
    values = {f["name"]: f["value"] for f in doc["figures"]}
    for prefix in ("intake.graph.c1", "intake.scheduler.c1", "latency.to_outlook", "latency.to_planning"):
        ordered = [values[f"{prefix}.{p}"] for p in ("p50", "p95", "p99")]
        assert ordered == sorted(ordered), prefix


def test_bench_imports_nothing_from_tests() -> None:
    for path in (ROOT / "bench").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(m == "tests" or m.startswith("tests.") for m in modules), f"{path} imports {modules}"
