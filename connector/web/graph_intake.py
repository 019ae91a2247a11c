"""Graph webhook intake: the validation handshake, parsing and verifying notification bodies, coalescing.

Pure functions, no I/O and no SDK: the HTTP functions in `functions/graph_webhooks.py` feed them the
request and a look-up of the subscription index, then enqueue what comes out.

Rules (../shared/reference/graph.md, "Notification delivery"):
- A POST with `?validationToken=...` is Graph's handshake: answer 200 `text/plain` with the token,
  URL-decoded (the Functions request already decodes query values), and nothing else.
- A body over `MAX_BODY_BYTES` is refused with 413 before it is parsed; a body that is not JSON, or
  not `{"value": [object, ...]}`, or an item without a `subscriptionId`, is 400.
- Each item is checked against the subscription index: the subscription must be known and the
  item's `clientState` must hash to the stored hash (constant-time compare in `SubscriptionIndex`).
  Anything else is dropped and counted; the caller logs only the count (never content) and answers
  the same 202 either way, so a forger learns nothing about which subscriptions exist.
- Notifications are hints, not data: the accepted items collapse to one unit of work per mailbox
  (the worker reads the current state with a delta query), so a burst of "created" + "updated" +
  duplicates costs one queue message per mailbox and POST.
- Graph judges every answer at 3 s (slower counts as failed; too many slow or failed answers delay
  or drop the endpoint's notifications), so before answering the webhooks do only the index
  look-up and the queue puts. Known subscriptions are remembered for a minute (`SubscriptionCache`):
  a busy mailbox's notifications then cost no Table read at all.
- The endpoint is anonymous, and one 1 MiB POST can name ~19,000 made-up subscriptions. So a POST
  reads at most `MAX_READS_PER_POST` subscriptions this instance does not remember (Graph's own POSTs
  carry items for a handful), unknown ones are remembered for `MISS_TTL` seconds (the same flood again
  costs no read), and the items beyond the budget are dropped unread (`Verified.unread`): the webhook
  then answers 503, so Graph, were it the sender, posts them again. Items whose subscription is
  remembered or read are still checked and enqueued. Lifecycle events become
  queue work too (`lifecycle_work`): `missed` a delta round, the others a `SubscriptionLifecycle`
  the exchange-changes worker renews or recreates from.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connector.messages import ExchangeChange, SubscriptionLifecycle
from connector.stores.registry import SubscriptionIndex
from connector.web.jsonbody import BadJson, parse_json

SUBSCRIPTION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
MAX_BODY_BYTES = 1024 * 1024  # Graph posts at most a few hundred items; 1 MiB is far beyond that
MAX_EVENT_ID_LENGTH = 512  # Graph's event ids are ~150 characters; longer cannot be a table key
MAX_ITEM_CHECKS = 50  # per mailbox and POST; deletions beyond it still reach the board through delta
MAX_READS_PER_POST = 50  # subscriptions not remembered, read per POST: ~0.5 s of point reads at most
MISS_TTL = 15.0  # seconds an unknown subscription stays unknown without a read
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")


class Forgotten:
    """`SubscriptionCache.remembered`'s answer for an id it holds nothing about."""


FORGOTTEN = Forgotten()


