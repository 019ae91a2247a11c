"""Delta query on ``/users/{id}/calendarView/delta``.

Each round of pages is computed once from a snapshot of the window (item key → regular id and
changeKey) and kept server-side; the ``$skiptoken`` and ``$deltatoken`` a client sees are signed
(HMAC) references to that round, the mailbox, the window and a generation number, so they can't be
forged or edited. Expiring tokens (control plane, TTL, reset) bumps the generation: the next use
answers 410 Gone ``syncStateNotFound`` with a ``Location`` to start over.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from . import ids
from .errors import GraphError, bad_request
from .messages import GraphRequest, GraphResponse, applied
from .paging import page_size, request_path
from .render import options_from_prefer, render_event, render_stub
from .store import EventView
from .timeutil import parse_datetime, parse_query_datetime

if TYPE_CHECKING:
    from .core import Emulator

FORBIDDEN_OPTIONS = {"$select", "$filter", "$orderby", "$expand", "$search"}
MAX_ROUNDS = 20_000


@dataclass
class DeltaRound:
    items: list[dict[str, Any]]
    snapshot: dict[str, tuple[str, str]]  # key → (regular id, changeKey) the client will have seen


class DeltaBook:
    def __init__(self) -> None:
        self.secret = secrets.token_bytes(32)
        self.generation = 0
        self.mailbox_generation: defaultdict[str, int] = defaultdict(int)
        self.rounds: OrderedDict[str, DeltaRound] = OrderedDict()

    def expire(self, mailbox: str | None) -> None:
        if mailbox is None:
            self.generation += 1
        else:
            self.mailbox_generation[mailbox] += 1

    def keep(self, round_: DeltaRound) -> str:
        round_id = uuid.uuid4().hex
        self.rounds[round_id] = round_
        while len(self.rounds) > MAX_ROUNDS:
            self.rounds.popitem(last=False)
        return round_id

    def sign(self, payload: dict[str, Any]) -> str:
        raw = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).rstrip(b"=")
        mac = base64.urlsafe_b64encode(hmac.new(self.secret, raw, hashlib.sha256).digest()).rstrip(b"=")
        return (raw + b"." + mac).decode()

    @staticmethod
    def peek(token: str) -> dict[str, Any] | None:
        """The payload without checking the signature (only to build the restart Location)."""
        try:
            raw = token.split(".")[0]
            data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
            return data if isinstance(data, dict) else None
        except (ValueError, UnicodeError):
            return None

    def verify(self, token: str) -> dict[str, Any] | None:
        raw, _, mac = token.partition(".")
        expected = base64.urlsafe_b64encode(hmac.new(self.secret, raw.encode(), hashlib.sha256).digest()).rstrip(b"=")
        if not hmac.compare_digest(expected, mac.encode()):
            return None
        return self.peek(token)


def _gone(req: GraphRequest, payload: dict[str, Any] | None) -> GraphError:
    location = f"{req.base_url}{request_path(req)}"
    window = payload.get("w") if payload else None
    if isinstance(window, list) and len(window) == 2 and all(isinstance(w, str) for w in window):
        location += f"?startDateTime={quote(window[0], safe='')}&endDateTime={quote(window[1], safe='')}"
    return GraphError(410, "syncStateNotFound",
                      "The sync state generation is not found, the sync state has expired or is invalid. "
                      "Restart the synchronization.", {"Location": location})


def _check(emu: Emulator, req: GraphRequest, token: str, kind: str, mailbox: str) -> dict[str, Any]:
    book = emu.delta
    payload = book.verify(token)
    if (
        payload is None
        or payload.get("k") != kind
        or payload.get("u") != mailbox
        or payload.get("g") != book.generation
        or payload.get("mg") != book.mailbox_generation[mailbox]
        or payload.get("r") not in book.rounds
    ):
        raise _gone(req, payload or book.peek(token))
    ttl = emu.config.delta_token_ttl_seconds
    if ttl is not None and emu.timestamp() - float(payload.get("t", 0)) > ttl:
        raise _gone(req, payload)
    return payload


def _version(view: EventView, stubs: bool) -> str:
    """What makes an item come again: a stub only shows its times, so only they count."""
    if stubs and view.type == "occurrence":
        return f"{view.start.isoformat()}|{view.end.isoformat()}"
    return view.change_key


def _delta_views(emu: Emulator, mailbox: str, window: tuple[datetime, datetime]) -> list[EventView]:
    """The window's instances plus the master of every series with one in it (listed in delta)."""
    views = emu.store.window_views(mailbox, *window)
    masters = {v.record.immutable_id: v.record for v in views if v.type in ("occurrence", "exception")}
    return views + [EventView("seriesMaster", record) for record in masters.values()]


