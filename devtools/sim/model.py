"""The simulation's oracle: what every calendar and the board must hold, computed from what people did.

"Both sides agree" is not enough: they can agree on the wrong thing (a description that never reaches
Outlook, a conflict the wrong side won, an item that lost its show-as). So the actors write down each
action (`ActorLog`: every planner's version of an appointment, every person's edit or deletion of the
connector's event, every resource's settings, the policies of the run), and at quiescence this model
computes from that log alone what each calendar and the board must show, field by field, and compares
the world with it (`check_model`).

The model is written apart from the connector: its own reading of the documented mapping (README, "How the
sync behaves"), its own time-zone arithmetic, its own reading of the policies. Where the outcome depends on
a race the model cannot see (a person's edit and a planner's change both in flight), it allows each outcome
the documented rules allow for that race, and nothing else:
- `CONFLICT_POLICY=board` with `OUTLOOK_EDIT_POLICY` `restore_outlook` or `ignore`: the board keeps exactly
  the planner's last version, whatever people do in Outlook.
- `update_planning`: a person's edit made after the planner's last change may become the board's version.
- `CONFLICT_POLICY=outlook`: a person's edit may win over a planner's change made before it was synced, so
  any edit since the planner's last-but-one change may be the board's version.
- The connector's event shows the board's final version, except under `ignore` (and for deletions under
  `update_planning`), where a person's last edit or deletion made after the planner's last change stays.
Outlook items belong to their mailbox: the board shows each one exactly as the resource's final settings
say (filters, private items hidden / masked / shown), with its times in the mailbox's zone when all-day.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

PRIVATE_SUBJECT = "Private appointment"  # README: a masked item shows its time only, under this subject
SHOW_AS_CODES = {"free": 1, "tentative": 2, "busy": 3, "oof": 4, "workingElsewhere": 5, "unknown": 6}
SENSITIVITY_CODES = {"normal": 1, "personal": 2, "private": 3, "confidential": 4}
IMPORTANCE_TO_OUTLOOK = {0: "normal", 1: "high", 2: "low"}  # Dime.Scheduler: Medium=0, High=1, Low=2
IMPORTANCE_TO_BOARD = {"normal": 0, "high": 1, "low": 2}
DEFAULT_SHOW_AS = frozenset({"tentative", "busy", "oof", "workingElsewhere"})  # everything but free
ALL_SENSITIVITIES = frozenset(SENSITIVITY_CODES)
# The model's own table of the mailbox zones the simulation draws (Windows names, as Graph gives them).
ZONES = {"UTC": "UTC", "W. Europe Standard Time": "Europe/Berlin", "E. South America Standard Time": "America/Sao_Paulo",
         "Pacific Standard Time": "America/Los_Angeles", "India Standard Time": "Asia/Kolkata",
         "New Zealand Standard Time": "Pacific/Auckland", "Eastern Standard Time": "America/New_York",
         "Nepal Standard Time": "Asia/Kathmandu", "Chatham Islands Standard Time": "Pacific/Chatham",
         "Morocco Standard Time": "Africa/Casablanca"}
# Days when clocks change in the zones above (US 8 March, Europe 29 March, Chatham and New Zealand 5 April).
DST_DAYS = (date(2026, 3, 8), date(2026, 3, 29), date(2026, 4, 5))


@dataclass(frozen=True)
class Version:
    """The synced fields of one side of a pair, as a person would compare them."""

    subject: str
    body: str
    start: datetime
    end: datetime

    def minute(self) -> tuple[str, str, str, str]:
        return (self.subject, self.body.strip(), f"{self.start:%Y-%m-%dT%H:%M}", f"{self.end:%Y-%m-%dT%H:%M}")


@dataclass(frozen=True)
class PlannerVersion:
    """A planner's appointment as the planner left it (the actor's own account, not the board's)."""

    at: float
    version: Version
    category: str | None
    importance: int
    resources: frozenset[str]


@dataclass(frozen=True)
class PersonEdit:
    """A person's edit (or deletion) of the connector's event, and the event right after it."""

    at: float
    event: Mapping[str, Any] | None = None  # None: deleted
    tenure: int = 0  # which of the resource's mailboxes it was made in (`ActorLog.tenure`)

    @property
    def deleted(self) -> bool:
        return self.event is None


@dataclass(frozen=True)
class Settings:
    """A resource's settings as the resource last saved them (the defaults until then)."""

    sync_to_planning: bool = True
    show_as: frozenset[str] = DEFAULT_SHOW_AS
    sensitivity: frozenset[str] = ALL_SENSITIVITIES
    private_items: str = "masked"

    def to_json(self) -> dict[str, Any]:
        return {"syncToPlanning": self.sync_to_planning, "showAs": sorted(self.show_as),
                "sensitivity": sorted(self.sensitivity), "privateItems": self.private_items}


