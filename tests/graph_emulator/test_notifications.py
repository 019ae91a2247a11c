"""Change and lifecycle notification delivery: shape, coalescing, retries, faults, lifecycle."""

from __future__ import annotations

from typing import Any

from .conftest import MAILBOX, WINDOW, Graph, Receiver, event_body, subscription_body, wait_for


def subscribe(graph: Graph, receiver: Receiver, path: str = "/ok", headers: dict[str, str] | None = None,
              **extra: Any) -> dict[str, Any]:
    response = graph.client.post("/v1.0/subscriptions", json=subscription_body(receiver, path, **extra),
                                 headers=headers or {})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_create_update_delete_items(graph: Graph, receiver: Receiver) -> None:
    user_id = graph.user()
    sub = subscribe(graph, receiver, "/ok?tenant=t1")
    event = graph.client.post(MAILBOX + "/events", json=event_body()).json()
    items = wait_for(lambda: len(receiver.items()) >= 2 and receiver.items())
    assert [i["changeType"] for i in items] == ["created", "updated"]
    item = items[0]
    assert set(item) == {"id", "subscriptionId", "subscriptionExpirationDateTime", "changeType", "clientState",
                         "tenantId", "resource", "resourceData"}
    assert item["subscriptionId"] == sub["id"] and item["clientState"] == "secret-state"
    assert item["resource"] == f"Users/{user_id}/Events/{event['id']}"
    assert item["resourceData"] == {"@odata.type": "#Microsoft.Graph.Event",
                                    "@odata.id": f"Users/{user_id}/Events/{event['id']}",
                                    "@odata.etag": f'W/"{event["changeKey"]}"', "id": event["id"]}
    hit = receiver.notifications()[0]
    assert hit.raw_query == "tenant=t1"  # the endpoint's query string comes back on every POST
    assert hit.headers["Content-Type"].startswith("application/json")
    graph.client.patch(f"{MAILBOX}/events/{event['id']}", json={"subject": "x"})
    graph.client.delete(f"{MAILBOX}/events/{event['id']}")
    items = wait_for(lambda: len(receiver.items()) >= 4 and receiver.items())
    assert [i["changeType"] for i in items[2:]] == ["updated", "deleted"]


def test_items_are_coalesced_into_one_post(graph: Graph, receiver: Receiver) -> None:
    graph.user()
    subscribe(graph, receiver)
    batch = {"requests": [{"id": str(i), "method": "POST", "url": "/users/ann@contoso.com/events",
                           "headers": {"Content-Type": "application/json"}, "body": event_body(f"e{i}")}
                          for i in range(3)]}
    assert graph.client.post("/v1.0/$batch", json=batch).status_code == 200
    wait_for(lambda: len(receiver.items()) >= 6)
    assert len(receiver.notifications()) == 1  # 6 items in one POST
    assert len(receiver.notifications()[0].json()["value"]) == 6


def test_change_types_filter_and_seed_is_silent(graph_factory: Any, receiver: Receiver) -> None:
    graph: Graph = graph_factory(extra_updated_on_create=False)
    graph.user()
    subscribe(graph, receiver, changeType="deleted")
    subscribe(graph, receiver, "/ok?all")
    graph.client.post("/_emulator/seed", json={"events": {"ann@contoso.com": [event_body("seeded")]}})
    event = graph.client.post(MAILBOX + "/events", json=event_body()).json()
    graph.client.delete(f"{MAILBOX}/events/{event['id']}")
    wait_for(lambda: len(receiver.items()) >= 3)
    by_query = {(h.raw_query, i["changeType"]) for h in receiver.notifications() for i in h.json()["value"]}
    assert by_query == {("", "deleted"), ("all", "created"), ("all", "deleted")}
    assert graph.stats()["notifications"]["delivered"] == 3


def allow_duplicate_subscriptions(graph: Graph) -> None:
    """These tests need several subscriptions on one mailbox (Graph refuses that by default: 409)."""
    assert graph.client.post("/_emulator/config", json={"unique_subscriptions": False}).status_code == 200


