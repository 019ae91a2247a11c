"""Event endpoints: ``/users/{id}/events``, ``/calendar/events``, ``/calendarView``, ``/instances``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from . import ids
from .errors import GraphError, bad_request, item_not_found
from .eventschema import EventInput, ext_key, parse_event_input
from .messages import GraphRequest, GraphResponse, applied
from .odata import evaluate, parse_options, sort_key
from .paging import link, page_size
from .render import EVENT_PROPERTIES, options_from_prefer, render_event, shape
from .store import EventRecord, EventView, ExceptionRecord, User
from .timeutil import parse_query_datetime, resolve_zone

if TYPE_CHECKING:
    from .core import Emulator

ORDERABLE = {"start/dateTime", "end/dateTime", "createdDateTime", "lastModifiedDateTime", "subject"}
MIDNIGHT = time(0)


@dataclass
class Times:
    start: datetime
    end: datetime
    start_tz: str
    end_tz: str
    all_day: bool


def ext_matcher(literal: Any) -> Any:
    return ext_key(literal)[0]


def top_view(record: EventRecord) -> EventView:
    return EventView("seriesMaster" if record.is_series else "singleInstance", record)


def _context(req: GraphRequest, suffix: str) -> str:
    return f"{req.base_url}/v1.0/$metadata#users('{quote(req.params[0], safe='@.')}')/{suffix}"


def _pick(inp: EventInput, base: Times | None, which: str) -> tuple[datetime, str, time, bool]:
    """(instant, zone name, wall-clock time, floating) of start or end after applying the input."""
    given = inp.start if which == "start" else inp.end
    if given is not None:
        wall = inp.start_wall if which == "start" else inp.end_wall
        assert wall is not None
        return given[0], given[1], wall, False
    assert base is not None
    instant = base.start if which == "start" else base.end
    zone_name = base.start_tz if which == "start" else base.end_tz
    if base.all_day:
        return instant, zone_name, MIDNIGHT, True
    return instant, zone_name, instant.astimezone(resolve_zone(zone_name) or UTC).time(), False


def resolve_times(inp: EventInput, base: Times | None) -> Times:
    """New start/end after a POST/PATCH, enforcing Graph's all-day and ordering rules."""
    all_day = inp.is_all_day if inp.is_all_day is not None else bool(base and base.all_day)
    start, start_tz, start_wall, _ = _pick(inp, base, "start")
    end, end_tz, end_wall, _ = _pick(inp, base, "end")
    if all_day:
        if start_wall != MIDNIGHT or end_wall != MIDNIGHT:
            raise bad_request(
                "Your request can't be completed. If the event is an all-day event, its start and end must be set "
                "to midnight (00:00:00) in the time zone of the event.", "ErrorInvalidRequest")
        # Stored at local midnight of the zone they are written in (a kept time is already one).
        start_zone, end_zone = resolve_zone(start_tz) or UTC, resolve_zone(end_tz) or UTC
        start = datetime.combine(start.astimezone(start_zone).date(), MIDNIGHT, start_zone).astimezone(UTC)
        end = datetime.combine(end.astimezone(end_zone).date(), MIDNIGHT, end_zone).astimezone(UTC)
        if end <= start:
            raise bad_request("An all-day event must end at least one day after it starts.")
    elif end < start:
        raise bad_request("The event's end time must not be before its start time.", "ErrorInvalidRequest")
    return Times(start, end, start_tz, end_tz, all_day)


def _find(emu: Emulator, user: User, ref: str) -> EventView:
    view = emu.store.resolve(user.id, ref)
    if view is None:
        raise item_not_found()
    return view


def _check_if_match(req: GraphRequest, view: EventView) -> None:
    wanted = req.headers.get("If-Match")
    if wanted is None or wanted.strip() == "*":
        return
    if wanted.strip() not in (f'W/"{view.change_key}"', f'"{view.change_key}"', view.change_key):
        raise GraphError(412, "ErrorIrresolvableConflict",
                         "The change key passed in the request does not match the current change key for the item.")


