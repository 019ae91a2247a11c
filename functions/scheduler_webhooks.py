"""Dime.Scheduler webhooks: `POST /api/scheduler/notifications` (scheduler_notifications).

Anonymous at the host level, protected by `SCHEDULER_WEBHOOK_SECRET` carried in the registered URL
(or the `X-Connector-Secret` header). Validates, enqueues one `PlanningChange` on `planning-changes`
and answers 200 (Dime.Scheduler counts only 200 as delivered). Never calls Graph or Dime.Scheduler. When the
queue cannot take the change (a storage error the SDK's retries did not get past) it answers 503, so
Dime.Scheduler delivers it again.
"""

from __future__ import annotations

import json
import logging

import azure.functions as func
from azure.core.exceptions import AzureError

from connector.services import services
from connector.telemetry import change_span
from connector.web.scheduler_intake import Rejection, parse_notification

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)


def _json(status: int, body: dict[str, object]) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json",
                             headers={"Cache-Control": "no-store"})


@bp.function_name("scheduler_notifications")
@bp.route(route="api/scheduler/notifications", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def scheduler_notifications(req: func.HttpRequest) -> func.HttpResponse:
    svc = services()
    try:
        change = parse_notification(svc.settings.scheduler_webhook_secret.reveal(), dict(req.params),
                                    dict(req.headers), req.get_body())
    except Rejection as exc:
        if exc.status != 401:
            log.warning("Dime.Scheduler notification rejected: %s", exc.message)
        return _json(exc.status, {"error": exc.message})
    with change_span("scheduler_notifications", ""):  # the worker continues this trace
        try:
            svc.work_queues.send_planning_change(change)
        except AzureError as exc:  # not enqueued: the sender must deliver it again
            log.warning("Dime.Scheduler notification not enqueued (%s): answered 503", type(exc).__name__)
            return _json(503, {"error": "the change could not be queued; deliver it again"})
    return _json(200, {"accepted": True, "correlationId": change.correlation_id})
