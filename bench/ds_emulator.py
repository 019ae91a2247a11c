"""Benchmark: the Dime.Scheduler emulator's write cost against the size of its store.

For each store size (500 and 5,000 appointments by default) a fresh emulator is seeded, then
`--writes` single-call imports (`mboc_upsertExchangeAppointment`, each one moving an existing item)
are sent over HTTP one after the other, as a connector does. Prints one JSON object: per size, the
writes per second over HTTP and the mean time the emulator spent applying one import (store only,
without HTTP). A write journals only the record it changes, so both figures should not depend on the
size of the store. As part of `python -m bench` (`ds_emulator`), the figures are the mean apply time
per write at each size and its growth from the smallest to the largest store (flat: ≤ 1.5).

    .venv/bin/python -m bench.ds_emulator [--sizes 500 5000] [--writes 300]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.core import Context, Figure  # noqa: E402
from devtools.scheduler_emulator import SchedulerEmulatorConfig, create_app  # noqa: E402
from devtools.scheduler_emulator.emulator import EMULATOR  # noqa: E402
from devtools.serve import ServerThread  # noqa: E402

API_KEY = "dev-api-key"
EMAIL = "bench@contoso.example"
START = datetime(2026, 3, 2, 8, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _upsert(guid: str, index: int, shift_minutes: int) -> dict[str, Any]:
    start = START + timedelta(hours=index % 2000, minutes=shift_minutes)
    params = {
        "AppointmentGuid": guid, "ExchangeId": f"AAMk-{guid}", "ICalUId": f"ical-{guid}",
        "Start": _iso(start), "End": _iso(start + timedelta(hours=1)), "Subject": f"Item {index}",
        "Body": "", "Importance": "0", "ResourceEmail": EMAIL, "ShowAs": "3", "Sensitivity": "1",
        "Categories": "", "CreatedByExchange": "True",
    }
    return {"StoredProcedureName": "mboc_upsertExchangeAppointment", "ParameterNames": list(params),
            "ParameterValues": list(params.values())}


def measure(size: int, writes: int) -> dict[str, Any]:
    server = ServerThread(create_app(SchedulerEmulatorConfig(import_fires_webhooks=False))).start()
    emulator = server.app[EMULATOR]
    try:
        with httpx.Client(base_url=server.url, headers={"X-API-KEY": API_KEY}, timeout=60) as client:
            client.post("/_emulator/seed", json={"resources": [
                {"resourceNo": "BENCH", "email": EMAIL, "exchangeIntegrationEnabled": True}]}).raise_for_status()
            guids = [str(uuid.uuid4()) for _ in range(size)]
            for offset in range(0, size, 500):  # seed in batches of 500 calls
                batch = [_upsert(g, offset + i, 0) for i, g in enumerate(guids[offset:offset + 500])]
                client.post("/import", json=batch).raise_for_status()
            assert len(emulator.store.appointments) == size
            apply_seconds = 0.0
            original = emulator.apply_import

            def timed(payload: Any) -> Any:
                nonlocal apply_seconds
                began = time.perf_counter()
                try:
                    return original(payload)
                finally:
                    apply_seconds += time.perf_counter() - began

            emulator.apply_import = timed  # type: ignore[method-assign]
            began = time.perf_counter()
            for n in range(writes):
                index = (n * 7919) % size
                response = client.post("/import", json=[_upsert(guids[index], index, 15 + n)])
                response.raise_for_status()
            elapsed = time.perf_counter() - began
    finally:
        server.stop()
    return {"appointments": size, "writes": writes, "writes_per_second": round(writes / elapsed, 1),
            "apply_ms_mean": round(apply_seconds / writes * 1000, 3)}


def run(ctx: Context) -> list[Figure]:
    sizes = ctx.size([50, 500], [500, 5000], [500, 3000, 10000])
    writes = ctx.size(30, 200, 300)
    ctx.log(f"ds_emulator: {writes} single-call imports at store sizes {sizes}")
    results = [measure(size, writes) for size in sizes]
    figures = [Figure(f"ds_emulator.apply_ms.{r['appointments']}", "ms", r["apply_ms_mean"], None,
                      note="mean time to apply one import (store only)", detail=r) for r in results]
    growth = results[-1]["apply_ms_mean"] / max(results[0]["apply_ms_mean"], 1e-6)
    figures.append(Figure("ds_emulator.apply_growth", "ratio", round(growth, 2), "<= 1.5",
                          note=f"{sizes[-1]} vs {sizes[0]} appointments: a write must not cost more in a bigger store"))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--writes", type=int, default=300)
    args = parser.parse_args()
    print(json.dumps({"benchmark": "ds_emulator_writes", "results": [measure(s, args.writes) for s in args.sizes]}))


if __name__ == "__main__":
    main()
