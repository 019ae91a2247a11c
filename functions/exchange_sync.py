"""Outlook → planning: the exchange-changes worker (delta rounds, and the subscription lifecycle work
`graph_lifecycle` hands off on the same queue) and the sync_resources, renew_subscriptions and
reconcile_exchange timers.

Thin shells: parse the trigger input, call the core in `connector/workers/`, log the outcome.
"""

from __future__ import annotations

import asyncio
import logging

import azure.functions as func

from connector.messages import InvalidMessage
from connector.services import services
from connector.stores.storage import EXCHANGE_CHANGES_QUEUE
from connector.telemetry import message_span
from connector.workers.retry import park_invalid_message

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)


@bp.function_name("apply_exchange_changes")
@bp.queue_trigger(arg_name="msg", queue_name=EXCHANGE_CHANGES_QUEUE, connection="AzureWebJobsStorage")
async def apply_exchange_changes(msg: func.QueueMessage) -> None:
    from connector.workers.to_planning import handle_exchange_message

    app = services()
    try:
        with message_span("apply_exchange_changes", msg.get_body()):
            await handle_exchange_message(app, msg.get_body())
    except InvalidMessage as exc:
        await asyncio.to_thread(park_invalid_message, app.storage, app.activity, EXCHANGE_CHANGES_QUEUE, "to_planning",
                                msg.get_body().decode("utf-8", "replace"), str(exc))


@bp.function_name("sync_resources")
@bp.timer_trigger(arg_name="timer", schedule="%SYNC_RESOURCES_SCHEDULE%")
async def sync_resources(timer: func.TimerRequest) -> None:
    from connector.workers.resources import sync_resources as run

    report = await run(services())
    log.info("sync_resources: %d newly tracked, %d untracked, %d unknown email, %d missing, %d held, %d unchanged, "
             "%d checks enqueued, %d error(s)", len(report.tracked), len(report.untracked), len(report.unknown_email),
             len(report.missing), len(report.held), report.unchanged, report.checked, len(report.errors))


@bp.function_name("renew_subscriptions")
@bp.timer_trigger(arg_name="timer", schedule="%RENEW_SUBSCRIPTIONS_SCHEDULE%")
async def renew_subscriptions(timer: func.TimerRequest) -> None:
    from connector.workers.subscriptions import renew_subscriptions as run

    report = await run(services())
    log.info("renew_subscriptions: %d mailbox(es) enqueued for upkeep; %d old activity entries purged",
             report.enqueued, report.purged)


@bp.function_name("reconcile_exchange")
@bp.timer_trigger(arg_name="timer", schedule="%RECONCILE_EXCHANGE_SCHEDULE%")
def reconcile_exchange(timer: func.TimerRequest) -> None:
    """Safety net for missed notifications: one delta round per tracked mailbox."""
    from connector.workers.reconcile import reconcile_exchange as run

    log.info("reconcile_exchange: %d mailbox(es) enqueued", run(services()))
