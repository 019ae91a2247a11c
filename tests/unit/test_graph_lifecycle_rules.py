"""The pure rules behind Graph's real-world behaviours: renewal coalescing, lifecycle work from a
verified POST, the spontaneous 412 as a transient failure, lifecycle messages on the queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connector.errors import GraphError
from connector.gateways.batcher import WriteResponse, inner_error
from connector.messages import (
    UPKEEP,
    ExchangeChange,
    InvalidMessage,
    ResourceCheck,
    SubscriptionLifecycle,
    message_kind,
)
from connector.stores.registry import SubscriptionIndex, client_state_hash
from connector.stores.renewals import CLAIM_TTL, RenewalState, decide
from connector.web.graph_intake import NotificationItem, lifecycle_work, verify
from connector.workers.retry import backoff_seconds, classify
from connector.workers.subscriptions import lifetime

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
RECENT = timedelta(minutes=1)


# -- renewal claims ------------------------------------------------------------------------------------
def test_a_free_subscription_is_claimed() -> None:
    claimed = decide(RenewalState(), "me", NOW, RECENT)
    assert claimed == RenewalState("me", NOW + CLAIM_TTL, None)


def test_a_renewal_in_flight_elsewhere_is_not_repeated() -> None:
    busy = RenewalState("other", NOW + timedelta(seconds=30))
    assert decide(busy, "me", NOW, RECENT) is None


def test_an_abandoned_claim_can_be_taken_over() -> None:
    crashed = RenewalState("other", NOW - timedelta(seconds=1))
    claimed = decide(crashed, "me", NOW, RECENT)
    assert claimed is not None and claimed.owner == "me"


def test_a_renewal_done_moments_ago_is_not_repeated_but_an_older_one_is() -> None:
    assert decide(RenewalState(renewed_at=NOW - timedelta(seconds=20)), "me", NOW, RECENT) is None
    again = decide(RenewalState(renewed_at=NOW - timedelta(minutes=2)), "me", NOW, RECENT)
    assert again is not None and again.renewed_at == NOW - timedelta(minutes=2)


def test_renewal_state_round_trips_through_a_row() -> None:
    state = RenewalState("me", NOW, NOW - timedelta(hours=1))
    assert RenewalState.from_row(state.to_row()) == state
    assert RenewalState.from_row(RenewalState().to_row()) == RenewalState()


# -- lifecycle work from a verified POST -------------------------------------------------------------------
SUB = SubscriptionIndex("sub-1", "R1", "user-1", client_state_hash("secret"))


def _verified(*events: str) -> list[ExchangeChange | SubscriptionLifecycle]:
    items = [NotificationItem("sub-1", "secret", lifecycle_event=e) for e in events]
    return lifecycle_work(verify(items, {"sub-1": SUB}.get))


def test_missed_becomes_a_delta_round_and_the_others_lifecycle_work() -> None:
    work = _verified("missed", "reauthorizationRequired", "subscriptionRemoved")
    assert [type(w).__name__ for w in work] == ["ExchangeChange", "SubscriptionLifecycle", "SubscriptionLifecycle"]
    round_, renew, removed = work
    assert isinstance(round_, ExchangeChange) and round_.user_id == "user-1" and not round_.full_resync
    assert isinstance(renew, SubscriptionLifecycle) and (renew.subscription_id, renew.resource_no, renew.event) == (
        "sub-1", "R1", "reauthorizationRequired")
    assert isinstance(removed, SubscriptionLifecycle) and removed.event == "subscriptionRemoved"


def test_repeated_events_in_one_post_make_one_message_and_forged_ones_none() -> None:
    assert len(_verified("reauthorizationRequired", "reauthorizationRequired")) == 1
    forged = [NotificationItem("sub-1", "guess", lifecycle_event="reauthorizationRequired")]
    assert lifecycle_work(verify(forged, {"sub-1": SUB}.get)) == []


def test_lifecycle_messages_round_trip_and_are_told_apart_from_changes() -> None:
    message = SubscriptionLifecycle("sub-1", "R1", "user-1", "reauthorizationRequired")
    text = message.to_json()
    assert message_kind(text) == "subscription-lifecycle" and SubscriptionLifecycle.from_json(text) == message
    assert message_kind(ExchangeChange(user_id="u", reason="notification").to_json()) == "exchange-change"
    assert message_kind("not json") == "" and message_kind("[1]") == ""
    with pytest.raises(InvalidMessage, match="event"):
        SubscriptionLifecycle.from_json(text.replace("reauthorizationRequired", "missed"))
    with pytest.raises(InvalidMessage, match="subscription_id"):
        SubscriptionLifecycle.from_json(text.replace('"sub-1"', '""'))


def test_the_renew_timers_upkeep_rides_the_same_queue_and_may_name_no_subscription_yet() -> None:
    # A tracked mailbox whose create failed has no subscription: its upkeep creates one.
    upkeep = SubscriptionLifecycle("", "R1", "user-1", UPKEEP)
    assert SubscriptionLifecycle.from_json(upkeep.to_json()) == upkeep
    with pytest.raises(InvalidMessage, match="resource_no"):
        SubscriptionLifecycle.from_json(upkeep.to_json().replace('"R1"', '""'))
    # Only the timer makes upkeep work: a lifecycle notification saying "upkeep" is none of Graph's events.
    assert _verified("upkeep") == []


def test_a_resource_check_rides_the_same_queue_and_needs_its_resource_and_email() -> None:
    check = ResourceCheck("R1", "r1@contoso.example", "R One")
    text = check.to_json()
    assert message_kind(text) == "resource-check" and ResourceCheck.from_json(text) == check
    for field in ('"R1"', '"r1@contoso.example"'):
        with pytest.raises(InvalidMessage, match="required"):
            ResourceCheck.from_json(text.replace(field, '""'))
    with pytest.raises(InvalidMessage, match="kind"):
        ExchangeChange.from_json(text)


# -- 412 ErrorIrresolvableConflict and Retry-After ----------------------------------------------------------------
def test_the_spontaneous_412_is_transient_but_an_if_match_conflict_is_not() -> None:
    irresolvable = classify(GraphError(412, "ErrorIrresolvableConflict", "change key mismatch"))
    assert irresolvable is not None and irresolvable.transient
    other = classify(GraphError(412, "PreconditionFailed", "etag mismatch"))
    assert other is not None and not other.transient


def test_fractional_retry_after_is_honoured_rounded_up_to_whole_seconds() -> None:
    throttled = classify(GraphError(429, "ApplicationThrottled", "MailboxConcurrency", 0.5))
    assert throttled is not None and throttled.transient and throttled.retry_after == 0.5
    assert backoff_seconds(0, 0.5) == 1 and backoff_seconds(3, 2.2) == 3


def test_a_throttled_inner_batch_response_keeps_its_code_and_fractional_retry_after() -> None:
    body = {"error": {"code": "ApplicationThrottled", "message": "Application is over its MailboxConcurrency limit."}}
    error = inner_error(WriteResponse(429, {"Retry-After": "0.5"}, body))
    assert (error.status, error.code, error.retry_after, error.transient) == (429, "ApplicationThrottled", 0.5, True)


# -- subscription lifetimes ------------------------------------------------------------------------------
def test_subscriptions_created_together_come_due_over_several_hourly_runs() -> None:
    asked = {lifetime(4200, 1440, f"user-{i}") for i in range(500)}
    # Never longer than asked nor within the renewal margin, spread over the six hours below the lifetime...
    assert all(timedelta(minutes=4200 - 360) <= a <= timedelta(minutes=4200) for a in asked)
    hours = {a // timedelta(hours=1) for a in asked}
    assert len(hours) >= 6
    # ...and each mailbox keeps its own offset, renewal after renewal.
    assert lifetime(4200, 1440, "user-7") == lifetime(4200, 1440, "user-7")
    # A short lifetime is spread less, and never reaches the margin.
    assert all(timedelta(minutes=50) <= lifetime(60, 20, f"u{i}") <= timedelta(minutes=60) for i in range(100))
