"""JSON batching: ``POST /v1.0/$batch``.

Each inner request runs through the same pipeline as a real one (counted, throttled and
fault-injected on its own, authenticated by the outer request). ``dependsOn`` orders execution; a
request whose dependency failed gets 424; at most ``batch_concurrency`` (4) inner requests run at
once per batch, whatever the mailboxes they address (Graph sends Outlook at most 4 requests of a
batch at a time). Responses are listed in completion order: clients must match them by id.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from multidict import CIMultiDict, MultiDict

from .errors import GraphError
from .messages import GraphRequest, GraphResponse

if TYPE_CHECKING:
    from .core import Emulator

METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


@dataclass
class _Item:
    id: str
    method: str
    url: str
    headers: dict[str, str]
    body: Any
    has_body: bool
    depends_on: list[str]


def _invalid(message: str) -> GraphError:
    return GraphError(400, "BadRequest", f"Invalid batch payload format. {message}")


def _parse(data: dict[str, Any], limit: int) -> list[_Item]:
    requests = data.get("requests")
    if not isinstance(requests, list) or not requests:
        raise _invalid("'requests' must be a non-empty array.")
    if len(requests) > limit:
        raise _invalid(f"The number of requests in a batch can't exceed {limit}.")
    items: list[_Item] = []
    for raw in requests:
        if not isinstance(raw, dict):
            raise _invalid("Each request must be an object.")
        item_id, method, url = raw.get("id"), raw.get("method"), raw.get("url")
        if not isinstance(item_id, str) or not item_id:
            raise _invalid("Each request needs a string 'id'.")
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise _invalid(f"Request '{item_id}' has an invalid method.")
        if not isinstance(url, str) or not url or "://" in url:
            raise _invalid(f"Request '{item_id}' needs a relative 'url'.")
        headers = raw.get("headers") or {}
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise _invalid(f"The headers of request '{item_id}' must be an object of strings.")
        depends = raw.get("dependsOn") or []
        if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
            raise _invalid(f"dependsOn of request '{item_id}' must be an array of ids.")
        has_body = "body" in raw and raw["body"] is not None
        if has_body and not any(k.lower() == "content-type" for k in headers):
            raise _invalid(f"Write request id : {item_id} does not contain Content-Type header or body.")
        items.append(_Item(item_id, method.upper(), url, dict(headers), raw.get("body"), has_body, depends))
    ids = [i.id for i in items]
    if len(set(ids)) != len(ids):
        raise _invalid("Batch request contains duplicate ids.")
    known = set(ids)
    for item in items:
        for dep in item.depends_on:
            if dep not in known or dep == item.id:
                raise _invalid(f"Request '{item.id}' depends on unknown request '{dep}'.")
    _check_acyclic(items)
    return items


def _check_acyclic(items: list[_Item]) -> None:
    graph = {i.id: i.depends_on for i in items}
    state: dict[str, int] = {}

    def visit(node: str) -> None:
        if state.get(node) == 1:
            raise _invalid("dependsOn forms a cycle.")
        if state.get(node) == 2:
            return
        state[node] = 1
        for dep in graph[node]:
            visit(dep)
        state[node] = 2

    for node in graph:
        visit(node)


def _inner_request(outer: GraphRequest, item: _Item) -> GraphRequest:
    parts = urlsplit(item.url.strip())
    segments = [unquote(s) for s in parts.path.strip().lstrip("/").split("/")]
    if len(segments) > 1 and segments[-1] == "":
        segments.pop()
    body: bytes | None = None
    if item.has_body:
        body = item.body.encode() if isinstance(item.body, str) else json.dumps(item.body).encode()
    return GraphRequest(
        method=item.method,
        segments=segments,
        query=MultiDict(parse_qsl(parts.query, keep_blank_values=True)),
        headers=CIMultiDict(item.headers),
        body=body,
        base_url=outer.base_url,
        inner=True,
    )


async def run_batch(emu: Emulator, req: GraphRequest) -> GraphResponse:
    if len(req.body or b"") > emu.config.batch_max_body_bytes:  # refused as a whole, before it is read
        raise GraphError(413, "RequestEntityTooLarge",
                         f"The request body exceeds the limit of {emu.config.batch_max_body_bytes} bytes.")
    items = _parse(req.json_object(), emu.config.batch_max_requests)
    results: dict[str, GraphResponse] = {}
    done = {item.id: asyncio.Event() for item in items}
    slots = asyncio.Semaphore(emu.config.batch_concurrency)
    running = 0
    order: list[str] = []

    async def run(item: _Item) -> None:
        for dep in item.depends_on:
            await done[dep].wait()
        if any(not 200 <= results[dep].status < 300 for dep in item.depends_on):
            results[item.id] = GraphResponse(424, {"error": {"code": "FailedDependency",
                                                             "message": "A dependency of this request failed."}})
        else:
            async with slots:
                nonlocal running
                running += 1
                emu.stats.batch_peak_in_flight = max(emu.stats.batch_peak_in_flight, running)
                try:
                    results[item.id] = await emu.execute(_inner_request(req, item))
                finally:
                    running -= 1
        order.append(item.id)
        done[item.id].set()

    await asyncio.gather(*(run(item) for item in items))
    responses: list[dict[str, Any]] = []
    for item_id in order:
        result = results[item_id]
        entry: dict[str, Any] = {"id": item_id, "status": result.status, "headers": dict(result.headers)}
        if result.body is not None:
            entry["headers"]["Content-Type"] = "application/json"
            entry["body"] = result.body
        responses.append(entry)
    return GraphResponse(200, {"responses": responses})