@dataclass
class ActorLog:
    """What the actors did, in order, under which policies: the only input of the model."""

    conflict_policy: str = "board"
    edit_policy: str = "restore_outlook"
    planner: dict[str, list[PlannerVersion | None]] = field(default_factory=dict)  # None: deleted
    person: dict[tuple[str, str], list[PersonEdit]] = field(default_factory=dict)  # (guid, resource)
    settings: dict[str, Settings] = field(default_factory=dict)
    zones: dict[str, str] = field(default_factory=dict)  # resource → mailbox zone (Windows name)
    both_at_once: dict[str, float] = field(default_factory=dict)  # guid → when a person and the planner raced
    # Every version the board held, the planner's and those the connector took from Outlook (by the policies).
    history: dict[str, list[PlannerVersion]] = field(default_factory=dict)
    # Each resource's mailbox (Graph user id) now, and how many times it changed: a person's edit or deletion
    # in a mailbox the resource has left says nothing about the events in its new one.
    mailboxes: dict[str, str] = field(default_factory=dict)
    tenure: dict[str, int] = field(default_factory=dict)
    # When the connector wrote one of the appointment's events (Graph's own account): what overwrote an edit.
    connector_writes: dict[str, list[float]] = field(default_factory=dict)

    def planned(self, at: float, guid: str, version: Version, category: str | None, importance: int,
                resources: Iterable[str]) -> None:
        made = PlannerVersion(at, version, category, importance, frozenset(resources))
        before = (self.planner.get(guid) or [None])[-1]
        if before is not None and (before.version.minute(), before.category, before.importance, before.resources) == \
                (version.minute(), category, importance, made.resources):
            return  # a change that changes nothing (a retitle to the same title) is no change
        self.planner.setdefault(guid, []).append(made)
        self.history.setdefault(guid, []).append(made)

    def board_took(self, at: float, guid: str, version: Version, category: str | None, importance: int,
                   resources: Iterable[str]) -> None:
        """The connector wrote a person's version onto the board (CONFLICT_POLICY=outlook, update_planning)."""
        self.history.setdefault(guid, []).append(PlannerVersion(at, version, category, importance, frozenset(resources)))

    def connector_wrote(self, guid: str, at: float) -> None:
        self.connector_writes.setdefault(guid, []).append(at)

    def deleted(self, guid: str) -> None:
        self.planner.setdefault(guid, []).append(None)

    def person_did(self, guid: str, resource_no: str, edit: PersonEdit) -> None:
        self.person.setdefault((guid, resource_no), []).append(edit)

    def mailbox_changed(self, resource_no: str, user_id: str, zone_name: str) -> None:
        """The resource's email now names another mailbox (in its own zone)."""
        self.mailboxes[resource_no] = user_id
        self.zones[resource_no] = zone_name
        self.tenure[resource_no] = self.tenure.get(resource_no, 0) + 1

    def edits_in_mailbox(self, guid: str, resource_no: str) -> list[PersonEdit]:
        """The person's edits of the resource's event in the mailbox it has now."""
        now = self.tenure.get(resource_no, 0)
        return [e for e in self.person.get((guid, resource_no)) or [] if e.tenure == now]

    def last(self, guid: str) -> PlannerVersion | None:
        versions = self.planner.get(guid) or [None]
        return versions[-1]

    def settings_of(self, resource_no: str) -> Settings:
        return self.settings.get(resource_no, Settings())


# -- the documented mapping, as the model reads it ---------------------------------------------------
def all_day_span(start: datetime, end: datetime) -> bool:
    """The board keeps all-day appointments at UTC midnights, a day or more apart (no flag in the payload)."""
    return start.time() == end.time() == time() and (end - start).days >= 1


def event_version(event: Mapping[str, Any]) -> Version:
    """An Outlook event's synced fields as the connector reads them back (times in UTC, all-day as dates)."""
    return Version(str(event.get("subject") or ""), str((event.get("body") or {}).get("content") or ""),
                   _utc(event["start"]["dateTime"]), _utc(event["end"]["dateTime"]))


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text[:19]).replace(tzinfo=UTC)


def zone(name: str) -> Any:
    iana = ZONES.get(name, name)
    return UTC if iana == "UTC" else ZoneInfo(iana)


def local_midnight(day: date, zone_name: str) -> datetime:
    return datetime.combine(day, time(), zone(zone_name)).astimezone(UTC)