class SubscriptionCache:
    """The subscription index look-up, remembering known subscriptions for `ttl` seconds and unknown
    ones for `miss_ttl` seconds (at most `size` of each).

    A miss is kept briefly so that a flood of made-up ids costs one read per id, not one per POST. A
    subscription created just after a miss of its id (Graph notifies only after creating it, and its
    id cannot be guessed, so only a notification racing the index write) is refused for at most
    `miss_ttl` seconds; the resync that follows every new subscription reads those changes anyway. A
    removed subscription may be accepted for up to `ttl` more seconds, which is harmless: its
    clientState still has to match, and the worker ignores a mailbox that is no longer tracked."""

    def __init__(self, lookup: Callable[[str], SubscriptionIndex | None], ttl: float = 60.0, size: int = 20_000,
                 clock: Callable[[], float] | None = None, miss_ttl: float = MISS_TTL) -> None:
        self._lookup, self._ttl, self._size, self._clock, self._miss_ttl = lookup, ttl, size, clock, miss_ttl
        self._known: OrderedDict[str, tuple[float, SubscriptionIndex]] = OrderedDict()
        self._missed: OrderedDict[str, float] = OrderedDict()

    def _now(self) -> float:
        return self._clock() if self._clock else time.monotonic()  # looked up per call: a test may drive `time`

    def remembered(self, subscription_id: str) -> SubscriptionIndex | Forgotten | None:
        """What the cache holds for the id without reading: the index, None (known unknown) or `FORGOTTEN`."""
        now = self._now()
        cached = self._known.get(subscription_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        missed = self._missed.get(subscription_id)
        if missed is not None and now - missed < self._miss_ttl:
            return None
        return FORGOTTEN

    def __call__(self, subscription_id: str) -> SubscriptionIndex | None:
        remembered = self.remembered(subscription_id)
        if not isinstance(remembered, Forgotten):
            return remembered
        found = self._lookup(subscription_id)
        self._known.pop(subscription_id, None)
        self._missed.pop(subscription_id, None)
        if found is not None:
            _bounded_put(self._known, subscription_id, (self._now(), found), self._size)
        else:
            _bounded_put(self._missed, subscription_id, self._now(), self._size)
        return found


def _bounded_put(cache: OrderedDict[str, Any], key: str, value: Any, size: int) -> None:
    cache[key] = value
    while len(cache) > size:
        cache.popitem(last=False)


class IntakeError(Exception):
    """A request the endpoint refuses: the HTTP status and a short reason (no echo of the input)."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"{status}: {reason}")


@dataclass(frozen=True)
class NotificationItem:
    """One item of a change or lifecycle notification; only what the connector needs."""

    subscription_id: str
    client_state: str | None
    change_type: str = ""
    lifecycle_event: str = ""
    resource_id: str = ""  # resourceData.id: the event the change is about


@dataclass(frozen=True)
class Verified:
    """The items that passed the check (with their subscription) and how many were dropped."""

    accepted: list[tuple[SubscriptionIndex, NotificationItem]] = field(default_factory=list)
    rejected: int = 0
    unread: int = 0  # of the rejected: dropped without a read, the POST's read budget spent


def validation_token(params: Mapping[str, str]) -> str | None:
    """The handshake token when the request is Graph's validation call, else None."""
    token = params.get("validationToken")
    return token if token is not None else None


def parse_body(body: bytes) -> list[NotificationItem]:
    """Parse a notification POST body; `IntakeError` 413 (too big) or 400 (malformed)."""
    if len(body) > MAX_BODY_BYTES:
        raise IntakeError(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        data: Any = parse_json(body)
    except BadJson as exc:
        raise IntakeError(400, str(exc)) from None
    if not isinstance(data, dict) or not isinstance(data.get("value"), list):
        raise IntakeError(400, 'expected a JSON object {"value": [...]}')
    items: list[NotificationItem] = []
    for index, raw in enumerate(data["value"]):
        if not isinstance(raw, dict):
            raise IntakeError(400, f"value[{index}] is not an object")
        subscription_id = raw.get("subscriptionId")
        if not isinstance(subscription_id, str) or not subscription_id:
            raise IntakeError(400, f"value[{index}].subscriptionId is missing")
        client_state = raw.get("clientState")
        items.append(NotificationItem(
            subscription_id=subscription_id,
            client_state=client_state if isinstance(client_state, str) else None,
            change_type=str(raw.get("changeType") or ""),
            lifecycle_event=str(raw.get("lifecycleEvent") or ""),
            resource_id=_resource_id(raw.get("resourceData")),
        ))
    return items


def _resource_id(data: Any) -> str:
    """The event id of a notification, when it is one Graph could have sent (else "")."""
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= MAX_EVENT_ID_LENGTH else ""


def deleted_items(verified: Verified) -> dict[str, list[str]]:
    """Mailbox → the event ids of its deletions (at most `MAX_ITEM_CHECKS` each). An event created and
    deleted between two delta rounds never shows in delta, not even as removed: when it was a
    planner's event deleted the moment it appeared, only the notification says which one it was."""
    found: dict[str, dict[str, None]] = {}
    for index, item in verified.accepted:
        if item.change_type == "deleted" and item.resource_id:
            found.setdefault(index.user_id, {}).setdefault(item.resource_id)
    return {user_id: list(ids)[:MAX_ITEM_CHECKS] for user_id, ids in found.items()}


def verify(items: list[NotificationItem], lookup: Callable[[str], SubscriptionIndex | None],
           max_reads: int = MAX_READS_PER_POST) -> Verified:
    """Keep the items whose subscription is known and whose clientState matches; count the rest.

    Every item costs one hash compare, whether or not the subscription exists. Each distinct
    subscription costs one look-up, except that at most `max_reads` of them may be ones `lookup` (a
    `SubscriptionCache`) does not remember: the items of the others are dropped unread.
    """
    accepted: list[tuple[SubscriptionIndex, NotificationItem]] = []
    rejected = unread = reads = 0
    remembered = lookup.remembered if isinstance(lookup, SubscriptionCache) else _nothing_remembered
    cache: dict[str, SubscriptionIndex | Forgotten | None] = {}
    for item in items:
        if item.subscription_id not in cache:
            # An id no subscription can have (Graph's are GUIDs) is unknown without asking storage,
            # whose keys refuse some characters and lengths.
            if SUBSCRIPTION_ID.fullmatch(item.subscription_id) is None:
                cache[item.subscription_id] = None
            elif not isinstance(known := remembered(item.subscription_id), Forgotten):
                cache[item.subscription_id] = known
            elif reads < max_reads:
                reads += 1
                cache[item.subscription_id] = lookup(item.subscription_id)
            else:
                cache[item.subscription_id] = FORGOTTEN
        index = cache[item.subscription_id]
        if index is None or isinstance(index, Forgotten):
            # Same amount of work as a real check (a dummy compare), then drop.
            SubscriptionIndex("", "", "", "0" * 64).accepts(item.client_state or "")
            rejected += 1
            unread += isinstance(index, Forgotten)
        elif index.accepts(item.client_state):
            accepted.append((index, item))
        else:
            rejected += 1
    return Verified(accepted, rejected, unread)


def _nothing_remembered(_subscription_id: str) -> Forgotten:
    return FORGOTTEN


def coalesce(verified: Verified) -> dict[str, str]:
    """One unit of work per mailbox: user id → resource number, in first-seen order."""
    mailboxes: dict[str, str] = {}
    for index, _item in verified.accepted:
        mailboxes.setdefault(index.user_id, index.resource_no)
    return mailboxes


def lifecycle_events(verified: Verified) -> list[tuple[SubscriptionIndex, str]]:
    """The accepted lifecycle items, one per (subscription, event) (Graph may repeat them)."""
    seen: dict[tuple[str, str], SubscriptionIndex] = {}
    for index, item in verified.accepted:
        if item.lifecycle_event:
            seen.setdefault((index.subscription_id, item.lifecycle_event), index)
    return [(index, event) for (_sid, event), index in seen.items()]


def lifecycle_work(verified: Verified) -> list[ExchangeChange | SubscriptionLifecycle]:
    """The queue messages for the accepted lifecycle events: `missed` → a delta round of the mailbox
    (the delta token holds what the notifications missed); the others → a `SubscriptionLifecycle`."""
    work: list[ExchangeChange | SubscriptionLifecycle] = []
    for index, event in lifecycle_events(verified):
        if event == "missed":
            work.append(ExchangeChange(user_id=index.user_id, reason="lifecycle"))
        elif event in LIFECYCLE_EVENTS:
            work.append(SubscriptionLifecycle(index.subscription_id, index.resource_no, index.user_id, event))
    return work
