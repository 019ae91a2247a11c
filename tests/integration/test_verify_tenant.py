"""`devtools.verify_tenant` against both emulators in each variant of every uncertain behaviour: it must
report the variant the emulator was set to, say what the connector does, and leave nothing behind."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connector.config import load_settings
from devtools.graph_emulator import GraphEmulatorConfig
from devtools.graph_emulator import create_app as create_graph_app
from devtools.local_settings import local_values
from devtools.scheduler_emulator import SchedulerEmulatorConfig
from devtools.scheduler_emulator import create_app as create_scheduler_app
from devtools.serve import ServerThread
from devtools.verify_tenant import Report, render, verify

MAILBOX = "test.tech@contoso.example"


@pytest.fixture
def servers() -> Iterator[tuple[ServerThread, ServerThread]]:
    graph = ServerThread(create_graph_app(GraphEmulatorConfig())).start()
    scheduler = ServerThread(create_scheduler_app(SchedulerEmulatorConfig())).start()
    try:
        yield graph, scheduler
    finally:
        graph.stop()
        scheduler.stop()


def _run(graph: ServerThread, scheduler: ServerThread, graph_knobs: dict[str, Any],
         scheduler_knobs: dict[str, Any]) -> Report:
    logging.disable(logging.NOTSET)
    httpx.post(f"{graph.url}/_emulator/seed", json={"users": [
        {"displayName": "Test Tech", "userPrincipalName": MAILBOX, "mail": MAILBOX}]}, timeout=10).raise_for_status()
    httpx.post(f"{scheduler.url}/_emulator/seed", json={"resources": [
        {"ResourceNo": "TEST01", "DisplayName": "Test Tech", "Email": MAILBOX, "ExchangeIntegrationEnabled": True}]},
        timeout=10).raise_for_status()
    if graph_knobs:
        assert httpx.patch(f"{graph.url}/_emulator/config", json=graph_knobs, timeout=10).status_code == 200
    if scheduler_knobs:
        answer = httpx.patch(f"{scheduler.url}/_emulator/config", json=scheduler_knobs, timeout=10)
        assert answer.status_code == 200, answer.text
    settings = load_settings(local_values(graph_url=f"{graph.url}/v1.0", scheduler_url=scheduler.url))
    import asyncio

    return asyncio.run(verify(settings, MAILBOX, "TEST01"))


STRICT = ({}, {})
KIND = ({"delta_occurrences": "full", "occurrence_delete_signal": "removed", "honour_body_content_type": False},
        {"import_envelope_casing": "camel", "import_content_as_object": True, "appointment_lookup": "id_or_guid",
         "webhook_created_answer": "body", "payload_dates": "utc_z", "blank_parameter": "clears"})


@pytest.mark.parametrize(("knobs", "expected"), [
    (STRICT, {"delta occurrences": "stub", "deleted occurrence signal": "none", "body without the text Prefer": "html",
              "body with the text Prefer honoured": "true", "import envelope casing": "pascal",
              "import content as object": "false", "GET /appointment/{id} takes the GUID": "id",
              "webhook registration answer": "location", "payload dates": "naive", "mailbox time zone": "UTC",
              "a blank parameter": "keeps"}),
    (KIND, {"delta occurrences": "full", "deleted occurrence signal": "removed",
            "body with the text Prefer honoured": "false", "import envelope casing": "camel",
            "import content as object": "true", "GET /appointment/{id} takes the GUID": "id_or_guid",
            "webhook registration answer": "body", "payload dates": "utc_z", "a blank parameter": "clears"}),
], ids=["strict-defaults", "every-kind-variant"])
def test_each_variant_is_reported_as_the_emulator_behaves(servers: tuple[ServerThread, ServerThread],
                                                          knobs: tuple[dict[str, Any], dict[str, Any]],
                                                          expected: dict[str, str]) -> None:
    graph, scheduler = servers
    report = _run(graph, scheduler, *knobs)
    assert {point: report.variant(point) for point in expected} == expected
    assert all(f.connector for f in report.findings)
    table = render(report)
    assert "delta occurrences" in table and "Cleaned up" in table
    # Nothing left behind: no event in the test mailbox, no board item, no probe webhook.
    user = httpx.get(f"{graph.url}/v1.0/users/{MAILBOX}", headers={"Authorization": "Bearer dev-graph-token"},
                     timeout=10).json()
    events = httpx.get(f"{graph.url}/v1.0/users/{user['id']}/events",
                       headers={"Authorization": "Bearer dev-graph-token"}, timeout=10).json()["value"]
    assert events == []
    board = httpx.get(f"{scheduler.url}/_emulator/appointments", timeout=10).json()
    assert [a for a in (board if isinstance(board, list) else board.get("appointments", []))
            if "verify-tenant" in str(a)] == []
    hooks = httpx.get(f"{scheduler.url}/webhooks", headers={"X-API-KEY": "dev-api-key"}, timeout=10).json()
    assert [h for h in hooks if h.get("sourceApp") == "VERIFYTENANT"] == []
