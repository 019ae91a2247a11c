"""Graph webhooks: `graph_notifications` and `graph_lifecycle`.

Thin shells over `connector/web/graph_intake.py`: handshake, parse, verify each item's subscription and
clientState, then enqueue and answer 202. Graph counts an answer slower than 3 s as failed, so
neither webhook calls Graph or Dime.Scheduler: a change notification becomes one `ExchangeChange`
per mailbox, a lifecycle event a `SubscriptionLifecycle` (or, for `missed`, an `ExchangeChange`)
that the exchange-changes worker acts on. This module's imports never reach msgraph. A POST naming more
subscriptions than one request may read (`MAX_READS_PER_POST`) has the rest dropped unread, its
accepted items still enqueued, and is answered 503 so that Graph would post it again. So is a POST that met a
storage error (reading subscriptions, enqueuing): Graph posts it again, and what was enqueued already is
enqueued twice, which the workers take as the same change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import azure.functions as func
from azure.core.exceptions import AzureError

from connector.messages import ExchangeChange, SubscriptionLifecycle
from connector.services import Services, services
from connector.stores.activity import ActivityEntry
from connector.telemetry import change_span
from connector.web.graph_intake import (
    MAX_READS_PER_POST,
    IntakeError,
    Verified,
    coalesce,
    deleted_items,
    lifecycle_work,
    parse_body,
    verify,
)

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)


def _handshake(req: func.HttpRequest) -> func.HttpResponse | None:
    token = req.params.get("validationToken")
    if token is None:
        return None
    return func.HttpResponse(token, status_code=200, mimetype="text/plain", charset="utf-8")


def _verified(req: func.HttpRequest, app: Services, kind: str) -> Verified | func.HttpResponse:
    try:
        items = parse_body(req.get_body())
    except IntakeError as exc:
        return func.HttpResponse(exc.reason, status_code=exc.status, mimetype="text/plain")
    verified = verify(items, app.subscription_lookup)
    if verified.rejected:
        # A security event: one log line and one activity row per POST, counts only, nothing in the response.
        unread = (f"; {verified.unread} of them unread (more than {MAX_READS_PER_POST} subscriptions this "
                  "instance does not know in one POST)") if verified.unread else ""
        log.warning("graph %s: dropped %d item(s) with an unknown subscription or a wrong clientState%s",
                    kind, verified.rejected, unread)
        app.activity.record(ActivityEntry(direction="to_planning", action=kind, outcome="rejected",
                                          detail=f"{verified.rejected} item(s) with an unknown subscription or a "
                                                 f"wrong clientState dropped (security event){unread}"))
    return verified


def _accepted(verified: Verified) -> func.HttpResponse:
    """202; 503 when items went unread, so that a real sender (Graph retries 5xx) posts them again."""
    if verified.unread:
        return func.HttpResponse("too many unknown subscriptions in one request", status_code=503,
                                 mimetype="text/plain")
    return func.HttpResponse(status_code=202)


def _unless_storage_fails(kind: str, handle: Callable[[], func.HttpResponse]) -> func.HttpResponse:
    """`handle()`, or 503 when storage failed it (after the SDK's own retries): Graph retries a 5xx."""
    try:
        return handle()
    except AzureError as exc:
        log.warning("graph %s: storage error %s, answered 503 for Graph to post again", kind, type(exc).__name__)
        return func.HttpResponse("storage unavailable, post again", status_code=503, mimetype="text/plain")


@bp.function_name("graph_notifications")
@bp.route(route="api/graph/notifications", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def graph_notifications(req: func.HttpRequest) -> func.HttpResponse:
    handshake = _handshake(req)
    if handshake is not None:
        return handshake
    return _unless_storage_fails("notification", lambda: _notifications(req))


def _notifications(req: func.HttpRequest) -> func.HttpResponse:
    app = services()
    verified = _verified(req, app, "notification")
    if isinstance(verified, func.HttpResponse):
        return verified
    with change_span("graph_notifications", ""):  # each enqueued change continues this trace
        deleted = deleted_items(verified)
        for user_id in coalesce(verified):
            app.work_queues.send_exchange_change(ExchangeChange(user_id=user_id, reason="notification",
                                                                event_ids=deleted.get(user_id, [])))
    return _accepted(verified)


@bp.function_name("graph_lifecycle")
@bp.route(route="api/graph/lifecycle", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def graph_lifecycle(req: func.HttpRequest) -> func.HttpResponse:
    handshake = _handshake(req)
    if handshake is not None:
        return handshake
    return _unless_storage_fails("lifecycle", lambda: _lifecycle(req))


def _lifecycle(req: func.HttpRequest) -> func.HttpResponse:
    app = services()
    verified = _verified(req, app, "lifecycle")
    if isinstance(verified, func.HttpResponse):
        return verified
    with change_span("graph_lifecycle", ""):
        for work in lifecycle_work(verified):
            if isinstance(work, SubscriptionLifecycle):
                app.work_queues.send_lifecycle(work)
            else:
                app.work_queues.send_exchange_change(work)
    return _accepted(verified)
