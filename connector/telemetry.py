"""Telemetry: Azure Monitor through OpenTelemetry, switched on by APPLICATIONINSIGHTS_CONNECTION_STRING.

- Traces: a change carries the W3C `traceparent` of the webhook that caused it inside its queue
  message (`trace_context`, set by `WorkQueues`), and the worker continues that trace with
  `change_span`, so one trace runs from the webhook through the queue to the write on the other side.
- Metrics (names are what the operations guide's KQL queries use): `connector.changes` (counter by
  direction, action, outcome: applied, skipped, rejected, failed, retrying), `connector.sync.latency`
  (ms histogram by direction), `connector.throttled` (counter by direction), and
  `connector.subscription.renewals` (counter by outcome). They are fed from the activity log, the one
  place every change passes, so they cannot drift from what the monitor shows.
- Logs carry ids, actions and outcomes only: never secrets, never private item content. An error in
  a log line is `connector.errors.error_summary`'s, as in the activity log (bounded, no quoted values
  or echoed payload).
Without a connection string the OpenTelemetry API is a no-op and costs next to nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from connector.errors import error_summary

if TYPE_CHECKING:
    from connector.config import Settings
    from connector.stores.activity import ActivityEntry

_meter = metrics.get_meter("dimescheduler.exchange.connector")
_tracer = trace.get_tracer("dimescheduler.exchange.connector")
_propagator = TraceContextTextMapPropagator()
changes = _meter.create_counter("connector.changes", unit="{change}", description="Changes by direction and outcome")
latency = _meter.create_histogram("connector.sync.latency", unit="ms", description="From the change to the write")
throttled = _meter.create_counter("connector.throttled", unit="{response}", description="429 answers met")
renewals = _meter.create_counter("connector.subscription.renewals", unit="{renewal}",
                                 description="Graph subscription renewals")
log = logging.getLogger("connector")


# Client libraries that log each request's full URL at INFO: Graph's delta and skip tokens travel in
# URLs (anyone holding one reads the mailbox's changes), so their request lines stay out of the logs.
QUIET_LOGGERS = ("httpx", "httpcore", "azure.core.pipeline.policies.http_logging_policy")


def configure_telemetry(settings: Settings) -> bool:
    """Send traces, metrics and logs to Application Insights when a connection string is set."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    if settings.appinsights_connection_string is None:
        return False
    from azure.monitor.opentelemetry import configure_azure_monitor

    kwargs: dict[str, Any] = {"connection_string": settings.appinsights_connection_string.reveal(),
                              "logger_name": "connector"}
    if settings.graph.managed_identity_client_id:
        # Application Insights has local auth disabled: ingestion is authenticated with the app's identity.
        from azure.identity import ManagedIdentityCredential

        kwargs["credential"] = ManagedIdentityCredential(client_id=settings.graph.managed_identity_client_id)
    configure_azure_monitor(**kwargs)
    return True


def current_trace_context() -> str:
    """The W3C traceparent of the current span ("" outside a trace), to carry in a queue message."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent", "")


@contextmanager
def change_span(name: str, trace_context: str, **attributes: str) -> Iterator[trace.Span]:
    """Continue the trace of the webhook that caused this change (or start one)."""
    context = _propagator.extract({"traceparent": trace_context}) if trace_context else None
    with _tracer.start_as_current_span(name, context=context, attributes=attributes) as span:
        yield span


@contextmanager
def message_span(name: str, body: bytes | str) -> Iterator[trace.Span]:
    """`change_span` for a queue message: continues the trace its producer wrote into it."""
    import json

    try:
        data = json.loads(body)
    except ValueError:
        data = {}
    data = data if isinstance(data, dict) else {}
    with change_span(name, str(data.get("trace_context") or ""),
                     correlation_id=str(data.get("correlation_id") or "")) as span:
        yield span


def on_activity(entry: ActivityEntry) -> None:
    """Metrics and one log line for an activity entry (ids, outcome and the error's summary)."""
    attributes = {"direction": entry.direction, "action": entry.action, "outcome": entry.outcome}
    changes.add(1, attributes)
    if entry.latency_ms is not None and entry.outcome == "applied":
        latency.record(entry.latency_ms, {"direction": entry.direction})
    if "429" in entry.error:
        throttled.add(1, {"direction": entry.direction})
    if entry.action == "renew":
        renewals.add(1, {"outcome": entry.outcome})
    level = logging.WARNING if entry.outcome in ("failed", "rejected") else logging.INFO
    log.log(level, "%s %s %s resource=%s appointment=%s event=%s correlation=%s%s", entry.direction, entry.action,
            entry.outcome, entry.resource_no or "-", entry.appointment_guid or "-", entry.event_id or "-",
            entry.correlation_id or "-", f" error={error_summary(entry.error)}" if entry.error else "")