def _one(emu: Emulator, req: GraphRequest, user: User, view: EventView, status: int,
         query: bool = False) -> GraphResponse:
    options, prefs = options_from_prefer(req.prefer(), emu.config.honour_body_content_type)
    if query:
        listing = parse_options(req.query, EVENT_PROPERTIES, set(), allow_expand=True)
        options.select, options.expand_ext = listing.select, listing.expand_ext
    options.context = _context(req, "events/$entity")
    doc = shape(render_event(view, user, options), options, ext_matcher)
    return GraphResponse(status, doc, applied(prefs))


def _list(emu: Emulator, req: GraphRequest, user: User, views: list[EventView], suffix: str) -> GraphResponse:
    listing = parse_options(req.query, EVENT_PROPERTIES, ORDERABLE, allow_expand=True)
    options, prefs = options_from_prefer(req.prefer(), emu.config.honour_body_content_type)
    options.select, options.expand_ext = listing.select, listing.expand_ext
    docs = [render_event(v, user, options) for v in views]
    if listing.filter is not None:
        docs = [d for d in docs if evaluate(listing.filter, d, ext_matcher)]
    if listing.orderby is not None:
        docs.sort(key=sort_key(listing.orderby[0]), reverse=listing.orderby[1])
    size, size_prefs = page_size(req, listing.top, emu.config.default_page_size, emu.config.max_page_size)
    chunk = docs[listing.skip: listing.skip + size]
    body: dict[str, Any] = {
        "@odata.context": _context(req, suffix),
        "value": [shape(d, options, ext_matcher) for d in chunk],
    }
    if listing.skip + size < len(docs):
        updates = {"$skip": str(listing.skip + size)}
        if listing.top is not None:
            updates["$top"] = str(size)
        body["@odata.nextLink"] = link(req, updates)
    return GraphResponse(200, body, applied(prefs + size_prefs))


def _window(req: GraphRequest) -> tuple[datetime, datetime]:
    start = parse_query_datetime(req.query.get("startDateTime"), "startDateTime")
    end = parse_query_datetime(req.query.get("endDateTime"), "endDateTime")
    if end <= start:
        raise bad_request("endDateTime must be later than startDateTime.", "ErrorInvalidParameter")
    return start, end


def insert_event(emu: Emulator, user: User, data: dict[str, Any]) -> tuple[EventView, bool]:
    """Store a new event (API create and seeding); (the event, whether it is new)."""
    inp = parse_event_input(data, creating=True, strict=emu.config.strict_fields)
    if inp.transaction_id is not None:
        if emu.config.repeated_transaction == "conflict" and emu.store.transaction_taken(user.id, inp.transaction_id):
            raise GraphError(409, "ErrorDuplicateTransactionId",
                             "An event with this transactionId was already created in this mailbox.")
        existing = emu.store.by_transaction(user.id, inp.transaction_id)
        if existing is not None:  # a retried create: nothing new, answer with the first one
            return top_view(existing), False
    times = resolve_times(inp, None)
    now = emu.now()
    record = EventRecord(
        immutable_id=ids.new_immutable_id(), regular_id=ids.new_regular_id(), mailbox=user.id, props=inp.props,
        start=times.start, end=times.end, is_all_day=times.all_day, start_tz=times.start_tz, end_tz=times.end_tz,
        recurrence=inp.recurrence, change_key=ids.new_change_key(), created=now, modified=now,
        ical_uid=ids.new_ical_uid(), transaction_id=inp.transaction_id, ext=inp.ext,
    )
    emu.store.add_event(record)
    return top_view(record), True


async def create_event(emu: Emulator, req: GraphRequest) -> GraphResponse:
    user = emu.mailbox(req.params[0])
    view, created = insert_event(emu, user, req.json_object())
    if created:
        emu.event_changed(user, "created", [emu.change_ref(view)])
        if emu.config.extra_updated_on_create:
            emu.event_changed(user, "updated", [emu.change_ref(view)])
    return _one(emu, req, user, view, 201)


async def get_event(emu: Emulator, req: GraphRequest) -> GraphResponse:
    user = emu.mailbox(req.params[0])
    return _one(emu, req, user, _find(emu, user, req.params[1]), 200, query=True)


