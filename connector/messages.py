"""Queue message types: one per work queue, JSON on the wire (base64-wrapped by the queue client).

A message carries just enough to find the current state again (notifications are hints, not data)
plus a correlation id that follows the change from the webhook to the write on the other side.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Self


class InvalidMessage(ValueError):
    """A queue message that can never be processed (bad JSON or shape); the text says why."""


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_correlation_id() -> str:
    return uuid.uuid4().hex


class _Message:
    """JSON (de)serialisation shared by the message dataclasses."""

    kind: str = ""

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, **asdict(self)}, separators=(",", ":"))  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, text: str | bytes) -> Self:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidMessage(f"{cls.__name__}: not JSON ({exc})") from None
        if not isinstance(data, dict) or data.pop("kind", None) != cls.kind:
            raise InvalidMessage(f"{cls.__name__}: expected an object with kind={cls.kind!r}")
        try:
            message = cls(**data)
        except TypeError as exc:
            raise InvalidMessage(f"{cls.__name__}: {exc}") from None
        message.validate()
        return message

    def validate(self) -> None:
        raise NotImplementedError


MAX_EVENT_IDS = 50
MAX_EVENT_ID_LENGTH = 513  # Graph's event ids are ~150 characters (+1 for the "!" mark)


def _check_attempt(attempt: Any, throttled: Any = 0) -> None:
    for name, value in (("attempt", attempt), ("throttled", throttled)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidMessage(f"{name} must be a non-negative integer")


@dataclass(frozen=True)
class ExchangeChange(_Message):
    """Work for one mailbox on `exchange-changes`: bring its calendar changes to the planning board."""

    kind = "exchange-change"
    user_id: str
    reason: str  # notification | resync | reconcile | lifecycle | follow-up | item | recheck
    correlation_id: str = field(default_factory=new_correlation_id)
    received_at: str = field(default_factory=utc_now_iso)
    full_resync: bool = False
    attempt: int = 0  # how many times this change was already tried (transient failures)
    trace_context: str = ""  # W3C traceparent of the webhook that caused it: one trace per change
    throttled: int = 0  # how many times it waited out a 429 (not counted in `attempt`)
    # Single Outlook items to look at besides the delta round: the events named by deleted
    # notifications (an event created and deleted between two rounds never shows in delta), an item
    # parked as itself (the monitor's Retry applies it again). "!" before an id: do not look again later.
    event_ids: list[str] = field(default_factory=list)

    def validate(self) -> None:
        if not isinstance(self.user_id, str) or not self.user_id:
            raise InvalidMessage("ExchangeChange: user_id is required")
        if not isinstance(self.event_ids, list) or len(self.event_ids) > MAX_EVENT_IDS or not all(
                isinstance(i, str) and 0 < len(i) <= MAX_EVENT_ID_LENGTH for i in self.event_ids):
            raise InvalidMessage(f"ExchangeChange: event_ids must be at most {MAX_EVENT_IDS} event ids")
        _check_attempt(self.attempt, self.throttled)
        if not isinstance(self.full_resync, bool):
            raise InvalidMessage("ExchangeChange: full_resync must be a boolean")


@dataclass(frozen=True)
class PlanningChange(_Message):
    """Work for one appointment on `planning-changes`: bring it to the assigned resources' calendars."""

    kind = "planning-change"
    appointment_guid: str
    event: str  # created | updated | deleted | poll | restore
    correlation_id: str = field(default_factory=new_correlation_id)
    received_at: str = field(default_factory=utc_now_iso)
    appointment: dict[str, Any] | None = None  # the webhook's snapshot, when there was one
    attempt: int = 0  # how many times this change was already tried (transient failures)
    trace_context: str = ""  # W3C traceparent of the webhook that caused it: one trace per change
    throttled: int = 0  # how many times it waited out a 429 (not counted in `attempt`)
    # The numeric appointment id (int64, as text) when known: `GET /appointment/{id}` may accept
    # only that, not the GUID. Empty in messages from before it was carried.
    appointment_id: str = ""
    # event "restore": the Outlook → planning direction saw a person edit or delete this resource's
    # event of a planner's appointment; this worker writes the planner's version back (under the lease).
    restore_resource: str = ""
    restore_event_id: str = ""
    resent: int = 0  # how many times poll_planning sent it again after it gave up on faults (bounded)

    def validate(self) -> None:
        _check_attempt(self.attempt, self.throttled)
        if not isinstance(self.resent, int) or isinstance(self.resent, bool) or self.resent < 0:
            raise InvalidMessage("PlanningChange: resent must be a non-negative integer")
        if self.event == "restore" and (not isinstance(self.restore_resource, str) or not self.restore_resource):
            raise InvalidMessage("PlanningChange: a restore names its resource (restore_resource)")
        if not isinstance(self.restore_event_id, str):
            raise InvalidMessage("PlanningChange: restore_event_id must be a string")
        if not isinstance(self.appointment_id, str) or (self.appointment_id and not self.appointment_id.isdigit()):
            raise InvalidMessage("PlanningChange: appointment_id must be the numeric appointment id (digits) or empty")
        if not isinstance(self.appointment_guid, str) or not self.appointment_guid:
            raise InvalidMessage("PlanningChange: appointment_guid is required")
        if self.event not in ("created", "updated", "deleted", "poll", "restore"):
            raise InvalidMessage(f"PlanningChange: unknown event {self.event!r}")