def test_immutable_ids_follow_the_subscription(graph: Graph, receiver: Receiver) -> None:
    allow_duplicate_subscriptions(graph)
    graph.user()
    subscribe(graph, receiver, headers={"Prefer": 'IdType="ImmutableId"'})
    subscribe(graph, receiver, "/ok?regular")
    created = graph.client.post(MAILBOX + "/events", json=event_body()).json()  # no Prefer on this request
    immutable = graph.client.get(f"{MAILBOX}/events/{created['id']}", headers={"Prefer": 'IdType="ImmutableId"'})
    wait_for(lambda: len(receiver.items()) >= 4)
    ids = {(h.raw_query, i["resourceData"]["id"]) for h in receiver.notifications() for i in h.json()["value"]}
    assert ids == {("", immutable.json()["id"]), ("regular", created["id"])}


def test_failed_delivery_is_retried(graph: Graph, receiver: Receiver) -> None:
    graph.user()
    subscribe(graph, receiver, "/flaky")
    graph.client.post(MAILBOX + "/events", json=event_body())
    wait_for(lambda: len(receiver.notifications()) >= 2)
    first, second = receiver.notifications()[:2]
    assert first.body == second.body
    stats = wait_for(lambda: (s := graph.stats())["notifications"]["delivered"] >= 2 and s)
    assert stats["notifications"]["failedAttempts"] == 1
    log = graph.client.get("/_emulator/notifications").json()["value"]
    assert [entry["status"] for entry in log[:2]] == [500, 202]


def test_endpoint_down_gives_up_after_max_duration(graph_factory: Any, receiver: Receiver) -> None:
    graph: Graph = graph_factory(retry_max_duration_seconds=0.3)
    graph.user()
    subscribe(graph, receiver, "/down")
    graph.client.post(MAILBOX + "/events", json=event_body())
    stats = wait_for(lambda: (s := graph.stats())["notifications"]["abandoned"] >= 2 and s)
    assert stats["notifications"]["failedAttempts"] >= 2  # retried at least once
    assert stats["notifications"]["delivered"] == 0


def test_notification_faults_drop_duplicate_reorder(graph: Graph, receiver: Receiver) -> None:
    graph.user()
    subscribe(graph, receiver)
    graph.client.post("/_emulator/notifications/faults", json={"drop": 1})
    graph.client.post(MAILBOX + "/events", json=event_body())
    wait_for(lambda: graph.stats()["notifications"]["delivered"] >= 1)
    assert [i["changeType"] for i in receiver.items()] == ["updated"]  # "created" was dropped
    assert graph.stats()["notifications"]["dropped"] == 1

    receiver.hits.clear()
    graph.client.post("/_emulator/notifications/faults", json={"duplicate": 1, "reorder": True})
    graph.client.post(MAILBOX + "/events", json=event_body())
    wait_for(lambda: len(receiver.items()) >= 3)
    assert [i["changeType"] for i in receiver.items()] == ["updated", "created", "created"]

    receiver.hits.clear()
    graph.client.delete("/_emulator/notifications/faults")
    graph.client.post(MAILBOX + "/events", json=event_body())
    wait_for(lambda: len(receiver.items()) >= 2)
    assert [i["changeType"] for i in receiver.items()] == ["created", "updated"]


def test_delayed_delivery_still_arrives(graph: Graph, receiver: Receiver) -> None:
    graph.user()
    subscribe(graph, receiver)
    faults = graph.client.post("/_emulator/notifications/faults", json={"delayMs": 300}).json()
    assert faults["delayMs"] == 300
    graph.client.post(MAILBOX + "/events", json=event_body())
    # Until it arrives, the stats say a delivery is still to settle (what a test waiting for quiet reads).
    assert graph.client.get("/_emulator/stats").json()["delivery"]["pending"] >= 1
    wait_for(lambda: len(receiver.items()) >= 2)
    wait_for(lambda: graph.client.get("/_emulator/stats").json()["delivery"]["pending"] == 0)


