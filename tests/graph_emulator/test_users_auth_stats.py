"""Auth, users, Graph-shaped errors, stats and reset."""

from __future__ import annotations

import httpx

from .conftest import MAILBOX, Graph, event_body


def test_missing_or_malformed_token_is_401(graph: Graph) -> None:
    graph.user()
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"},
                    {"Authorization": "Bearer wrong-token"}):
        response = httpx.get(graph.url + MAILBOX + "/events", headers=headers)
        assert response.status_code == 401, headers
        error = response.json()["error"]
        assert error["code"] == "InvalidAuthenticationToken"
        assert error["innerError"]["request-id"] == response.headers["request-id"]


def test_token_none_accepts_any_bearer(graph_factory: object) -> None:
    graph = graph_factory(token=None)  # type: ignore[operator]
    graph.user()
    assert httpx.get(graph.url + MAILBOX + "/events", headers={"Authorization": "Bearer anything"}).status_code == 200
    assert httpx.get(graph.url + MAILBOX + "/events").status_code == 401


def test_create_and_get_user_by_id_and_upn(graph: Graph) -> None:
    created = graph.client.post("/v1.0/users", json={"displayName": "Bob", "userPrincipalName": "Bob@Contoso.com",
                                                      "mail": "bob@contoso.com"})
    assert created.status_code == 201
    user = created.json()
    assert user["@odata.context"].endswith("/v1.0/$metadata#users/$entity")
    by_id = graph.client.get(f"/v1.0/users/{user['id']}").json()
    by_upn = graph.client.get("/v1.0/users/bob@CONTOSO.com").json()
    assert by_id["id"] == by_upn["id"] == user["id"]
    assert by_upn["userPrincipalName"] == "Bob@Contoso.com"
    given = graph.client.post("/v1.0/users", json={"id": "11111111-2222-3333-4444-555555555555",
                                                    "displayName": "C", "userPrincipalName": "c@contoso.com"})
    assert given.json()["id"] == "11111111-2222-3333-4444-555555555555"


def test_unknown_user_is_404_and_duplicate_upn_400(graph: Graph) -> None:
    missing = graph.client.get("/v1.0/users/nobody@contoso.com")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "Request_ResourceNotFound"
    graph.user()
    again = graph.client.post("/v1.0/users", json={"displayName": "A", "userPrincipalName": "ANN@contoso.com"})
    assert again.status_code == 400


def test_list_users_filter_select_and_paging(graph: Graph) -> None:
    for i in range(3):
        graph.user(f"u{i}@contoso.com", f"User {i}")
    found = graph.client.get("/v1.0/users", params={"$filter": "mail eq 'U1@contoso.com'"}).json()["value"]
    assert [u["userPrincipalName"] for u in found] == ["u1@contoso.com"]
    by_upn = graph.client.get("/v1.0/users", params={"$filter": "userPrincipalName eq 'u2@contoso.com'",
                                                      "$select": "id,mail"}).json()["value"]
    assert len(by_upn) == 1 and set(by_upn[0]) == {"id", "mail"}
    page = graph.client.get("/v1.0/users", params={"$top": "2"}).json()
    assert len(page["value"]) == 2
    rest = graph.client.get(page["@odata.nextLink"]).json()
    assert len(rest["value"]) == 1 and "@odata.nextLink" not in rest
    bad = graph.client.get("/v1.0/users", params={"$filter": "mail eq"})
    assert bad.status_code == 400 and "error" in bad.json()


def test_unknown_path_and_bad_json_are_graph_errors(graph: Graph) -> None:
    graph.user()
    unknown = graph.client.get("/v1.0/users/ann@contoso.com/nothing")
    assert unknown.status_code == 400 and unknown.json()["error"]["code"]
    malformed = graph.client.post(MAILBOX + "/events", content=b"{not json", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "RequestBodyRead"
    not_object = graph.client.post(MAILBOX + "/events", json=[1, 2])
    assert not_object.status_code == 400


def test_stats_count_route_templates_and_reset(graph: Graph) -> None:
    graph.user()
    created = graph.client.post(MAILBOX + "/events", json=event_body()).json()
    graph.client.post(MAILBOX + "/events", json=event_body())
    graph.client.patch(f"{MAILBOX}/events/{created['id']}", json={"subject": "x"})
    graph.client.get(MAILBOX + "/calendarView/delta", params={"startDateTime": "2026-01-01", "endDateTime": "2026-02-01"})
    stats = graph.stats()
    assert stats["requests"]["POST /v1.0/users/{id}/events"] == 2
    assert stats["requests"]["PATCH /v1.0/users/{id}/events/{id}"] == 1
    assert stats["requests"]["GET /v1.0/users/{id}/calendarView/delta"] == 1
    assert "POST /_emulator/seed" not in str(stats["requests"])  # seeding is not counted
    assert stats["roundTrips"] == 4
    assert graph.client.post("/_emulator/stats/reset").status_code == 200
    assert graph.stats()["requests"] == {}
    # counters only: the event is still there
    assert graph.client.get(f"{MAILBOX}/events/{created['id']}").status_code == 200
    graph.client.post("/_emulator/reset")
    assert graph.client.get(f"{MAILBOX}/events/{created['id']}").status_code == 404  # the user is gone too
