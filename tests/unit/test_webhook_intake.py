"""Graph webhook intake: handshake, body limits and shape, clientState checks, coalescing per mailbox."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from connector.stores.registry import SubscriptionIndex, client_state_hash
from connector.web.graph_intake import (
    MAX_BODY_BYTES,
    IntakeError,
    NotificationItem,
    SubscriptionCache,
    coalesce,
    lifecycle_events,
    parse_body,
    validation_token,
    verify,
)

ROOT = Path(__file__).resolve().parents[2]
SUBS = {
    "sub-a": SubscriptionIndex("sub-a", "ALICE", "user-a", client_state_hash("secret-a")),
    "sub-b": SubscriptionIndex("sub-b", "BOB", "user-b", client_state_hash("secret-b")),
}


def body(*items: dict[str, object]) -> bytes:
    return json.dumps({"value": list(items)}).encode()


def item(sub: str, state: str | None, change: str = "updated", **extra: object) -> dict[str, object]:
    data: dict[str, object] = {"subscriptionId": sub, "changeType": change, "tenantId": "t",
                               "resource": f"Users/x/Events/{change}", **extra}
    if state is not None:
        data["clientState"] = state
    return data


def test_the_handshake_token_is_returned_as_given() -> None:
    assert validation_token({"validationToken": "Validation: a b:c"}) == "Validation: a b:c"
    assert validation_token({}) is None


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b'{"value": 3}', b'{"value": [1]}', b'{"value": [{}]}',
                                 b'{"value": [{"subscriptionId": ""}]}', b"\xff\xfe"])
def test_malformed_bodies_are_400(raw: bytes) -> None:
    with pytest.raises(IntakeError) as caught:
        parse_body(raw)
    assert caught.value.status == 400


def test_a_body_over_the_limit_is_413_before_parsing() -> None:
    with pytest.raises(IntakeError) as caught:
        parse_body(b" " * (MAX_BODY_BYTES + 1))
    assert caught.value.status == 413


def test_items_are_parsed_with_only_what_the_connector_needs() -> None:
    parsed = parse_body(body(item("sub-a", "secret-a", "created"), item("sub-b", None, lifecycleEvent="missed")))
    assert parsed == [NotificationItem("sub-a", "secret-a", "created", ""),
                      NotificationItem("sub-b", None, "updated", "missed")]


def test_unknown_subscriptions_and_wrong_client_states_are_dropped_and_counted() -> None:
    items = parse_body(body(item("sub-a", "secret-a"), item("sub-a", "secret-b"), item("sub-x", "secret-a"),
                            item("sub-b", None), item("sub-b", "secret-b")))
    verified = verify(items, SUBS.get)
    assert verified.rejected == 3
    assert [(index.subscription_id, i.client_state) for index, i in verified.accepted] == [
        ("sub-a", "secret-a"), ("sub-b", "secret-b")]


def test_each_subscription_is_looked_up_once_per_request() -> None:
    calls: list[str] = []

    def lookup(sid: str) -> SubscriptionIndex | None:
        calls.append(sid)
        return SUBS.get(sid)

    verify(parse_body(body(*[item("sub-a", "secret-a")] * 5, item("sub-x", "s"), item("sub-x", "s"))), lookup)
    assert calls == ["sub-a", "sub-x"]


def test_a_burst_coalesces_to_one_unit_of_work_per_mailbox() -> None:
    items = parse_body(body(item("sub-a", "secret-a", "created"), item("sub-a", "secret-a", "updated"),
                            item("sub-b", "secret-b", "deleted"), item("sub-a", "secret-a", "updated")))
    assert coalesce(verify(items, SUBS.get)) == {"user-a": "ALICE", "user-b": "BOB"}


def test_lifecycle_events_are_deduplicated_per_subscription() -> None:
    items = parse_body(body(item("sub-a", "secret-a", lifecycleEvent="missed"),
                            item("sub-a", "secret-a", lifecycleEvent="missed"),
                            item("sub-a", "secret-a", lifecycleEvent="subscriptionRemoved"),
                            item("sub-b", "wrong", lifecycleEvent="reauthorizationRequired")))
    events = lifecycle_events(verify(items, SUBS.get))
    assert [(index.subscription_id, event) for index, event in events] == [
        ("sub-a", "missed"), ("sub-a", "subscriptionRemoved")]


def test_the_webhook_functions_do_not_import_msgraph() -> None:
    code = ("import sys, functions.graph_webhooks, functions.exchange_sync; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('msgraph', 'kiota_http', 'dimescheduler')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_known_subscriptions_are_remembered_for_a_minute_and_misses_for_seconds() -> None:
    """A busy mailbox's notifications cost one index read a minute, not one per POST; an unknown id
    costs one read per `miss_ttl`, so a subscription created just after a miss is known soon after."""
    now = [0.0]
    rows: dict[str, SubscriptionIndex] = {}
    reads: list[str] = []

    def lookup(subscription_id: str) -> SubscriptionIndex | None:
        reads.append(subscription_id)
        return rows.get(subscription_id)

    cache = SubscriptionCache(lookup, ttl=60, size=2, clock=lambda: now[0], miss_ttl=15)
    assert cache("sub-new") is None
    rows["sub-new"] = SubscriptionIndex("sub-new", "ALICE", "user-1", "hash")
    assert cache("sub-new") is None and reads == ["sub-new"]  # the miss is remembered...
    now[0] = 15.0
    assert cache("sub-new") == rows["sub-new"] and cache("sub-new") == rows["sub-new"]
    assert reads == ["sub-new", "sub-new"]  # ...for 15 s; the hit is remembered too
    now[0] = 76.0
    del rows["sub-new"]  # removed meanwhile: after the minute, the index is asked again
    assert cache("sub-new") is None and reads[-1] == "sub-new"
    for name in ("a", "b", "c"):
        rows[name] = SubscriptionIndex(name, "BOB", "user-2", "hash")
        cache(name)
    reads.clear()
    cache("a")  # the oldest of three went (size 2): read again
    assert reads == ["a"]


def test_a_post_reads_at_most_its_budget_of_unremembered_subscriptions() -> None:
    """A flood of made-up ids costs `max_reads` reads, the same flood again none for the ids read; the
    items of a remembered subscription in it are accepted, wherever they are."""
    reads: list[str] = []
    real = SubscriptionIndex("sub-real", "ALICE", "user-1", client_state_hash("state-real"))

    def lookup(subscription_id: str) -> SubscriptionIndex | None:
        reads.append(subscription_id)
        return real if subscription_id == "sub-real" else None

    cache = SubscriptionCache(lookup)
    assert cache("sub-real") == real and reads == ["sub-real"]  # a busy mailbox: remembered
    junk = [NotificationItem(f"forged-{n}", "guess") for n in range(1000)]
    flood = [*junk[:500], NotificationItem("sub-real", "state-real"), *junk[500:]]
    reads.clear()
    first = verify(flood, cache, max_reads=10)
    assert [index.user_id for index, _item in first.accepted] == ["user-1"]
    assert (first.rejected, first.unread) == (1000, 990) and reads == [f"forged-{n}" for n in range(10)]
    reads.clear()
    again = verify([*junk[:10], NotificationItem("sub-real", "state-real")], cache, max_reads=10)
    assert reads == [] and len(again.accepted) == 1 and (again.rejected, again.unread) == (10, 0)
    assert verify(flood, SUBS.get, max_reads=3).unread == 998  # a plain look-up remembers nothing
