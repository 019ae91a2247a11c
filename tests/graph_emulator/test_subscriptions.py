"""Subscriptions: validation handshake, expiry rules, duplicates, CRUD."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from .conftest import Graph, Receiver, subscription_body


def expiry_in(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str) -> datetime:
    return datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


def test_create_validates_both_urls_and_returns_full_subscription(graph: Graph, receiver: Receiver) -> None:
    graph.user()
    body = subscription_body(receiver, "/ok?tenant=t1&x=a%20b", lifecycleNotificationUrl=receiver.url("/ok"))
    response = graph.client.post("/v1.0/subscriptions", json=body)
    assert response.status_code == 201, response.text
    sub = response.json()
    for name in ("@odata.context", "id", "resource", "applicationId", "changeType", "clientState", "notificationUrl",
                 "lifecycleNotificationUrl", "expirationDateTime", "creatorId", "latestSupportedTlsVersion",
                 "notificationContentType"):
        assert name in sub, name
    assert sub["resource"] == "users/ann@contoso.com/events"
    assert sub["notificationUrl"] == body["notificationUrl"] and sub["latestSupportedTlsVersion"] == "v1_2"
    validations = receiver.validations()
    assert len(validations) == 2
    first = validations[0]
    assert first.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert first.raw_query.startswith("tenant=t1&x=a%20b&validationToken=")  # the endpoint's own query is kept
    raw_token = first.raw_query.split("validationToken=")[1]
    assert raw_token != unquote(raw_token)  # the token needs URL-encoding (spaces, colons)


def test_wrong_encoded_json_or_slow_handshake_fails(graph: Graph, receiver: Receiver) -> None:
    graph.user()
    for path in ("/wrong", "/encoded", "/json", "/slow"):
        response = graph.client.post("/v1.0/subscriptions", json=subscription_body(receiver, path))
        assert response.status_code == 400, path
        assert response.json()["error"]["code"] == "ValidationError"
        assert "Subscription validation request failed" in response.json()["error"]["message"]
    bad_lifecycle = subscription_body(receiver, "/ok", lifecycleNotificationUrl=receiver.url("/wrong"))
    assert graph.client.post("/v1.0/subscriptions", json=bad_lifecycle).status_code == 400
    unreachable = subscription_body(receiver)
    unreachable["notificationUrl"] = "http://127.0.0.1:9/nothing"
    assert graph.client.post("/v1.0/subscriptions", json=unreachable).status_code == 400
    assert graph.client.get("/v1.0/subscriptions").json()["value"] == []


def test_expiration_raised_to_45_minutes_and_maximum_rejected(graph: Graph, receiver: Receiver) -> None:
    graph.user()
    short = graph.client.post("/v1.0/subscriptions", json=subscription_body(receiver, expirationDateTime=expiry_in(5)))
    assert short.status_code == 201
    assert parse_utc(short.json()["expirationDateTime"]) >= datetime.now(UTC) + timedelta(minutes=44)
    too_long = subscription_body(receiver, "/ok?second", expirationDateTime=expiry_in(10_080 + 60))
    response = graph.client.post("/v1.0/subscriptions", json=too_long)
    assert response.status_code == 400


def test_clamp_expiration_when_configured(graph_factory: Any, receiver: Receiver) -> None:
    graph: Graph = graph_factory(clamp_expiration=True, max_subscription_minutes=4230)
    graph.user()
    response = graph.client.post("/v1.0/subscriptions", json=subscription_body(receiver, expirationDateTime=expiry_in(9000)))
    assert response.status_code == 201
    assert parse_utc(response.json()["expirationDateTime"]) <= datetime.now(UTC) + timedelta(minutes=4231)


def test_invalid_bodies_are_400(graph: Graph, receiver: Receiver) -> None:
    graph.user()
    for change in ({"clientState": "x" * 129}, {"changeType": "created,moved"}, {"changeType": ""},
                   {"resource": "users/ann@contoso.com/messages"}, {"latestSupportedTlsVersion": "v9"},
                   {"notificationUrl": "not-a-url"}, {"unknownField": 1}, {"expirationDateTime": None},
                   {"resource": "me/events"}):
        response = graph.client.post("/v1.0/subscriptions", json={**subscription_body(receiver), **change})
        assert response.status_code == 400, change
        assert "error" in response.json()
    assert graph.client.post("/v1.0/subscriptions", json=subscription_body(receiver, clientState="x" * 128)).status_code == 201
    ghost = subscription_body(receiver, "/ok?ghost", resource="users/ghost@contoso.com/events")
    assert graph.client.post("/v1.0/subscriptions", json=ghost).status_code == 404


def test_resource_forms(graph_factory: Any, receiver: Receiver) -> None:
    graph: Graph = graph_factory(me_user="ann@contoso.com")
    user_id = graph.user()
    for i, resource in enumerate((f"users/{user_id}/events", "/users/ann@contoso.com/events", "me/events",
                                  "Users/ANN@contoso.com/Events")):
        body = subscription_body(receiver, f"/ok?n={i}", resource=resource)
        response = graph.client.post("/v1.0/subscriptions", json=body)
        assert response.status_code == 201, (resource, response.text)
        # Every form names the same resource: the next one would be a 409 duplicate.
        assert graph.client.delete(f"/v1.0/subscriptions/{response.json()['id']}").status_code == 204


def test_duplicate_is_409(graph: Graph, receiver: Receiver) -> None:
    graph.user()
    assert graph.client.post("/v1.0/subscriptions", json=subscription_body(receiver)).status_code == 201
    duplicate = graph.client.post("/v1.0/subscriptions", json=subscription_body(receiver))
    assert duplicate.status_code == 409
    other_types = graph.client.post("/v1.0/subscriptions", json=subscription_body(receiver, changeType="deleted"))
    assert other_types.status_code == 201


def test_get_list_patch_delete(graph: Graph, receiver: Receiver) -> None:
    graph.user()
    sub = graph.client.post("/v1.0/subscriptions", json=subscription_body(receiver)).json()
    url = f"/v1.0/subscriptions/{sub['id']}"
    assert graph.client.get(url).json()["id"] == sub["id"]
    assert [s["id"] for s in graph.client.get("/v1.0/subscriptions").json()["value"]] == [sub["id"]]
    renewed = graph.client.patch(url, json={"expirationDateTime": expiry_in(3000)})
    assert renewed.status_code == 200
    assert parse_utc(renewed.json()["expirationDateTime"]) > parse_utc(sub["expirationDateTime"])
    assert graph.client.patch(url, json={"lifecycleNotificationUrl": receiver.url("/ok")}).status_code == 400
    assert graph.client.patch(url, json={"clientState": "new"}).status_code == 400
    assert graph.client.delete(url).status_code == 204
    assert graph.client.get(url).status_code == 404
    assert graph.client.delete(url).status_code == 404
    assert graph.client.patch(url, json={"expirationDateTime": expiry_in(100)}).status_code == 404


def test_expired_subscription_is_gone(graph: Graph, receiver: Receiver) -> None:
    graph.user()
    sub = graph.client.post("/v1.0/subscriptions", json=subscription_body(receiver)).json()
    assert graph.client.post(f"/_emulator/subscriptions/{sub['id']}/expire").status_code == 200
    assert graph.client.get(f"/v1.0/subscriptions/{sub['id']}").status_code == 404
    listed = graph.client.get("/_emulator/subscriptions").json()["value"]
    assert listed[0]["expired"] is True
    # the clock moving past the expiry has the same effect
    other = graph.client.post("/v1.0/subscriptions", json=subscription_body(receiver, "/ok?2")).json()
    graph.client.post("/_emulator/clock", json={"advanceSeconds": 3 * 24 * 3600})
    assert graph.client.get(f"/v1.0/subscriptions/{other['id']}").status_code == 404
