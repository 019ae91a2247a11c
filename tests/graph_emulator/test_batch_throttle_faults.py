"""JSON batching, throttling per mailbox, the subscription rate limit and injected faults."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import httpx

from .conftest import MAILBOX, TOKEN, Graph, event_body

JSON = {"Content-Type": "application/json"}


def batch(graph: Graph, requests: list[dict[str, Any]]) -> httpx.Response:
    return graph.client.post("/v1.0/$batch", json={"requests": requests})


def by_id(response: httpx.Response) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, response.text
    return {r["id"]: r for r in response.json()["responses"]}


def test_batch_runs_requests_and_counts_each(graph: Graph) -> None:
    graph.user()
    results = by_id(batch(graph, [
        {"id": "1", "method": "POST", "url": "/users/ann@contoso.com/events", "headers": JSON, "body": event_body()},
        {"id": "2", "method": "GET", "url": "users/ann@contoso.com/events", "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": "users/ann@contoso.com/events/nope"},
        {"id": "4", "method": "GET", "url": "users/ann@contoso.com/events/nope2", "dependsOn": ["3"]},
        {"id": "5", "method": "GET", "url": "/users/ann@contoso.com/calendarView?startDateTime=2026-01-01T00:00:00Z"
                                           "&endDateTime=2026-02-01T00:00:00Z",
         "headers": {"Prefer": 'outlook.timezone="Pacific Standard Time"'}, "dependsOn": ["1"]},
    ]))
    assert results["1"]["status"] == 201 and results["1"]["body"]["subject"] == "Meeting"
    assert len(results["2"]["body"]["value"]) == 1
    assert results["3"]["status"] == 404 and results["3"]["body"]["error"]["code"] == "ErrorItemNotFound"
    assert results["4"]["status"] == 424
    assert results["5"]["body"]["value"][0]["start"]["timeZone"] == "Pacific Standard Time"
    assert results["5"]["headers"]["Preference-Applied"] == 'outlook.timezone="Pacific Standard Time"'
    requests = graph.stats()["requests"]
    assert requests["POST /v1.0/$batch"] == 1
    assert requests["POST /v1.0/users/{id}/events"] == 1
    assert requests["GET /v1.0/users/{id}/events/{id}"] == 1  # the 424 one never ran
    assert requests["GET /v1.0/users/{id}/calendarView"] == 1
    assert graph.stats()["roundTrips"] == 1


def test_invalid_batches_are_400(graph: Graph) -> None:
    graph.user()
    get = {"method": "GET", "url": "/users/ann@contoso.com/events"}
    for requests in (
        [{"id": str(i), **get} for i in range(21)],
        [{"id": "1", **get}, {"id": "1", **get}],
        [{"id": "1", **get, "dependsOn": ["9"]}],
        [{"id": "1", **get, "dependsOn": ["2"]}, {"id": "2", **get, "dependsOn": ["1"]}],
        [{"id": "1", "method": "POST", "url": "/users/ann@contoso.com/events", "body": event_body()}],
        [{"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users"}],
        [],
    ):
        response = batch(graph, requests)
        assert response.status_code == 400, requests
        assert "error" in response.json()
    assert batch(graph, [{"id": str(i), **get} for i in range(20)]).status_code == 200
    nested = by_id(batch(graph, [{"id": "1", "method": "POST", "url": "/$batch", "headers": JSON,
                                  "body": {"requests": []}}]))
    assert nested["1"]["status"] == 400


def test_batch_needs_outer_auth(graph: Graph) -> None:
    response = httpx.post(graph.url + "/v1.0/$batch", json={"requests": []})
    assert response.status_code == 401


def test_fault_rule_by_route_user_and_count(graph: Graph) -> None:
    graph.user()
    graph.user("bob@contoso.com", "Bob")
    rule = graph.client.post("/_emulator/faults", json={
        "method": "POST", "route": "/v1.0/users/{id}/events", "user": "ann@contoso.com", "status": 503,
        "retryAfter": 2.5, "count": 2})
    assert rule.status_code == 201 and "id" in rule.json()
    first = graph.client.post(MAILBOX + "/events", json=event_body())
    assert first.status_code == 503 and first.headers["Retry-After"] == "2.5"
    assert first.json()["error"]["code"]
    assert graph.client.post("/v1.0/users/bob@contoso.com/events", json=event_body()).status_code == 201
    assert graph.client.get(MAILBOX + "/events").status_code == 200
    assert graph.client.post(MAILBOX + "/events", json=event_body()).status_code == 503
    assert graph.client.post(MAILBOX + "/events", json=event_body()).status_code == 201  # count used up
    listed = graph.client.get("/_emulator/faults").json()["value"]
    assert listed[0]["fired"] == 2
    graph.client.post("/_emulator/faults", json={"status": 500, "code": "UnknownError"})
    assert graph.client.get(MAILBOX + "/events").json()["error"]["code"] == "UnknownError"
    graph.client.delete("/_emulator/faults")
    assert graph.client.get(MAILBOX + "/events").status_code == 200


def test_faults_apply_inside_batch(graph: Graph) -> None:
    graph.user()
    graph.client.post("/_emulator/faults", json={"method": "PATCH", "route": "/users/{id}/events/{id}",
                                                 "status": 429, "retryAfter": 3, "count": 1})
    created = graph.client.post(MAILBOX + "/events", json=event_body()).json()
    patch = {"method": "PATCH", "url": f"/users/ann@contoso.com/events/{created['id']}", "headers": JSON,
             "body": {"subject": "x"}}
    results = by_id(batch(graph, [{"id": "a", **patch}, {"id": "b", **patch, "dependsOn": ["a"]}]))
    assert results["a"]["status"] == 429 and results["a"]["headers"]["Retry-After"] == "3"
    assert results["b"]["status"] == 424
    assert graph.stats()["throttled"] == 1


def _concurrent_gets(graph: Graph, count: int) -> list[int]:
    def get(_: int) -> int:
        return httpx.get(graph.url + MAILBOX + "/events", headers={"Authorization": f"Bearer {TOKEN}"},
                         timeout=15).status_code

    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return list(pool.map(get, range(count)))


def test_concurrency_limit_per_mailbox(graph: Graph) -> None:
    graph.user()
    graph.user("bob@contoso.com", "Bob")
    # Every request to ann's mailbox holds its slot for a while, so six at once exceed four.
    graph.client.post("/_emulator/faults", json={"user": "ann@contoso.com", "latencyMs": 1500})
    statuses = _concurrent_gets(graph, 6)
    assert statuses.count(200) == 4 and statuses.count(429) == 2
    assert graph.client.get("/v1.0/users/bob@contoso.com/events").status_code == 200  # other mailbox unaffected
    assert graph.stats()["throttled"] == 2


def test_batch_runs_at_most_four_per_mailbox(graph: Graph) -> None:
    graph.user()
    graph.client.post("/_emulator/faults", json={"user": "ann@contoso.com", "latencyMs": 100})
    results = by_id(batch(graph, [{"id": str(i), "method": "GET", "url": "/users/ann@contoso.com/events"}
                                  for i in range(8)]))
    assert {r["status"] for r in results.values()} == {200}  # the batch never trips the concurrency limit


def test_request_budget_and_retry_after(graph: Graph) -> None:
    graph.user()
    assert graph.client.post("/_emulator/throttle", json={"budget": 3, "windowSeconds": 60}).status_code == 200
    statuses = [graph.client.get(MAILBOX + "/events").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    throttled = graph.client.get(MAILBOX + "/events")
    assert throttled.status_code == 429
    assert throttled.json()["error"] == {**throttled.json()["error"], "code": "ApplicationThrottled",
                                         "message": "Application is over its MailboxRequests limit."}
    assert 0 < float(throttled.headers["Retry-After"]) <= 60
    assert graph.client.get("/v1.0/users/ann@contoso.com").status_code == 200  # no mailbox: not throttled
    inner = by_id(batch(graph, [{"id": "1", "method": "GET", "url": "/users/ann@contoso.com/events"}]))
    assert inner["1"]["status"] == 429 and float(inner["1"]["headers"]["Retry-After"]) > 0
    graph.client.post("/_emulator/clock", json={"advanceSeconds": 61})
    assert graph.client.get(MAILBOX + "/events").status_code == 200  # the window moved on


def test_subscription_rate_limit(graph: Graph) -> None:
    graph.client.post("/_emulator/throttle", json={"subscriptionLimit": 2, "subscriptionWindowSeconds": 20})
    statuses = [graph.client.delete("/v1.0/subscriptions/nope").status_code for _ in range(3)]
    assert statuses == [404, 404, 429]
    assert graph.client.get("/v1.0/subscriptions").status_code == 200  # reads are not limited
