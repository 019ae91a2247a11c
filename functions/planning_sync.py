"""Planning → Outlook: the planning-changes worker and the poll_planning timer."""

from __future__ import annotations

import azure.functions as func

from connector.services import services
from connector.stores.storage import PLANNING_CHANGES_QUEUE
from connector.telemetry import message_span
from connector.workers.poll import poll_planning as poll
from connector.workers.to_outlook import handle_planning_message

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.function_name("apply_planning_changes")
@bp.queue_trigger(arg_name="msg", queue_name=PLANNING_CHANGES_QUEUE, connection="AzureWebJobsStorage")
async def apply_planning_changes(msg: func.QueueMessage) -> None:
    """One appointment's change → its events in the assigned resources' calendars (async: writes are batched)."""
    with message_span("apply_planning_changes", msg.get_body()):
        await handle_planning_message(services(), msg.get_body())


@bp.function_name("poll_planning")
@bp.timer_trigger(arg_name="timer", schedule="%POLL_PLANNING_SCHEDULE%", run_on_startup=False)
def poll_planning(timer: func.TimerRequest) -> None:
    """Safety net for missed webhooks: enqueue what differs between the planning window and the mappings."""
    poll(services())
