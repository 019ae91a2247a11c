"""Telemetry: metrics come from the activity log; traces continue across the queue; nothing private is logged."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import json, logging
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    trace.set_tracer_provider(TracerProvider())
    records = []
    class Keep(logging.Handler):
        def emit(self, record): records.append(record.getMessage())
    logging.getLogger("connector").addHandler(Keep()); logging.getLogger("connector").setLevel(logging.INFO)

    from connector.stores.activity import ActivityEntry
    from connector.telemetry import change_span, current_trace_context, on_activity
    on_activity(ActivityEntry("to_outlook", "create", "applied", resource_no="ALICE", appointment_guid="g1", latency_ms=840))
    on_activity(ActivityEntry("to_outlook", "update", "retrying", error="Graph 429 TooManyRequests: slow down"))
    on_activity(ActivityEntry("system", "renew", "applied"))
    with change_span("webhook", "") as webhook:
        parent = current_trace_context()
    with change_span("apply", parent) as applied:
        same_trace = applied.get_span_context().trace_id == webhook.get_span_context().trace_id
    data = reader.get_metrics_data()
    points = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in m.data.data_points:
                    key = m.name + " " + ",".join(f"{k}={v}" for k, v in sorted(p.attributes.items()))
                    points[key] = getattr(p, "value", None) if hasattr(p, "value") else p.sum
    print(json.dumps({"points": points, "same_trace": same_trace, "parent": parent, "logs": records}))
""")


def test_activity_feeds_metrics_and_traces_cross_the_queue() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    points = out["points"]
    assert points["connector.changes action=create,direction=to_outlook,outcome=applied"] == 1
    assert points["connector.changes action=update,direction=to_outlook,outcome=retrying"] == 1
    assert points["connector.throttled direction=to_outlook"] == 1
    assert points["connector.subscription.renewals outcome=applied"] == 1
    assert points["connector.sync.latency direction=to_outlook"] == 840  # histogram sum of one sample
    assert out["parent"].startswith("00-") and out["same_trace"] is True
    assert any("to_outlook create applied resource=ALICE appointment=g1" in line for line in out["logs"])


def test_request_urls_with_delta_tokens_stay_out_of_the_logs() -> None:
    """httpx logs every request line at INFO, delta and skip tokens included; the app start quiets it."""
    import logging

    from connector.config import load_settings
    from connector.telemetry import QUIET_LOGGERS, configure_telemetry
    from devtools.local_settings import local_values

    configure_telemetry(load_settings(local_values()))
    for name in QUIET_LOGGERS:  # "HTTP Request: GET .../calendarView/delta?$deltatoken=..." is INFO
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING, name
    assert logging.getLogger("connector").level <= logging.INFO  # our own lines are not quieted
