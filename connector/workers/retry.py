"""What happens to a change that cannot be applied now: retried later, never dropped, visible if it never works.

A transient failure (Graph throttling or 5xx, Dime.Scheduler down, a network error) sends a copy of
the queue message back with `attempt + 1`, made visible after Graph's `Retry-After` or an
exponential back-off; the current message then completes normally, so the host's own retry counter
is not spent on throttling. After `WORK_MAX_ATTEMPTS`, or at once for a permanent failure (a 4xx
that retrying cannot fix), the message is parked on `<queue>-poison` and the activity log records
it as failed with its error: the admin monitor shows it and can re-enqueue it. Unexpected
exceptions (bugs, storage outages) are not caught here: they reach the Functions host, which
retries per host.json and poisons after `maxDequeueCount`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from connector.errors import GraphError, PlanningError
from connector.messages import ExchangeChange, PlanningChange, SubscriptionLifecycle
from connector.stores.activity import ActivityEntry, ActivityLog
from connector.stores.queues import send_text
from connector.stores.storage import StorageClients, poison_queue_name

MAX_DELAY_SECONDS = 900  # a queue message may be hidden for up to 7 days; 15 min keeps retries timely
# A 429 is the service telling us when to come back, not a failed attempt: waiting it out does not
# spend `WORK_MAX_ATTEMPTS` (a busy mailbox would otherwise park changes within seconds). Bounded all
# the same, so a mailbox throttled for hours still ends visibly in the monitor.
MAX_THROTTLED_WAITS = 60


class Transient(Exception):
    """Raise (or wrap) to say: try this change again later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


@dataclass(frozen=True)
class Failure:
    transient: bool
    retry_after: float | None
    error: str
    throttled: bool = False  # answered 429: wait as told, not counted as an attempt


IRRESOLVABLE_CONFLICT = "ErrorIrresolvableConflict"


def irresolvable_conflict(exc: GraphError) -> bool:
    """Graph's spontaneous 412 on a PATCH without If-Match (msgraph-sdk-dotnet #1201, docs #2256): the
    item was busy, not changed by someone else; re-reading and retrying succeeds."""
    return exc.status == 412 and exc.code == IRRESOLVABLE_CONFLICT


def classify(exc: BaseException) -> Failure | None:
    """A failure the retry policy knows, or None for anything else (left to the host)."""
    if isinstance(exc, GraphError):
        return Failure(exc.transient or irresolvable_conflict(exc), exc.retry_after, str(exc), exc.status == 429)
    if isinstance(exc, PlanningError):
        return Failure(exc.transient, exc.retry_after, str(exc), exc.status == 429)
    if isinstance(exc, Transient):
        return Failure(True, exc.retry_after, str(exc))
    return None


def backoff_seconds(attempt: int, retry_after: float | None) -> int:
    """Honour Retry-After; otherwise 5 s, 10 s, 20 s ... capped at 15 minutes."""
    base = min(5 * 2**attempt, MAX_DELAY_SECONDS)
    return int(min(max(base if retry_after is None else retry_after, 1), MAX_DELAY_SECONDS) + 0.999)


class Message(Protocol):
    attempt: int
    throttled: int
    correlation_id: str

    def to_json(self) -> str: ...


@dataclass(frozen=True)
class RetryOutcome:
    outcome: str  # retrying | poisoned
    delay_seconds: int = 0


AnyMessage = ExchangeChange | PlanningChange | SubscriptionLifecycle


@dataclass(frozen=True)
class NextTry:
    message: AnyMessage
    delay_seconds: int
    detail: str


def next_try(message: AnyMessage, failure: Failure, max_attempts: int) -> NextTry | None:
    """When and as what a failed change is tried again; None when it is parked (permanent, or out of attempts)."""
    next_attempt = message.attempt + 1
    if failure.throttled and message.throttled < MAX_THROTTLED_WAITS:
        delay = backoff_seconds(message.attempt + message.throttled, failure.retry_after)
        return NextTry(replace(message, throttled=message.throttled + 1), delay,
                       f"throttled, next in {delay} s (attempt {next_attempt} of {max_attempts})")
    if failure.transient and next_attempt < max_attempts:
        delay = backoff_seconds(message.attempt, failure.retry_after)
        return NextTry(replace(message, attempt=next_attempt), delay,
                       f"attempt {next_attempt} of {max_attempts}, next in {delay} s")
    return None


def gives_up_on_faults(message: AnyMessage, failure: Failure, max_attempts: int) -> bool:
    """Parked although every attempt met a fault that may pass (not a change refused as permanent)."""
    return failure.transient and next_try(message, failure, max_attempts) is None


def handle_failure(
    clients: StorageClients,
    activity: ActivityLog,
    queue: str,
    message: AnyMessage,
    failure: Failure,
    max_attempts: int,
    entry: ActivityEntry,
) -> RetryOutcome:
    """Re-enqueue a transient failure with a delay, or park the change on the poison queue; log either way."""
    again = next_try(message, failure, max_attempts)
    if again is not None:
        send_text(clients, queue, again.message.to_json(), again.delay_seconds)
        activity.record(replace(entry, outcome="retrying", error=failure.error, detail=again.detail))
        return RetryOutcome("retrying", again.delay_seconds)
    next_attempt = message.attempt + 1
    send_text(clients, poison_queue_name(queue), replace(message, attempt=next_attempt).to_json())
    why = f"gave up after {next_attempt} attempts" if failure.transient else "cannot be applied"
    activity.record(replace(entry, outcome="failed", error=failure.error, detail=f"{why}; parked on {poison_queue_name(queue)}"))
    return RetryOutcome("poisoned")


def park_invalid_message(clients: StorageClients, activity: ActivityLog, queue: str, direction: str, raw: str,
                         error: str) -> None:
    """A queue message that can never be processed goes to the poison queue as it came, logged as
    failed (the host would otherwise retry it `maxDequeueCount` times for nothing)."""
    poison = poison_queue_name(queue)
    send_text(clients, poison, raw)
    activity.record(ActivityEntry(direction, "sync", "failed", error=error, detail=f"invalid queue message; parked on {poison}"))