async def update_event(emu: Emulator, req: GraphRequest) -> GraphResponse:
    user = emu.mailbox(req.params[0])
    view = _find(emu, user, req.params[1])
    _check_if_match(req, view)
    inp = parse_event_input(req.json_object(), creating=False, strict=emu.config.strict_fields)
    now = emu.now()
    record = view.record
    if view.original_start is None:
        times = resolve_times(inp, Times(record.start, record.end, record.start_tz, record.end_tz, record.is_all_day))
        reshaped = inp.recurrence_set or (times.start, times.end, times.all_day) != (
            record.start, record.end, record.is_all_day)
        record.props.update(inp.props)
        record.ext.update(inp.ext)
        record.start, record.end, record.start_tz, record.end_tz = times.start, times.end, times.start_tz, times.end_tz
        record.is_all_day = times.all_day
        if inp.recurrence_set:
            record.recurrence = inp.recurrence
        if reshaped:  # Exchange drops exceptions when a series' times or pattern change
            record.exceptions.clear()
            record.cancelled.clear()
        record.change_key, record.modified = ids.new_change_key(), now
        updated = top_view(record)
        emu.event_changed(user, "updated", [emu.change_ref(updated)])
        return _one(emu, req, user, updated, 200)
    if inp.recurrence_set:
        raise bad_request("The recurrence of an occurrence can't be set; update the series master.")
    if inp.is_all_day is not None and inp.is_all_day != record.is_all_day:
        raise bad_request("isAllDay of an occurrence can't differ from its series master.")
    original = view.original_start
    exception = view.exception or ExceptionRecord(
        original_start=original, props={}, start=view.start, end=view.end, start_tz=view.start_tz,
        end_tz=view.end_tz, ext={}, change_key="", created=now, modified=now,
    )
    times = resolve_times(inp, Times(exception.start, exception.end, exception.start_tz, exception.end_tz,
                                     record.is_all_day))
    exception.props.update(inp.props)
    exception.ext.update(inp.ext)
    exception.start, exception.end = times.start, times.end
    exception.start_tz, exception.end_tz = times.start_tz, times.end_tz
    exception.change_key, exception.modified = ids.new_change_key(), now
    record.exceptions[original] = exception
    updated = EventView("exception", record, original, exception)
    emu.event_changed(user, "updated", [emu.change_ref(top_view(record)), emu.change_ref(updated)])
    return _one(emu, req, user, updated, 200)


async def delete_event(emu: Emulator, req: GraphRequest) -> GraphResponse:
    user = emu.mailbox(req.params[0])
    view = _find(emu, user, req.params[1])
    _check_if_match(req, view)
    ref = emu.change_ref(view)
    if view.original_start is None:
        emu.store.remove_event(view.record)
    else:
        view.record.exceptions.pop(view.original_start, None)
        view.record.cancelled.add(view.original_start)
        # Exchange records the deletion on the series master, which so changes too.
        view.record.change_key, view.record.modified = ids.new_change_key(), emu.now()
        emu.event_changed(user, "updated", [emu.change_ref(top_view(view.record))])
    emu.event_changed(user, "deleted", [ref])
    return GraphResponse(204)


async def list_events(emu: Emulator, req: GraphRequest) -> GraphResponse:
    user = emu.mailbox(req.params[0])
    views = sorted(emu.store.top_level_views(user.id), key=lambda v: (v.start, v.key))
    return _list(emu, req, user, views, "events")


async def calendar_view(emu: Emulator, req: GraphRequest) -> GraphResponse:
    user = emu.mailbox(req.params[0])
    start, end = _window(req)
    return _list(emu, req, user, emu.store.window_views(user.id, start, end), "calendarView")


async def instances(emu: Emulator, req: GraphRequest) -> GraphResponse:
    user = emu.mailbox(req.params[0])
    view = _find(emu, user, req.params[1])
    if view.type != "seriesMaster":
        raise bad_request("Instances can only be listed for a series master.")
    start, end = _window(req)
    views = sorted(emu.store.series_views(view.record, start, end), key=lambda v: (v.start, v.key))
    return _list(emu, req, user, views, "events")