def test_expired_or_deleted_subscription_delivers_nothing(graph: Graph, receiver: Receiver) -> None:
    allow_duplicate_subscriptions(graph)
    graph.user()
    expired = subscribe(graph, receiver, "/ok?expired")
    deleted = subscribe(graph, receiver, "/ok?deleted")
    subscribe(graph, receiver, "/ok?live")
    graph.client.post(f"/_emulator/subscriptions/{expired['id']}/expire")
    graph.client.delete(f"/v1.0/subscriptions/{deleted['id']}")
    graph.client.post(MAILBOX + "/events", json=event_body())
    wait_for(lambda: len(receiver.items()) >= 2)
    assert {h.raw_query for h in receiver.notifications()} == {"live"}


def test_lifecycle_events(graph: Graph, receiver: Receiver) -> None:
    graph.user()
    sub = subscribe(graph, receiver, lifecycleNotificationUrl=receiver.url("/lifecycle"))
    for event in ("reauthorizationRequired", "missed", "subscriptionRemoved"):
        response = graph.client.post(f"/_emulator/subscriptions/{sub['id']}/lifecycle", json={"event": event})
        assert response.status_code == 200
    wait_for(lambda: len(receiver.items("/lifecycle")) >= 3)
    items = receiver.items("/lifecycle")
    assert {i["lifecycleEvent"] for i in items} == {"reauthorizationRequired", "missed", "subscriptionRemoved"}
    assert set(items[0]) == {"subscriptionId", "subscriptionExpirationDateTime", "tenantId", "clientState",
                             "lifecycleEvent"}
    assert items[0]["subscriptionId"] == sub["id"] and items[0]["clientState"] == "secret-state"
    assert graph.client.get(f"/v1.0/subscriptions/{sub['id']}").status_code == 404  # removed
    assert graph.client.post(f"/_emulator/subscriptions/{sub['id']}/lifecycle", json={"event": "bogus"}).status_code == 400


def test_series_edits_notify_master_and_occurrence(graph: Graph, receiver: Receiver) -> None:
    graph.user()
    recurrence = {"pattern": {"type": "daily", "interval": 1},
                  "range": {"type": "numbered", "startDate": "2026-01-05", "numberOfOccurrences": 3}}
    master = graph.client.post(MAILBOX + "/events", json=event_body(recurrence=recurrence)).json()
    subscribe(graph, receiver)
    occurrence = graph.client.get(MAILBOX + "/calendarView", params=WINDOW).json()["value"][1]
    graph.client.patch(f"{MAILBOX}/events/{occurrence['id']}", json={"subject": "changed"})
    wait_for(lambda: len(receiver.items()) >= 2)
    assert {(i["changeType"], i["resourceData"]["id"]) for i in receiver.items()} == {
        ("updated", master["id"]), ("updated", occurrence["id"])}


def test_lifecycle_without_url_still_removes(graph: Graph, receiver: Receiver) -> None:
    graph.user()
    sub = subscribe(graph, receiver)
    response = graph.client.post(f"/_emulator/subscriptions/{sub['id']}/lifecycle",
                                 json={"event": "subscriptionRemoved"})
    assert response.json()["delivering"] is False
    assert graph.client.get(f"/v1.0/subscriptions/{sub['id']}").status_code == 404
    assert graph.client.post("/_emulator/subscriptions/nope/lifecycle", json={"event": "missed"}).status_code == 404


def test_lifecycle_delivery_is_retried(graph: Graph, receiver: Receiver) -> None:
    graph.user()
    sub = subscribe(graph, receiver, lifecycleNotificationUrl=receiver.url("/flaky"))
    graph.client.post(f"/_emulator/subscriptions/{sub['id']}/lifecycle", json={"event": "reauthorizationRequired"})
    wait_for(lambda: graph.stats()["notifications"]["lifecycleDelivered"] >= 1)
    assert len(receiver.notifications("/flaky")) == 2
