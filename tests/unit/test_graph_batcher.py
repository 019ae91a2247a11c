"""JSON batching: batch assembly, response matching by id, per-mailbox limits and Retry-After."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from connector.errors import GraphError
from connector.gateways.batcher import GraphBatcher, WriteRequest, WriteResponse, build_batch, inner_error, match_responses


def write(mailbox: str, n: int, method: str = "POST") -> WriteRequest:
    body = {"subject": f"s{n}"} if method != "DELETE" else None
    return WriteRequest(method, f"/users/{mailbox}/events" + ("" if method == "POST" else f"/e{n}"), mailbox, body,
                        ('IdType="ImmutableId"', 'outlook.timezone="UTC"'))


def test_build_batch_gives_ids_relative_urls_and_content_type_for_bodies() -> None:
    body = build_batch([("0", write("u1", 1)), ("1", write("u2", 2, "DELETE"))])
    first, second = body["requests"]
    assert first == {"id": "0", "method": "POST", "url": "/users/u1/events", "body": {"subject": "s1"},
                     "headers": {"Prefer": 'IdType="ImmutableId", outlook.timezone="UTC"',
                                 "Content-Type": "application/json"}}
    assert second["method"] == "DELETE" and "body" not in second and "Content-Type" not in second["headers"]


def test_build_batch_refuses_more_than_twenty() -> None:
    with pytest.raises(ValueError):
        build_batch([(str(i), write("u", i)) for i in range(21)])


def test_responses_are_matched_by_id_in_any_order_and_missing_ones_are_retryable() -> None:
    answer = {"responses": [
        {"id": "2", "status": 429, "headers": {"Retry-After": "7"}, "body": {"error": {"code": "TooManyRequests"}}},
        {"id": "0", "status": 201, "body": {"id": "AAA", "changeKey": "ck"}},
        {"id": "99", "status": 200},  # not ours: ignored
    ]}
    matched = match_responses(["0", "1", "2"], answer)
    assert matched["0"].ok and matched["0"].json()["id"] == "AAA"
    assert matched["1"].status == 503  # absent from the answer: unknown outcome, retried
    error = inner_error(matched["2"])
    assert error.status == 429 and error.transient and error.retry_after == 7 and error.code == "TooManyRequests"


def test_inner_error_keeps_graphs_code_and_message() -> None:
    error = inner_error(WriteResponse(404, {}, {"error": {"code": "ErrorItemNotFound", "message": "gone"}}))
    assert error.not_found and error.code == "ErrorItemNotFound" and "gone" in str(error)


class FakeGraph:
    """Answers batches like Graph (responses reversed, to prove matching by id) and records them."""

    def __init__(self, statuses: dict[str, tuple[int, dict[str, str]]] | None = None, delay: float = 0.01,
                 all_at_once: bool = False) -> None:
        self.all_at_once = all_at_once  # Graph before 2022: a batch's requests past 4 per mailbox get a 429
        self.batches: list[list[dict[str, Any]]] = []
        self.statuses = statuses or {}
        self.delay = delay
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self.fail_next: GraphError | None = None

    async def send(self, body: dict[str, Any]) -> dict[str, Any]:
        requests = body["requests"]
        self.batches.append(requests)
        mailboxes = {r["url"].split("/")[2] for r in requests}
        for m in mailboxes:
            self.in_flight[m] = self.in_flight.get(m, 0) + 1
            self.max_in_flight[m] = max(self.max_in_flight.get(m, 0), self.in_flight[m])
        try:
            await asyncio.sleep(self.delay)
            if self.fail_next is not None:
                error, self.fail_next = self.fail_next, None
                raise error
            responses = []
            seen: dict[str, int] = {}
            for r in requests:
                mailbox = r["url"].split("/")[2]
                seen[mailbox] = seen.get(mailbox, 0) + 1
                status, headers = self.statuses.get(mailbox, (201, {}))
                if self.all_at_once and seen[mailbox] > 4:
                    status, headers = 429, {"Retry-After": "0"}
                responses.append({"id": r["id"], "status": status, "headers": headers,
                                  "body": {"id": "ev-" + r["body"]["subject"]} if r.get("body") else None})
            return {"responses": responses[::-1]}
        finally:
            for m in mailboxes:
                self.in_flight[m] -= 1


async def test_concurrent_writes_share_round_trips_within_the_limits() -> None:
    graph = FakeGraph()
    batcher = GraphBatcher(graph.send, window_seconds=0.02)
    requests = [write(f"u{i % 5}", i) for i in range(40)]
    responses = await asyncio.gather(*(batcher.submit(r) for r in requests))
    assert [r.json()["id"] for r in responses] == [f"ev-s{i}" for i in range(40)]
    assert len(graph.batches) < len(requests)
    assert all(len(batch) <= 20 for batch in graph.batches)
    assert max(graph.max_in_flight.values()) == 1  # one batch in flight per mailbox


async def test_a_busy_mailbox_writes_twenty_to_a_round_trip() -> None:
    """Graph runs 4 of a batch at a time, so one batch in flight may carry 20 writes of one mailbox."""
    graph = FakeGraph()
    batcher = GraphBatcher(graph.send, window_seconds=0.02)
    responses = await asyncio.gather(*(batcher.submit(write("busy", i)) for i in range(40)))
    assert all(r.ok for r in responses)
    assert [len(batch) for batch in graph.batches] == [20, 20]
    assert graph.max_in_flight["busy"] == 1


async def test_where_graph_runs_a_batch_all_at_once_a_throttled_mailbox_gets_four_per_batch() -> None:
    """Before 2022 (and maybe in some tenant still) a batch's requests past 4 of a mailbox got a 429: those
    writes fail transiently (their changes are retried) and the mailbox's later batches hold 4 at most."""
    graph = FakeGraph(all_at_once=True)
    batcher = GraphBatcher(graph.send, window_seconds=0.02)
    first = await asyncio.gather(*(batcher.submit(write("busy", i)) for i in range(10)))
    assert [r.status for r in first].count(429) == 6
    again = await asyncio.gather(*(batcher.submit(write("busy", i)) for i in range(10, 22)))
    assert all(r.ok for r in again)
    assert [len(batch) for batch in graph.batches] == [10, 4, 4, 4]
    other = await asyncio.gather(*(batcher.submit(write("other", i)) for i in range(8)))  # learns on its own
    assert len(graph.batches[-1]) == 8 and [r.status for r in other].count(429) == 4


