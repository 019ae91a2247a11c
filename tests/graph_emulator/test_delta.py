"""calendarView delta: paging, change rounds, tombstones, token validation and expiry."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import MAILBOX, WINDOW, Graph, event_body

DELTA = MAILBOX + "/calendarView/delta"


def full_round(graph: Graph, url: str = DELTA, params: dict[str, str] | None = None,
               headers: dict[str, str] | None = None) -> tuple[list[dict[str, Any]], str, int]:
    """Follow nextLinks to the deltaLink: (items, deltaLink, pages)."""
    response = graph.client.get(url, params=params, headers=headers)
    assert response.status_code == 200, response.text
    items, pages = [], 1
    body = response.json()
    items += body["value"]
    while "@odata.nextLink" in body:
        assert "$skiptoken=" in body["@odata.nextLink"] and "@odata.deltaLink" not in body
        body = graph.client.get(body["@odata.nextLink"], headers=headers).json()
        items += body["value"]
        pages += 1
    assert "$deltatoken=" in body["@odata.deltaLink"]
    return items, body["@odata.deltaLink"], pages


def test_initial_round_pages_then_changes_only(graph: Graph) -> None:
    graph.user()
    events = [graph.client.post(MAILBOX + "/events", json=event_body(f"e{i}")).json() for i in range(5)]
    items, delta_link, pages = full_round(graph, params=WINDOW, headers={"Prefer": "odata.maxpagesize=2"})
    assert pages == 3
    assert sorted(i["subject"] for i in items) == [f"e{i}" for i in range(5)]
    assert graph.client.get(delta_link).json()["value"] == []  # nothing changed
    graph.client.patch(f"{MAILBOX}/events/{events[0]['id']}", json={"subject": "changed"})
    graph.client.delete(f"{MAILBOX}/events/{events[1]['id']}")
    created = graph.client.post(MAILBOX + "/events", json=event_body("new")).json()
    changes, next_link, _ = full_round(graph, delta_link)
    by_id = {c["id"]: c for c in changes}
    assert by_id[events[0]["id"]]["subject"] == "changed"
    assert by_id[created["id"]]["subject"] == "new"
    assert by_id[events[1]["id"]] == {"@odata.type": "#microsoft.graph.event", "id": events[1]["id"],
                                      "@removed": {"reason": "deleted"}}
    assert len(changes) == 3
    assert graph.client.get(next_link).json()["value"] == []


def test_default_page_size_is_ten(graph: Graph) -> None:
    graph.user()
    for i in range(11):
        graph.client.post(MAILBOX + "/events", json=event_body(f"e{i}"))
    first = graph.client.get(DELTA, params=WINDOW).json()
    assert len(first["value"]) == 10 and "@odata.nextLink" in first


def test_window_is_fixed_by_first_request(graph: Graph) -> None:
    graph.user()
    _, delta_link, _ = full_round(graph, params=WINDOW)
    graph.client.post(MAILBOX + "/events", json=event_body("outside", "2026-05-01T09:00:00", "2026-05-01T10:00:00"))
    moving = graph.client.post(MAILBOX + "/events", json=event_body("inside")).json()
    changes, delta_link, _ = full_round(graph, delta_link)
    assert [c["subject"] for c in changes] == ["inside"]
    graph.client.patch(f"{MAILBOX}/events/{moving['id']}", json={
        "start": {"dateTime": "2026-06-01T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-06-01T10:00:00", "timeZone": "UTC"}})
    changes, _, _ = full_round(graph, delta_link)
    assert changes == [{"@odata.type": "#microsoft.graph.event", "id": moving["id"], "@removed": {"reason": "deleted"}}]


def test_occurrences_are_items_and_calendar_path_works(graph: Graph) -> None:
    graph.user()
    recurrence = {"pattern": {"type": "daily", "interval": 1},
                  "range": {"type": "numbered", "startDate": "2026-01-05", "numberOfOccurrences": 3}}
    graph.client.post(MAILBOX + "/events", json=event_body("Daily", recurrence=recurrence))
    items, delta_link, _ = full_round(graph, MAILBOX + "/calendar/calendarView/delta", params=WINDOW)
    # The series master is listed with its occurrences (see test_series_semantics.py for the stubs).
    assert [i["type"] for i in items] == ["occurrence"] * 3 + ["seriesMaster"]
    graph.client.patch(f"{MAILBOX}/events/{items[1]['id']}", json={"subject": "one-off"})
    changes, _, _ = full_round(graph, delta_link)
    assert [(c["id"], c["type"]) for c in changes] == [(items[1]["id"], "exception")]


def test_immutable_ids_in_delta(graph: Graph) -> None:
    graph.user()
    created = graph.client.post(MAILBOX + "/events", json=event_body(),
                                headers={"Prefer": 'IdType="ImmutableId"'}).json()
    prefer = {"Prefer": 'IdType="ImmutableId"'}
    items, delta_link, _ = full_round(graph, params=WINDOW, headers=prefer)
    assert [i["id"] for i in items] == [created["id"]]
    graph.client.delete(f"{MAILBOX}/events/{created['id']}")
    changes, _, _ = full_round(graph, delta_link, headers=prefer)
    assert changes[0]["id"] == created["id"] and "@removed" in changes[0]


@pytest.mark.parametrize("option", ["$select", "$filter", "$orderby", "$expand", "$search"])
def test_query_options_are_rejected(graph: Graph, option: str) -> None:
    graph.user()
    response = graph.client.get(DELTA, params={**WINDOW, option: "subject"})
    assert response.status_code == 400


def test_window_is_required(graph: Graph) -> None:
    graph.user()
    assert graph.client.get(DELTA).status_code == 400
    assert graph.client.get(DELTA, params={"startDateTime": WINDOW["startDateTime"]}).status_code == 400


def _assert_gone(graph: Graph, url: str, window_known: bool = True) -> None:
    response = graph.client.get(url)
    assert response.status_code == 410, response.text
    assert response.json()["error"]["code"] == "syncStateNotFound"
    location = response.headers["Location"]
    assert location.startswith(url.split("?")[0])
    if window_known:  # an expired token still names its window: the Location restarts the same sync
        assert "/calendarView/delta?startDateTime=" in location
        assert graph.client.get(location).status_code == 200


def test_tampered_or_foreign_tokens_are_410(graph: Graph) -> None:
    graph.user()
    graph.user("bob@contoso.com", "Bob")
    _, delta_link, _ = full_round(graph, params=WINDOW)
    token = delta_link.split("$deltatoken=")[1]
    payload, mac = token.split(".")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    _assert_gone(graph, delta_link.replace(token, f"{flipped}.{mac}"), window_known=False)
    _assert_gone(graph, delta_link.replace(token, f"{payload}.{mac[:-1]}{'x' if mac[-1] != 'x' else 'y'}"))
    response = graph.client.get(DELTA, params={"$deltatoken": "garbage"})
    assert response.status_code == 410
    bob = delta_link.replace("ann@contoso.com", "bob@contoso.com")
    assert graph.client.get(bob).status_code == 410


def test_control_plane_expires_tokens(graph: Graph) -> None:
    graph.user()
    graph.user("bob@contoso.com", "Bob")
    _, ann_link, _ = full_round(graph, params=WINDOW)
    _, bob_link, _ = full_round(graph, "/v1.0/users/bob@contoso.com/calendarView/delta", params=WINDOW)
    graph.client.post("/_emulator/delta/expire", json={"user": "bob@contoso.com"})
    assert graph.client.get(ann_link).status_code == 200
    _assert_gone(graph, bob_link)
    graph.client.post("/_emulator/delta/expire")
    _assert_gone(graph, ann_link)


def test_token_ttl(graph_factory: Any) -> None:
    graph: Graph = graph_factory(delta_token_ttl_seconds=60)
    graph.user()
    _, delta_link, _ = full_round(graph, params=WINDOW)
    assert graph.client.get(delta_link).status_code == 200
    graph.client.post("/_emulator/clock", json={"advanceSeconds": 120})
    _assert_gone(graph, delta_link)


def test_moved_item_changes_regular_id_in_delta(graph: Graph) -> None:
    graph.user()
    created = graph.client.post(MAILBOX + "/events", json=event_body()).json()
    _, regular_link, _ = full_round(graph, params=WINDOW)
    _, immutable_link, _ = full_round(graph, params=WINDOW, headers={"Prefer": 'IdType="ImmutableId"'})
    moved = graph.client.post(f"/_emulator/events/{created['id']}/move").json()
    changes, _, _ = full_round(graph, regular_link)
    assert [(c["id"], "@removed" in c) for c in changes] == [(created["id"], True), (moved["id"], False)]
    assert full_round(graph, immutable_link, headers={"Prefer": 'IdType="ImmutableId"'})[0] == []


def test_function_call_form_delta_parens_is_the_same_route(graph: Graph) -> None:
    # msgraph-sdk's request builder writes `calendarView/delta()`; Graph accepts both forms.
    graph.user()
    graph.client.post(MAILBOX + "/events", json=event_body("one"))
    items, _, _ = full_round(graph, url=DELTA + "()", params=WINDOW)
    assert [i["subject"] for i in items] == ["one"]
    stats = graph.client.get("/_emulator/stats").json()["requests"]
    assert stats["GET /v1.0/users/{id}/calendarView/delta"] >= 1
