"""A flood of forged Graph notifications against the real webhook function, on Azurite: one 1 MiB POST of
made-up subscription ids costs a bounded number of Table reads and one activity row, the same flood again
no read for the ids already read, and a genuine notification in it is still enqueued.

The webhook is called as the Functions host calls it; the subscriptions table is the real one, with a
counter around its repository's point reads."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest

from connector.messages import ExchangeChange
from connector.services import Services, reset_services, services
from connector.stores.registry import SubscriptionIndex, client_state_hash
from connector.stores.storage import EXCHANGE_CHANGES_QUEUE
from connector.web.graph_intake import MAX_BODY_BYTES, MAX_READS_PER_POST
from devtools.local_settings import local_values
from functions.graph_webhooks import graph_notifications

STATE = "the-real-client-state"


@pytest.fixture
def app(storage_connection_string: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    for name, value in local_values(storage=storage_connection_string).items():
        monkeypatch.setenv(name, value)
    reset_services()
    try:
        app = services()
        app.work_queues.ensure()
        app.storage.queue(EXCHANGE_CHANGES_QUEUE).clear_messages()
        yield app
    finally:
        reset_services()


@pytest.fixture
def reads(app: Services, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The subscription ids read from the subscriptions table, in order."""
    table = app.repositories.subscriptions
    seen: list[str] = []
    real_get = table.get

    def counted(partition_key: str, row_key: str) -> Any:
        if partition_key == "subscription":
            seen.append(row_key)
        return real_get(partition_key, row_key)

    monkeypatch.setattr(table, "get", counted)
    return seen


def _genuine(app: Services) -> tuple[str, str]:
    subscription_id, user_id = str(uuid.uuid4()), f"user-{uuid.uuid4().hex[:8]}"
    app.registry.remember_subscription(SubscriptionIndex(subscription_id, "ALICE", user_id, client_state_hash(STATE)))
    return subscription_id, user_id


def _flood(genuine: str, at: int) -> tuple[bytes, list[str]]:
    """As many made-up ids as 1 MiB holds, the genuine item at `at`."""
    forged = [str(uuid.uuid4()) for _ in range(12_500)]
    items: list[dict[str, Any]] = [{"subscriptionId": s, "clientState": "guess"} for s in forged]
    items.insert(at, {"subscriptionId": genuine, "clientState": STATE, "changeType": "updated"})
    body = json.dumps({"value": items}, separators=(",", ":")).encode()
    assert len(body) <= MAX_BODY_BYTES
    return body, forged


def _post(body: bytes) -> func.HttpResponse:
    request = func.HttpRequest("POST", "http://127.0.0.1/api/graph/notifications", body=body,
                               headers={"Content-Type": "application/json"})
    return graph_notifications(request)


def _security_rows(app: Services) -> list[Any]:
    return [e for e in app.activity.recent() if e.action == "notification" and e.outcome == "rejected"]


def _enqueued(app: Services) -> list[str]:
    queue = app.storage.queue(EXCHANGE_CHANGES_QUEUE)
    users = [ExchangeChange.from_json(m.content).user_id for m in queue.receive_messages(max_messages=32)]
    queue.clear_messages()
    return users


def test_a_flood_costs_bounded_reads_and_one_row_and_its_genuine_item_is_enqueued(
        app: Services, reads: list[str]) -> None:
    genuine, user = _genuine(app)
    body, forged = _flood(genuine, at=0)  # the subscription not remembered yet: first in the POST
    rows = len(_security_rows(app))

    first = _post(body)
    assert len(reads) == MAX_READS_PER_POST and reads[0] == genuine
    assert first.status_code == 503  # the items beyond the budget went unread: a real sender posts again
    assert _enqueued(app) == [user]
    [row] = _security_rows(app)[: len(_security_rows(app)) - rows]
    assert row.detail.startswith(f"{len(forged)} item(s)") and "unread" in row.detail
    assert not any(s in row.detail for s in forged[:MAX_READS_PER_POST])  # counts, no content

    read_before = set(reads)
    reads.clear()
    body_again, _ = _flood(genuine, at=6_000)  # other made-up ids, the genuine item remembered now
    _post(body_again)
    assert len(reads) == MAX_READS_PER_POST and genuine not in reads
    assert _enqueued(app) == [user]  # in the middle of 12,500 forged items, still enqueued

    reads.clear()
    assert _post(body).status_code == 503
    assert not set(reads) & read_before  # the same flood again: no read of an id read before
    assert len(reads) <= MAX_READS_PER_POST
    assert len(_security_rows(app)) == rows + 3  # one row per POST


def test_a_genuine_post_is_answered_202_and_costs_one_read(app: Services, reads: list[str]) -> None:
    genuine, user = _genuine(app)
    body = json.dumps({"value": [{"subscriptionId": genuine, "clientState": STATE, "changeType": "created"}] * 3})
    for _ in range(3):
        assert _post(body.encode()).status_code == 202
    assert reads == [genuine] and _enqueued(app) == [user] * 3
