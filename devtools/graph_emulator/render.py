"""Event JSON as Graph returns it, shaped by the request's Prefer headers and query options."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import Any

from .odata import EXT_MARK, Node, evaluate
from .store import EventView, ExtProp, User
from .timeutil import format_local, format_utc, resolve_zone

_SCRIPT = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.I | re.S)
_BREAK = re.compile(r"<\s*(br|/p|/div|/li|/tr|/h\d)\b[^>]*>", re.I)
_TAG = re.compile(r"<[^>]+>")

EVENT_PROPERTIES = {
    "id", "createdDateTime", "lastModifiedDateTime", "changeKey", "categories", "transactionId",
    "originalStartTimeZone", "originalEndTimeZone", "iCalUId", "uid", "reminderMinutesBeforeStart", "isReminderOn",
    "hasAttachments", "subject", "bodyPreview", "importance", "sensitivity", "isAllDay", "isCancelled",
    "isOrganizer", "responseRequested", "seriesMasterId", "showAs", "type", "webLink", "onlineMeetingUrl",
    "isOnlineMeeting", "onlineMeetingProvider", "allowNewTimeProposals", "isDraft", "hideAttendees",
    "responseStatus", "body", "start", "end", "location", "locations", "recurrence", "attendees", "organizer",
    "onlineMeeting", "singleValueExtendedProperties",
}


def html_to_text(content: str) -> str:
    text = _BREAK.sub("\n", _SCRIPT.sub("", content))
    text = html.unescape(_TAG.sub("", text))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n".join(line for line in lines if line).strip()


def text_to_html(content: str) -> str:
    """A text body as Exchange stores it once converted: an HTML document, lines as <br>."""
    lines = "<br>\r\n".join(html.escape(line) for line in content.splitlines())
    return ('<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n'
            '<style type="text/css" style="display:none">\r\n<!--\r\np\r\n\t{margin-top:0;\r\n\tmargin-bottom:0}\r\n-->'
            '\r\n</style>\r\n</head>\r\n<body dir="ltr">\r\n<div class="PlainText">' + lines
            + '</div>\r\n</body>\r\n</html>\r\n')


def render_body(body: dict[str, Any] | None, text: bool) -> dict[str, str]:
    """Graph answers HTML unless the text Prefer was honoured (event-get docs)."""
    body = body or {"contentType": "html", "content": ""}
    if text:
        content = html_to_text(body["content"]) if body["contentType"] == "html" else body["content"]
        return {"contentType": "text", "content": content}
    if body["contentType"] == "html":
        return {"contentType": "html", "content": body["content"]}
    return {"contentType": "html", "content": text_to_html(body["content"])}


@dataclass
class RenderOptions:
    immutable: bool = False
    zone: tzinfo = UTC
    zone_name: str = "UTC"
    text_body: bool = False
    select: list[str] | None = None
    expand_ext: Node | None = None
    context: str | None = None


def options_from_prefer(prefs: dict[str, str], honour_body: bool = True) -> tuple[RenderOptions, list[str]]:
    """Render options and the ``Preference-Applied`` values for a request's Prefer header.

    ``honour_body`` False plays a server that ignores ``outlook.body-content-type`` (always HTML)."""
    options = RenderOptions()
    applied: list[str] = []
    if prefs.get("idtype", "").lower() == "immutableid":
        options.immutable = True
        applied.append('IdType="ImmutableId"')
    if zone_name := prefs.get("outlook.timezone"):
        zone = resolve_zone(zone_name)
        if zone is not None:
            options.zone, options.zone_name = zone, zone_name
            applied.append(f'outlook.timezone="{zone_name}"')
    body_type = prefs.get("outlook.body-content-type", "").lower()
    if body_type in ("text", "html") and honour_body:
        options.text_body = body_type == "text"
        applied.append(f'outlook.body-content-type="{body_type}"')
    return options, applied


def ext_items(ext: dict[Any, ExtProp]) -> list[dict[str, Any]]:
    return [{"id": prop.id, "value": prop.value, EXT_MARK: key} for key, prop in ext.items()]


def _when(view: EventView, which: str, options: RenderOptions) -> dict[str, str]:
    instant = view.start if which == "start" else view.end
    if view.record.is_all_day:
        # Stored at local midnight of the zone it was written in, read back as midnight to midnight
        # of those dates whatever outlook.timezone asks (docs #1802, msgraph-sdk-javascript #1158).
        written = resolve_zone(view.start_tz if which == "start" else view.end_tz) or UTC
        day = instant.astimezone(written).date()
        return {"dateTime": day.strftime("%Y-%m-%dT00:00:00.0000000"), "timeZone": options.zone_name}
    return {"dateTime": format_local(instant, options.zone), "timeZone": options.zone_name}


def render_event(view: EventView, owner: User, options: RenderOptions) -> dict[str, Any]:
    """Full JSON of an event; ``$select`` and ``$expand`` are applied by :func:`shape`."""
    props = view.props
    record = view.record
    body = render_body(props.get("body"), options.text_body)
    body_text = render_body(props.get("body"), True)["content"]
    address = owner.mail or owner.user_principal_name
    doc: dict[str, Any] = {
        "@odata.etag": f'W/"{view.change_key}"',
        "id": view.id(options.immutable),
        "createdDateTime": format_utc(view.created),
        "lastModifiedDateTime": format_utc(view.modified),
        "changeKey": view.change_key,
        "categories": props.get("categories", []),
        "originalStartTimeZone": view.start_tz,
        "originalEndTimeZone": view.end_tz,
        "iCalUId": view.ical_uid,
        "uid": record.ical_uid,
        "reminderMinutesBeforeStart": props.get("reminderMinutesBeforeStart", 15),
        "isReminderOn": props.get("isReminderOn", True),
        "hasAttachments": False,
        "subject": props.get("subject") or "",
        "bodyPreview": body_text[:255],
        "importance": props.get("importance", "normal"),
        "sensitivity": props.get("sensitivity", "normal"),
        "isAllDay": record.is_all_day,
        "isCancelled": False,
        "isOrganizer": True,
        "responseRequested": props.get("responseRequested", True),
        "seriesMasterId": view.series_master_id(options.immutable),
        "showAs": props.get("showAs", "busy"),
        "type": view.type,
        "webLink": f"https://outlook.office365.com/owa/?itemid={view.id(False)}&exvsurl=1&path=/calendar/item",
        "onlineMeetingUrl": None,
        "isOnlineMeeting": props.get("isOnlineMeeting", False),
        "onlineMeetingProvider": props.get("onlineMeetingProvider", "unknown"),
        "allowNewTimeProposals": props.get("allowNewTimeProposals", True),
        "isDraft": False,
        "hideAttendees": props.get("hideAttendees", False),
        "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
        "body": body,
        "start": _when(view, "start", options),
        "end": _when(view, "end", options),
        "location": props.get("location") or {"displayName": "", "locationType": "default", "uniqueIdType": "unknown"},
        "locations": props.get("locations", []),
        "recurrence": record.recurrence if view.type == "seriesMaster" else None,
        "attendees": props.get("attendees", []),
        "organizer": props.get("organizer") or {"emailAddress": {"name": owner.display_name, "address": address}},
        "onlineMeeting": None,
    }
    if record.transaction_id is not None and view.original_start is None:
        doc["transactionId"] = record.transaction_id
    doc["singleValueExtendedProperties"] = ext_items(view.ext)
    return doc


def render_stub(view: EventView, options: RenderOptions) -> dict[str, Any]:
    """An occurrence as calendarView/delta lists it: identity and times only (no subject, showAs,
    sensitivity, body or changeKey; microsoft-graph-docs #7632, #22197, #1716, docs-contrib #34)."""
    return {
        "@odata.etag": f'W/"{view.change_key}"',
        "id": view.id(options.immutable),
        "type": view.type,
        "seriesMasterId": view.series_master_id(options.immutable),
        "start": _when(view, "start", options),
        "end": _when(view, "end", options),
    }


def shape(doc: dict[str, Any], options: RenderOptions, ext_key: Any) -> dict[str, Any]:
    """Apply $expand (extended properties are hidden unless expanded) and $select."""
    ext = doc.pop("singleValueExtendedProperties", [])
    if options.expand_ext is not None:
        chosen = [item for item in ext if evaluate(options.expand_ext, item, ext_key)]
        if chosen:
            doc["singleValueExtendedProperties"] = [{"id": i["id"], "value": i["value"]} for i in chosen]
    if options.select is not None:
        keep = {"@odata.etag", "id", *options.select}
        if "singleValueExtendedProperties" in doc:
            keep.add("singleValueExtendedProperties")
        doc = {k: v for k, v in doc.items() if k in keep}
    if options.context:
        doc = {"@odata.context": options.context, **doc}
    return doc