async def test_an_inner_429_fails_that_write_and_pauses_its_mailbox_only() -> None:
    graph = FakeGraph({"slow": (429, {"Retry-After": "30"})})
    batcher = GraphBatcher(graph.send, window_seconds=0.01)
    throttled, fine = await asyncio.gather(batcher.submit(write("slow", 1)), batcher.submit(write("fast", 2)))
    assert throttled.status == 429 and fine.status == 201
    with pytest.raises(GraphError) as caught:  # paused: fails at once, without a request
        await batcher.submit(write("slow", 3))
    assert caught.value.status == 429 and caught.value.retry_after is not None and caught.value.retry_after > 25
    assert (await batcher.submit(write("fast", 4))).ok
    assert len(graph.batches) == 2


async def test_a_throttled_batch_fails_each_write_transiently_with_its_retry_after() -> None:
    graph = FakeGraph()
    graph.fail_next = GraphError(429, "TooManyRequests", "slow down", retry_after=3)
    batcher = GraphBatcher(graph.send, window_seconds=0.01)
    results = await asyncio.gather(batcher.submit(write("a", 1)), batcher.submit(write("b", 2)), return_exceptions=True)
    assert all(isinstance(r, GraphError) and r.transient and r.retry_after == 3 for r in results)


async def test_a_batch_refused_as_a_whole_goes_again_in_halves_so_only_the_refused_write_fails() -> None:
    """A 413 (too large) or a 400 for the batch itself says nothing about any one write: the halves go
    again, recursively, and only the write refused on its own fails (was: all eight parked)."""
    graph = FakeGraph()
    sizes: list[int] = []

    async def refuse_whole(body: dict[str, Any]) -> dict[str, Any]:
        sizes.append(len(body["requests"]))
        if len(body["requests"]) > 3:
            raise GraphError(400, "BadRequest", "Invalid batch payload format. Too many requests.")
        if any(r["body"]["subject"] == "s5" for r in body["requests"]):
            raise GraphError(413, "RequestEntityTooLarge", "the request is too large")
        return await graph.send(body)

    batcher = GraphBatcher(refuse_whole, window_seconds=0.02)
    results = await asyncio.gather(*(batcher.submit(write(f"u{i % 3}", i)) for i in range(8)),
                                   return_exceptions=True)
    refused = [i for i, r in enumerate(results) if isinstance(r, GraphError)]
    assert refused == [5]
    error = results[5]
    assert isinstance(error, GraphError) and error.status == 413 and not error.transient
    assert all(isinstance(r, WriteResponse) and r.ok for i, r in enumerate(results) if i != 5)
    assert sizes[0] == 8 and sizes.count(1) >= 1  # refused whole, then halves down to the one write