UPKEEP = "upkeep"  # the renew_subscriptions timer's work for one tracked mailbox (fanned out)
LIFECYCLE_WORK = ("reauthorizationRequired", "subscriptionRemoved", UPKEEP)


@dataclass(frozen=True)
class SubscriptionLifecycle(_Message):
    """Work for one subscription on `exchange-changes`: a verified lifecycle event that needs Graph
    calls (renew on `reauthorizationRequired`, recreate on `subscriptionRemoved`). The webhook only
    enqueues it, so it answers Graph within its 3 s whatever Graph and the tables cost. `upkeep` is the
    `renew_subscriptions` timer's check of one tracked mailbox (renew, recreate or create its
    subscription): one message each, so the timer's run does not grow with the mailboxes."""

    kind = "subscription-lifecycle"
    subscription_id: str
    resource_no: str
    user_id: str
    event: str  # reauthorizationRequired | subscriptionRemoved | upkeep
    correlation_id: str = field(default_factory=new_correlation_id)
    received_at: str = field(default_factory=utc_now_iso)
    attempt: int = 0
    trace_context: str = ""
    throttled: int = 0

    def validate(self) -> None:
        for name in ("subscription_id", "resource_no", "user_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not (value or (name == "subscription_id" and self.event == UPKEEP)):
                raise InvalidMessage(f"SubscriptionLifecycle: {name} is required")
        if self.event not in LIFECYCLE_WORK:
            raise InvalidMessage(f"SubscriptionLifecycle: unknown event {self.event!r}")
        _check_attempt(self.attempt, self.throttled)


@dataclass(frozen=True)
class ResourceCheck(_Message):
    """Work for one tracked resource on `exchange-changes`, fanned out by `sync_resources`: is its email
    still the same Graph user, has its mailbox's time zone changed, does it have its subscription. The
    timer keeps the decisions about the whole tenant (tracking, untracking under the mass-change guard);
    the Graph calls of the steady state (two per resource) run here, on any instance."""

    kind = "resource-check"
    resource_no: str
    email: str
    display_name: str = ""
    correlation_id: str = field(default_factory=new_correlation_id)
    received_at: str = field(default_factory=utc_now_iso)
    attempt: int = 0
    trace_context: str = ""
    throttled: int = 0

    def validate(self) -> None:
        for name in ("resource_no", "email"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise InvalidMessage(f"ResourceCheck: {name} is required")
        if not isinstance(self.display_name, str):
            raise InvalidMessage("ResourceCheck: display_name must be a string")
        _check_attempt(self.attempt, self.throttled)


MAX_SLICE_RESOURCES = 500


@dataclass(frozen=True)
class PollSlice(_Message):
    """Work for a slice of the resources on `planning-changes`, fanned out by `poll_planning`: compare
    their part of the planning window with their mailboxes' copies and enqueue what differs."""

    kind = "poll-slice"
    resource_nos: list[str]
    correlation_id: str = field(default_factory=new_correlation_id)
    received_at: str = field(default_factory=utc_now_iso)
    attempt: int = 0
    trace_context: str = ""
    throttled: int = 0

    def validate(self) -> None:
        if not isinstance(self.resource_nos, list) or not 0 < len(self.resource_nos) <= MAX_SLICE_RESOURCES or not all(
                isinstance(r, str) and r for r in self.resource_nos):
            raise InvalidMessage(f"PollSlice: resource_nos must name 1 to {MAX_SLICE_RESOURCES} resources")
        _check_attempt(self.attempt, self.throttled)


def message_kind(text: str | bytes) -> str:
    """The `kind` of a queue message ("" when it has none or is not JSON): picks the parser."""
    try:
        data = json.loads(text)
    except ValueError:
        return ""
    kind = data.get("kind") if isinstance(data, dict) else None
    return kind if isinstance(kind, str) else ""