def board_fields(event: Mapping[str, Any], settings: Settings, zone_name: str) -> dict[str, Any]:
    """What the board must show for a person's own Outlook item (Outlook wins for its own items)."""
    sensitivity = str(event.get("sensitivity") or "normal")
    masked = sensitivity in ("private", "confidential") and settings.private_items == "masked"
    version = event_version(event)
    start, end = version.start, version.end
    if event.get("isAllDay"):  # dates of the mailbox: its local midnights
        start, end = local_midnight(start.date(), zone_name), local_midnight(end.date(), zone_name)
    return {"subject": PRIVATE_SUBJECT if masked else version.subject, "body": "" if masked else version.body.strip(),
            "start": f"{start:%Y-%m-%dT%H:%M}", "end": f"{end:%Y-%m-%dT%H:%M}",
            "show_as": SHOW_AS_CODES.get(str(event.get("showAs")), 6), "sensitivity": SENSITIVITY_CODES[sensitivity],
            "importance": IMPORTANCE_TO_BOARD.get(str(event.get("importance") or "normal"), 0),
            "categories": [] if masked else list(event.get("categories") or [])}


def passes(event: Mapping[str, Any], settings: Settings) -> bool:
    """Whether a person's own item belongs on the board under the resource's settings."""
    sensitivity = str(event.get("sensitivity") or "normal")
    return (settings.sync_to_planning and not event.get("isCancelled") and event.get("type") != "seriesMaster"
            and str(event.get("showAs")) in settings.show_as and sensitivity in settings.sensitivity
            and not (sensitivity in ("private", "confidential") and settings.private_items == "hidden"))


def outlook_fields(version: Version, category: str | None, importance: int) -> dict[str, Any]:
    """What the connector's event must show for a planner's version (README: the documented mapping)."""
    all_day = all_day_span(version.start, version.end)
    return {"subject": version.subject, "body": version.body.strip(), "isAllDay": all_day,
            "start": f"{version.start:%Y-%m-%dT%H:%M}" if not all_day else f"{version.start:%Y-%m-%d}",
            "end": f"{version.end:%Y-%m-%dT%H:%M}" if not all_day else f"{version.end:%Y-%m-%d}",
            "showAs": "busy", "importance": IMPORTANCE_TO_OUTLOOK.get(importance, "normal"),
            "categories": [category] if category else []}


def shown_in_outlook(event: Mapping[str, Any]) -> dict[str, Any]:
    version = event_version(event)
    all_day = bool(event.get("isAllDay"))
    return {"subject": version.subject, "body": version.body.strip(), "isAllDay": all_day,
            "start": f"{version.start:%Y-%m-%dT%H:%M}" if not all_day else f"{version.start:%Y-%m-%d}",
            "end": f"{version.end:%Y-%m-%dT%H:%M}" if not all_day else f"{version.end:%Y-%m-%d}",
            "showAs": event.get("showAs"), "importance": event.get("importance") or "normal",
            "categories": list(event.get("categories") or [])}


# -- what may stand at the end ------------------------------------------------------------------------
def board_versions(log: ActorLog, guid: str) -> list[Version]:
    """Every version of a planner's appointment the board may show at the end (see the module's rules)."""
    versions = [v for v in log.planner.get(guid, []) if v is not None]
    last = versions[-1]
    raced = _raced_last(log, guid)
    if raced is not None and log.edit_policy != "ignore":
        # Both sides changed at once and nothing happened to the pair since: a conflict whatever path the
        # connector sees it by, and CONFLICT_POLICY alone decides (under `ignore` the person's edit may be
        # acknowledged first, and the planner's change then is no conflict).
        return [event_version(raced.event or {})] if log.conflict_policy == "outlook" else [last.version]
    allowed = [last.version]
    if log.conflict_policy == "outlook":
        since = versions[-2].at if len(versions) > 1 else 0.0
    elif log.edit_policy == "update_planning":
        since = last.at
    else:
        return allowed
    for (edited, _), edits in log.person.items():
        if edited == guid:
            allowed += [event_version(e.event) for e in edits if e.event is not None and e.at >= since]
    if log.conflict_policy == "outlook":
        allowed += _taken_unseen(log, guid)
    elif log.edit_policy == "update_planning":
        allowed += _merged_late(log, guid, last)
    return allowed


def _merged_late(log: ActorLog, guid: str, last: PlannerVersion) -> list[Version]:
    """Under update_planning, a person's edit the board took after planner changes of *other* fields (the
    edit reached the connector late): allowed when, field by field, the planner has not changed since the edit
    what the edit's version shows (nothing the planner did since is undone)."""
    found = []
    for (edited, _), edits in log.person.items():
        for e in edits if edited == guid else ():
            then = _version_at(log, guid, e.at)
            if e.event is None or then is None or e.at >= last.at:
                continue
            mine, before, now = event_version(e.event).minute(), then.version.minute(), last.version.minute()
            if all(m == n or b == n for m, b, n in zip(mine, before, now, strict=True)):
                found.append(event_version(e.event))
    return found