def _silent_removal(emu: Emulator, key: str) -> bool:
    """A deleted occurrence whose series still exists gives no signal (knob: occurrence_delete_signal)."""
    if emu.config.occurrence_delete_signal != "none":
        return False
    parsed = ids.parse_occurrence_id(key)
    if parsed is None:
        return False
    master = emu.store.events.get(parsed[0])
    return master is not None and parsed[1] in master.cancelled


def _compute(emu: Emulator, req: GraphRequest, mailbox: str, window: tuple[datetime, datetime],
             previous: dict[str, tuple[str, str]]) -> DeltaRound:
    """Items new or changed since ``previous``, then tombstones for items gone from the window."""
    user = emu.mailbox(mailbox)
    options, _ = options_from_prefer(req.prefer(), emu.config.honour_body_content_type)
    stubs = emu.config.delta_occurrences == "stub"
    views = _delta_views(emu, user.id, window)
    snapshot = {v.key: (v.id(False), _version(v, stubs)) for v in views}
    items: list[dict[str, Any]] = []
    for view in views:
        seen = previous.get(view.key)
        version = snapshot[view.key][1]
        if seen is not None and seen[1] == version and (options.immutable or seen[0] == view.id(False)):
            continue
        if seen is not None and not options.immutable and seen[0] != view.id(False):
            items.append(_removed(seen[0]))  # moved: the id the client knows is gone
        rendered = render_stub(view, options) if stubs and view.type == "occurrence" else render_event(
            view, user, options)
        items.append({"@odata.type": "#microsoft.graph.event", **rendered})
    for key, seen in previous.items():
        if key not in snapshot and not _silent_removal(emu, key):
            items.append(_removed(key if options.immutable else seen[0]))
    for item in items:
        item.pop("singleValueExtendedProperties", None)
    return DeltaRound(items, snapshot)


def _removed(event_id: str) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.event", "id": event_id, "@removed": {"reason": "deleted"}}


async def calendar_view_delta(emu: Emulator, req: GraphRequest) -> GraphResponse:
    user = emu.mailbox(req.params[0])
    for name in req.query:
        if name.lower() in FORBIDDEN_OPTIONS:
            raise bad_request(f"The query option '{name}' is not supported with delta queries.", "BadRequest")
    book = emu.delta
    skip_token, delta_token = req.query.get("$skiptoken"), req.query.get("$deltatoken")
    if skip_token is not None:
        payload = _check(emu, req, skip_token, "s", user.id)
        round_id, offset = payload["r"], int(payload["o"])
        window_text = payload["w"]
    else:
        if delta_token is not None:
            payload = _check(emu, req, delta_token, "d", user.id)
            window_text = payload["w"]
            previous = book.rounds[payload["r"]].snapshot
        else:
            start = parse_query_datetime(req.query.get("startDateTime"), "startDateTime")
            end = parse_query_datetime(req.query.get("endDateTime"), "endDateTime")
            if end <= start:
                raise bad_request("endDateTime must be later than startDateTime.", "ErrorInvalidParameter")
            window_text = [req.query["startDateTime"], req.query["endDateTime"]]
            previous = {}
        window = (parse_datetime(window_text[0]), parse_datetime(window_text[1]))
        round_id, offset = book.keep(_compute(emu, req, user.id, window, previous)), 0

    size, size_prefs = page_size(req, None, emu.config.delta_default_page_size, emu.config.delta_max_page_size)
    _, prefs = options_from_prefer(req.prefer(), emu.config.honour_body_content_type)
    items = book.rounds[round_id].items
    chunk = items[offset: offset + size]
    common = {"u": user.id, "w": window_text, "g": book.generation, "mg": book.mailbox_generation[user.id],
              "r": round_id, "t": emu.timestamp()}
    base = f"{req.base_url}{request_path(req)}"
    body: dict[str, Any] = {"@odata.context": f"{req.base_url}/v1.0/$metadata#Collection(event)", "value": chunk}
    if offset + size < len(items):
        body["@odata.nextLink"] = f"{base}?$skiptoken={book.sign({'k': 's', 'o': offset + size, **common})}"
    else:
        body["@odata.deltaLink"] = f"{base}?$deltatoken={book.sign({'k': 'd', **common})}"
    return GraphResponse(200, body, applied(prefs + size_prefs))

