"""Queue triggers against a real Azurite: retries, poison, dequeue counts, encodings, concurrency."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from azure.storage.queue import QueueClient

from devtools.devhost import DevHost

from .conftest import FAST_QUEUES, StartHost, unique, wait_for

APP = "tests.devhost.apps.queue_app:app"
QueueFactory = Callable[..., QueueClient]


def queue_settings(connection: str) -> dict[str, str]:
    return {
        "AzureWebJobsStorage": connection,
        "FLAKY_QUEUE": unique("flaky"),
        "DOOMED_QUEUE": unique("doomed"),
        "SLOW_QUEUE": unique("slow"),
    }


def state(host: DevHost) -> dict[str, Any]:
    return httpx.get(f"{host.url}/api/state", timeout=10).json()  # type: ignore[no-any-return]


def raw_messages(queue: QueueClient) -> list[str]:
    """Message texts exactly as stored (no decode policy)."""
    return [m.content for m in queue.peek_messages(max_messages=32)]


def test_failed_message_is_retried_with_growing_dequeue_count(
    start_host: StartHost, storage_connection_string: str, queue_client: QueueFactory
) -> None:
    settings = queue_settings(storage_connection_string)
    host = start_host(APP, settings, host_json={"extensions": {"queues": FAST_QUEUES}})
    queue = queue_client(settings["FLAKY_QUEUE"])
    queue.send_message(json.dumps({"key": "k1", "fail": 2}))

    wait_for(lambda: "k1" in state(host)["succeeded"], what="k1 to succeed")
    assert state(host)["attempts"]["k1"] == [1, 2, 3]
    wait_for(lambda: not raw_messages(queue), what="the message to be deleted")
    poison = queue_client(settings["FLAKY_QUEUE"] + "-poison")
    assert raw_messages(poison) == []


def test_message_moves_to_poison_after_max_dequeue_count(
    start_host: StartHost, storage_connection_string: str, queue_client: QueueFactory
) -> None:
    settings = queue_settings(storage_connection_string)
    host = start_host(APP, settings, host_json={"extensions": {"queues": FAST_QUEUES}})
    queue = queue_client(settings["DOOMED_QUEUE"])
    queue.send_message("bad-news")
    poison = QueueClient.from_connection_string(storage_connection_string, settings["DOOMED_QUEUE"] + "-poison")

    def poisoned() -> list[str]:
        try:
            return raw_messages(poison)
        except Exception:  # the host creates the poison queue on first use
            return []

    assert wait_for(poisoned, what="the poison message") == [base64.b64encode(b"bad-news").decode()]
    assert state(host)["attempts"]["doomed:bad-news"] == [1, 2, 3]  # maxDequeueCount 3
    assert raw_messages(queue) == []


def test_poisoned_at_max_dequeue_count_without_waiting_for_visibility(
    start_host: StartHost, storage_connection_string: str, queue_client: QueueFactory
) -> None:
    settings = queue_settings(storage_connection_string)
    queues = {**FAST_QUEUES, "maxDequeueCount": 1, "visibilityTimeout": "00:01:00"}  # a retry would take 1 min
    host = start_host(APP, settings, host_json={"extensions": {"queues": queues}})
    queue_client(settings["DOOMED_QUEUE"]).send_message("once")
    poison = queue_client(settings["DOOMED_QUEUE"] + "-poison", base64=False)
    assert wait_for(lambda: raw_messages(poison), what="the poison message") == [base64.b64encode(b"once").decode()]
    assert state(host)["attempts"]["doomed:once"] == [1]


def test_message_already_past_max_dequeue_count_is_not_invoked(
    start_host: StartHost, storage_connection_string: str, queue_client: QueueFactory
) -> None:
    settings = queue_settings(storage_connection_string)
    queue = queue_client(settings["FLAKY_QUEUE"])
    queue.send_message(json.dumps({"key": "stale"}))
    for _ in range(3):  # dequeue it 3 times (= maxDequeueCount) before the host sees it
        [message] = queue.receive_messages(max_messages=1, visibility_timeout=30)
        queue.update_message(message, visibility_timeout=0)

    host = start_host(APP, settings, host_json={"extensions": {"queues": FAST_QUEUES}})
    poison = queue_client(settings["FLAKY_QUEUE"] + "-poison")
    wait_for(lambda: raw_messages(poison), what="the poison message")
    assert "stale" not in state(host)["attempts"]


def test_invalid_base64_fails_without_invoking(
    start_host: StartHost, storage_connection_string: str, queue_client: QueueFactory
) -> None:
    settings = queue_settings(storage_connection_string)
    host = start_host(APP, settings, host_json={"extensions": {"queues": FAST_QUEUES}})
    queue = queue_client(settings["FLAKY_QUEUE"], base64=False)
    queue.send_message("not base64 {")
    poison = queue_client(settings["FLAKY_QUEUE"] + "-poison", base64=False)
    assert wait_for(lambda: raw_messages(poison), what="the poison message") == ["not base64 {"]
    assert state(host)["bodies"] == []


def test_message_encoding_none(start_host: StartHost, storage_connection_string: str, queue_client: QueueFactory) -> None:
    settings = queue_settings(storage_connection_string)
    queues = {**FAST_QUEUES, "messageEncoding": "none"}
    host = start_host(APP, settings, host_json={"extensions": {"queues": queues}})
    flaky = queue_client(settings["FLAKY_QUEUE"], base64=False)
    flaky.send_message(json.dumps({"key": "plain"}))
    wait_for(lambda: "plain" in state(host)["succeeded"], what="the plain-text message")
    [seen] = state(host)["bodies"]
    assert json.loads(seen["body"]) == {"key": "plain"}
    assert seen["dequeue_count"] == 1

    doomed = queue_client(settings["DOOMED_QUEUE"], base64=False)
    doomed.send_message("raw-text")
    poison = queue_client(settings["DOOMED_QUEUE"] + "-poison", base64=False)
    assert wait_for(lambda: raw_messages(poison), what="the poison message") == ["raw-text"]


def test_in_flight_bounded_by_batch_size_plus_threshold(
    start_host: StartHost, storage_connection_string: str, queue_client: QueueFactory
) -> None:
    settings = queue_settings(storage_connection_string)
    queues = {**FAST_QUEUES, "batchSize": 2, "newBatchThreshold": 1}
    host = start_host(APP, settings, host_json={"extensions": {"queues": queues}})
    slow = queue_client(settings["SLOW_QUEUE"])
    for i in range(8):
        slow.send_message(f"m{i}")

    # The first batch (2) runs; no new batch while more than newBatchThreshold (1) are in flight.
    wait_for(lambda: state(host)["slow"]["in_flight"] == 2, what="the first batch in flight")
    httpx.post(f"{host.url}/api/release", params={"one": "1"})
    # Down to 1 (= threshold): the next batch of 2 arrives, so 3 = batchSize + newBatchThreshold run.
    wait_for(lambda: state(host)["slow"]["in_flight"] == 3, what="3 messages in flight")
    # A negative property needs a window: the listener polls every <= 200 ms, so it would over-fetch here.
    window_end = time.monotonic() + 1.0
    while time.monotonic() < window_end:
        assert state(host)["slow"]["in_flight"] <= 3
    assert len(raw_messages(slow)) == 4  # the rest were never received
    httpx.post(f"{host.url}/api/release")
    wait_for(lambda: state(host)["slow"]["done"] == 8, what="all 8 messages")
    assert state(host)["slow"]["max_in_flight"] == 3