def _taken_unseen(log: ActorLog, guid: str) -> list[Version]:
    """Under CONFLICT_POLICY=outlook, a person's edit the connector saw only after several planner changes
    (crashes, outages) is a conflict against all of them, and Outlook wins: allowed when the board took that
    very version while the edit still stood in Outlook (no write of the connector's to the event in between)
    and the planner changed nothing since."""
    planned = [v.at for v in log.planner.get(guid, []) if v is not None]
    writes = log.connector_writes.get(guid, [])
    found = []
    for (edited, _), edits in log.person.items():
        for e in edits if edited == guid else ():
            if e.event is None:
                continue
            version = event_version(e.event).minute()
            for took in log.history.get(guid, []):
                if took.at >= e.at and took.version.minute() == version and took.at not in planned \
                        and not any(e.at < w < took.at for w in writes) and all(p <= took.at for p in planned):
                    found.append(took.version)
    return found


def _raced_last(log: ActorLog, guid: str) -> PersonEdit | None:
    """The person's edit of a race between a person and the planner that was the last thing done to the
    appointment and its events (None when there was none, or more came after it)."""
    at, versions = log.both_at_once.get(guid), [v for v in log.planner.get(guid, []) if v is not None]
    if at is None or not versions or versions[-1].at != at:
        return None
    before = versions[-2].at if len(versions) > 1 else 0.0
    edits = [e for (edited, _), es in log.person.items() if edited == guid for e in es if e.at >= before]
    # An edit of the event of a resource the planner's racing version no longer assigns races nothing: that
    # event is deleted, whatever the person wrote into it.
    raced = [e for (edited, resource), es in log.person.items() if edited == guid for e in es
             if e.at == at and e.event is not None and resource in versions[-1].resources]
    # Any other edit since the planner's version before may still be unseen: then several versions race.
    if len(raced) != 1 or len(edits) != 1:
        return None
    return raced[0]


def person_deleted(log: ActorLog, guid: str, resource_no: str) -> bool:
    """Whether a person's deletion of this event may stand at the end: it is the last thing done to the event,
    after the planner's last change, under a policy that leaves deletions alone (`ignore`, `update_planning`)."""
    edits = log.edits_in_mailbox(guid, resource_no)
    if not edits or not edits[-1].deleted or log.edit_policy not in ("ignore", "update_planning"):
        return False
    then = _version_at(log, guid, edits[-1].at)
    after = [v for v in log.history.get(guid, []) if v.at > edits[-1].at] + [v for v in log.planner.get(guid, [])
                                                                             if v is None]
    # A planner's change since that Outlook shows brings the event back. A re-assignment away and back may or
    # may not: the connector reads the appointment as it is, and may never see it without the resource.
    return then is not None and all(v is not None and all(_field(v, f) == _field(then, f) for f in FIELDS)
                                    for v in after) and (not after or resource_no in after[-1].resources)


def event_differences(log: ActorLog, guid: str, resource_no: str, expected: Mapping[str, Any],
                      actual: Mapping[str, Any]) -> list[str]:
    """How the connector's event differs from what it must show. Under `ignore` a person's edit of a field
    stays until the planner changes that field (the connector writes only what the planner changed since)."""
    wrong = {name: value for name, value in expected.items() if actual.get(name) != value}
    edits = [e for e in log.edits_in_mailbox(guid, resource_no) if e.event is not None]
    if wrong and edits and log.edit_policy == "ignore":
        kept = shown_in_outlook(edits[-1].event or {})
        final = (log.history.get(guid) or [None])[-1]
        before = _version_at(log, guid, edits[-1].at)
        for name in list(wrong):
            unchanged = final is not None and before is not None and _field(before, name) == _field(final, name)
            if unchanged and actual.get(name) == kept.get(name):
                del wrong[name]
    return [f"{resource_no}: event of {guid[:8]}: {name} is {actual.get(name)!r}, not {value!r}"
            for name, value in wrong.items()]


def _version_at(log: ActorLog, guid: str, at: float) -> PlannerVersion | None:
    """The board's version in force at `at`."""
    found = None
    for version in log.history.get(guid, []):
        if version.at <= at:
            found = version
    return found


FIELDS = ("subject", "body", "isAllDay", "start", "end", "showAs", "importance", "categories")


def _field(version: PlannerVersion, name: str) -> Any:
    return outlook_fields(version.version, version.category, version.importance)[name]


def diff(what: str, expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    return [f"{what}: {name} is {actual.get(name)!r}, not {value!r}" for name, value in expected.items()
            if actual.get(name) != value]
