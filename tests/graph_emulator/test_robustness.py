"""Malformed input never crashes the emulator: every bad request gets a Graph-shaped 4xx."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import MAILBOX, WINDOW, Graph, event_body

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=8))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                      max_leaves=6)
event_fields = st.sampled_from(["subject", "body", "start", "end", "isAllDay", "showAs", "sensitivity", "categories",
                                "recurrence", "singleValueExtendedProperties", "transactionId", "location",
                                "attendees", "importance", "organizer", "locations"])
settings_ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_graph_error_or_success(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert set(response.json()["error"]) >= {"code", "message"}


@settings_
@given(st.dictionaries(event_fields, values, max_size=5))
def test_random_event_bodies(graph: Graph, body: dict[str, Any]) -> None:
    if not graph.client.get("/v1.0/users/ann@contoso.com").is_success:
        graph.user()
    response = graph.client.post(MAILBOX + "/events", json={**event_body(), **body})
    assert_graph_error_or_success(response)
    if response.status_code == 201:
        patched = graph.client.patch(f"{MAILBOX}/events/{response.json()['id']}", json=body)
        assert_graph_error_or_success(patched)


@settings_
@given(st.text(max_size=40), st.sampled_from(["$filter", "$select", "$orderby", "$top", "$expand", "$skip"]))
def test_random_query_options(graph: Graph, text: str, option: str) -> None:
    if not graph.client.get("/v1.0/users/ann@contoso.com").is_success:
        graph.user()
    for path in ("/events", "/calendarView"):
        assert_graph_error_or_success(graph.client.get(MAILBOX + path, params={**WINDOW, option: text}))


@settings_
@given(values)
def test_random_batch_and_subscription_bodies(graph: Graph, body: Any) -> None:
    for path in ("/v1.0/$batch", "/v1.0/subscriptions", "/v1.0/users"):
        assert_graph_error_or_success(graph.client.post(path, content=json.dumps(body)))
    wrapped = {"requests": [{"id": "1", "method": "POST", "url": "/users/x/events", "body": body,
                             "headers": {"Content-Type": "application/json"}}]}
    assert_graph_error_or_success(graph.client.post("/v1.0/$batch", json=wrapped))
