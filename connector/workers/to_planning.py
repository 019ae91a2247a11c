"""The `exchange-changes` worker: one mailbox's calendar changes → the planning board.

One run per queue message, for one mailbox:
1. **Lease** (`connector/stores/cursors.py`): one writer per mailbox. A message that finds the lease held sets
   `Pending` and completes; the holder goes round once more, so no notification is lost.
2. **Round**: a delta query from the stored link; a *full* round (fresh delta over the window
   `SYNC_WINDOW_PAST_DAYS`..`SYNC_WINDOW_FUTURE_DAYS`) when the mailbox has no link yet, when asked
   (`full_resync`, lifecycle), when the stored token is refused (410 / `syncStateNotFound`), when the
   effective settings changed since the last full round (hash stored on the cursor), or when the
   last full round is older than `FULL_ROUND_EVERY` (the delta window is fixed by its first request,
   so it has to move along with time).
3. **Per item**: `CalendarEvent.from_graph` → `mappings.by_event` → `plan_item` (the pure decision in
   `connector/sync/to_planning.py`) → apply:
   UpsertOnBoard → `mboc_upsertExchangeAppointment`, then the BoardCopy (content hash) is saved;
   RemoveFromBoard → `mboc_deleteExchangeAppointment`, then the copy is deleted;
   RestoreOutlook → a `PlanningChange(event="restore")` for the planning → Outlook worker, which
   writes the planner's version back under the appointment's lease (PATCH, or a re-create with a
   pending copy if the event was deleted): this direction never writes a planner's event itself;
   UpdatePlanning → `mboc_upsertAppointment` of the planner's appointment;
   Unchanged with a new changeKey → the stored changeKey follows.
   The link is stored (checkpoint) only after every item of its page was applied, with what the round's
   end needs of that page (`RoundLog`: the items a full round saw, the removals waiting for the guard),
   so a round that dies or pauses goes on from its last page. After a full round, `plan_full_resync`
   removes the board copies whose Outlook item was not seen.
   **Budget**: a run reads at most `RUN_PAGES` pages in `RUN_TIME`; then it sends itself a follow-up
   message and leaves the lease with Pending set (`CursorStore.pause`): the next run goes on.
   **Mass-change guard**: the removals from the board are not applied as the items come but at the end
   of the round, all together (those of earlier pages read back from `RoundLog`). More than
   `MASS_CHANGE_MAX_ITEMS` of them, or any while a hold on this board waits for an admin, are *held*
   (`connector/stores/holds.py`) instead of removed; a full round keeps the hold equal to what is still
   gone and resolves it when nothing is. An admin's release asks for a full round, which removes what is
   still gone ("released by" the admin).
4. **Failures**: a transient one (Graph 429/5xx, Dime.Scheduler unavailable) aborts the round
   (the link stays at its last applied page); `handle_failure` re-enqueues the message after `Retry-After` and, after
   `WORK_MAX_ATTEMPTS`, parks it on `exchange-changes-poison` with a "failed" activity entry. A
   permanent failure of a single item (e.g. Dime.Scheduler rejects it) is recorded as failed for that
   item and the round goes on: one bad item never blocks a mailbox.
5. **Activity**: one entry per applied, skipped (filtered, or an ignored Outlook edit) or failed
   change, with resource, appointment GUID, event id, action, outcome, error and the latency from
   the notification's arrival. Never a subject, body or location: private content stays out of logs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from connector.errors import GraphError, PlanningError
from connector.messages import ExchangeChange, PlanningChange, ResourceCheck, SubscriptionLifecycle, message_kind
from connector.model import BoardImport, CalendarEvent, InvalidPayload, parse_utc
from connector.services import Services
from connector.stores.activity import ActivityEntry
from connector.stores.cursors import MAX_PENDING_ITEMS, NO_ROUND, CursorState, CursorStore, Lease, LeaseLost, RoundLog
from connector.stores.holds import RELEASED, HeldItem, HoldKind
from connector.stores.mappings import MappingStore, event_key
from connector.stores.queues import Sent, send_text
from connector.stores.registry import ResourceRecord, Status
from connector.stores.settings import settings_to_json
from connector.stores.storage import EXCHANGE_CHANGES_QUEUE, poison_queue_name
from connector.sync.conflicts import ConflictPolicy
from connector.sync.status import STAMP_PROPERTY_ID, BoardCopy, OutlookCopy, hashes_of, written_stamp
from connector.sync.to_planning import (
    Action,
    RemoveFromBoard,
    ResourceSettings,
    RestoreOutlook,
    Unchanged,
    UpdatePlanning,
    UpsertOnBoard,
    looks_edited,
    outlook_fields,
    plan_full_resync,
    plan_item,
)
from connector.workers.outlook_edits import conflict_account, planner_appointment, planner_changed, take_outlook_edit
from connector.workers.retry import Transient, classify, handle_failure
from connector.workers.series import SeriesCompleter

if TYPE_CHECKING:  # the gateway imports msgraph; this module is imported by the function app at start
    from connector.gateways.graph import DeltaPage

log = logging.getLogger(__name__)

FULL_ROUND_EVERY = timedelta(hours=24)
# One run's budget (pages read, and time: well inside the lease and the host's function timeout). A run
# that spends it stops after a checkpoint and a follow-up message goes on from there, so a mailbox whose
# changes keep coming (or whose delta pages never end) never holds an invocation for ever.
RUN_PAGES = 50
RUN_TIME = timedelta(minutes=3)
# An unknown removed item is looked at again this much later (a create's POST to its saved copy takes
# well under a second; throttling can stretch it to a few seconds).
RECHECK_REMOVED_SECONDS = 20
DIRECTION = "to_planning"


def _now() -> datetime:
    return datetime.now(UTC)


def _sent(noted: str) -> Sent:
    """A follow-up as the cursor row notes it ("<message id> <pop receipt>")."""
    message_id, _, receipt = noted.partition(" ")
    return Sent(EXCHANGE_CHANGES_QUEUE, message_id, receipt)


def settings_hash(settings: ResourceSettings, direction_enabled: bool, policy: str, time_zone: str = "UTC") -> str:
    """What a full round depends on: a change of it makes the next round a full one (the mailbox's
    time zone too: its all-day items move on the board)."""
    data = {"settings": settings_to_json(settings), "enabled": direction_enabled, "policy": policy}
    if time_zone != "UTC":  # keeps the digests of UTC mailboxes as they were
        data["timeZone"] = time_zone
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


def sync_window(now: datetime, past_days: int, future_days: int) -> tuple[datetime, datetime]:
    """The window of a fresh delta round, whole UTC days."""
    today = datetime.combine(now.astimezone(UTC).date(), time(), UTC)
    return today - timedelta(days=past_days), today + timedelta(days=future_days + 1)


def _may_overlap(starts_at: str, ends_at: str, start: datetime, end: datetime) -> bool:
    """Whether an event written for [starts_at, ends_at) (wall times, see `event_span`) may fall in the
    window; a day's slack covers all-day events at their mailbox's midnight. Unknown times: it may."""
    try:
        first = datetime.fromisoformat(starts_at).replace(tzinfo=UTC)
        last = datetime.fromisoformat(ends_at).replace(tzinfo=UTC)
    except ValueError:
        return True
    return first < end + timedelta(days=1) and last > start - timedelta(days=1)


def is_expired_token(exc: GraphError) -> bool:
    """A delta/next link Graph no longer honours: start over with a full round."""
    return exc.status == 410 or exc.code.lower() in ("syncstatenotfound", "resyncrequired") or (
        exc.status in (400, 404) and "syncstate" in str(exc).lower())


def latency_ms(received_at: str, now: datetime) -> int | None:
    try:
        return max(0, int((now - parse_utc(received_at, "received_at")).total_seconds() * 1000))
    except ValueError:
        return None


@dataclass
class RoundReport:
    full: bool = False
    pages: int = 0
    items: int = 0
    applied: int = 0
    failed: int = 0
    actions: dict[str, int] = field(default_factory=dict)
    held: int = 0  # removals held for an admin (mass-change guard)
    paused: bool = False  # the run's budget ended it part-way: the next run goes on from its checkpoint


@dataclass
class _Budget:
    """What one run may still do before it hands the mailbox to a follow-up message."""

    pages: int
    until: datetime

    def spent(self) -> bool:
        return self.pages <= 0 or _now() >= self.until


class _TokenExpired(Exception):
    """The stored delta/next link was refused (410 / syncStateNotFound): the round goes full."""


class ExchangeToPlanning:
    """Runs the rounds of one message (see the module docstring)."""

    def __init__(self, services: Services, owner: str | None = None) -> None:
        self.s = services
        self.owner = owner or uuid.uuid4().hex
        self.cursors = CursorStore(services.repositories.cursors)
        self.mappings: MappingStore = services.mappings
        self._series: SeriesCompleter  # set at the start of each round
        self._removals: dict[str, RemoveFromBoard] = {}  # the round's removals, applied at its end (guard)
        self._imports: dict[str, tuple[UpsertOnBoard, bool]] = {}  # the page's items for the board (`_flush`)
        self._looked_up: dict[str, OutlookCopy | BoardCopy | None] = {}  # the page's mappings, read side by side
        self._rechecks: list[str] = []  # unknown removed items to look at once more (see `_apply_raw`)
        self._rounds = RoundLog(services.repositories.cursors)
        self._budget = _Budget(RUN_PAGES, _now() + RUN_TIME)

    @staticmethod
    async def io(fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Blocking calls (Table Storage, the Dime.Scheduler SDK) run off the host's event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    # -- entry ---------------------------------------------------------------------------------
    async def handle(self, message: ExchangeChange) -> list[RoundReport]:
        record: ResourceRecord | None = await self.io(self.s.registry.by_user, message.user_id)
        if record is None or record.status != Status.TRACKED:
            log.info("exchange change for a mailbox that is not tracked: ignored")
            return []
        lease, again = await self.io(self.cursors.acquire_or_follow_up, message.user_id, self.owner,
                                     message.full_resync, message.event_ids)
        if lease is None:
            # A run is busy on this mailbox and goes round once more for us; should it have died, the
            # follow-up message takes over when its lease expires.
            if again is not None:
                delay = max(1, int((again - _now()).total_seconds()) + 1)
                sent = await self.io(self.s.work_queues.send_exchange_change,
                                     ExchangeChange(message.user_id, reason="follow-up",
                                                    correlation_id=message.correlation_id), delay)
                noted, replaced = await self.io(self.cursors.note_follow_up, message.user_id, again,
                                                f"{sent.message_id} {sent.pop_receipt}")
                if not noted:
                    await self.io(self.s.work_queues.cancel, sent)  # another one is noted, or the lease is free
                elif replaced:
                    await self.io(self.s.work_queues.cancel, _sent(replaced))
            return []
        reports: list[RoundReport] = []
        self._rechecks = []
        self._budget = _Budget(RUN_PAGES, _now() + RUN_TIME)
        try:
            while True:
                lease, report = await self._round(lease, record, message)
                reports.append(report)
                if report.paused:
                    await self._go_on_later(lease, message)
                    break
                lease, again = await self.io(self.cursors.finish, lease)
                if again and self._budget.spent():  # changes keep coming: the next run takes the next round
                    await self._go_on_later(lease, message)
                    break
                if not again:
                    break
            if lease.released_follow_up:  # the run finished well: the follow-up kept for its death is moot
                await self.io(self.s.work_queues.cancel, _sent(lease.released_follow_up))
        except LeaseLost:
            log.warning("resource %s: another run took this mailbox over; it carries on", record.resource_no)
            return reports
        except BaseException:
            await self.io(self.cursors.abandon, lease)
            raise
        if self._rechecks:  # sent once the rounds finished well: a round that dies sends none (its items stay)
            await self.io(self.s.work_queues.send_exchange_change,
                          ExchangeChange(record.user_id, reason="recheck", correlation_id=message.correlation_id,
                                         event_ids=["!" + i for i in dict.fromkeys(self._rechecks)][-MAX_PENDING_ITEMS:]),
                          RECHECK_REMOVED_SECONDS)
        await self.io(_note_sync, self.s, record.resource_no)
        return reports

    async def _go_on_later(self, lease: Lease, message: ExchangeChange) -> None:
        """The run's budget is spent: a follow-up message goes on where it stopped (sent before the lease is
        released with Pending set: a run that dies in between leaves the message, which waits for the lease)."""
        await self.io(self.s.work_queues.send_exchange_change,
                      ExchangeChange(lease.user_id, reason="continue", correlation_id=message.correlation_id), 1)
        await self.io(self.cursors.pause, lease)

    async def _items(self, lease: Lease, record: ResourceRecord, settings: ResourceSettings,
                     message: ExchangeChange, report: RoundReport) -> None:
        """Single items this round was handed (see `ExchangeChange.event_ids`): each read as it is now
        (gone = removed) and applied like a delta item, before the delta round."""
        for mark in lease.items:
            event_id = mark.removeprefix("!")
            raw = await self.s.exchange.get_event(record.user_id, event_id)
            report.items += 1
            await self._apply_raw(raw or {"id": event_id, "@removed": {"reason": "deleted"}}, record, settings,
                                  message, report, full=False, look_again=not mark.startswith("!"))
        await self._flush(record, message, report)

    # -- one round -----------------------------------------------------------------------------
    async def _round(self, lease: Lease, record: ResourceRecord, message: ExchangeChange) -> tuple[Lease, RoundReport]:
        config = self.s.settings
        settings = await self.io(self.s.resource_settings.effective, record.resource_no)
        digest = settings_hash(settings, config.sync_to_planning_enabled, config.outlook_edit_policy.value,
                               record.tracked.time_zone)
        state = lease.state
        stale = state.last_full_at is None or _now() - state.last_full_at > FULL_ROUND_EVERY
        full = state.full_required or not state.link or state.settings_hash != digest or stale
        # A round part-way (its run used its budget, or died) goes on from its page, unless what it
        # applies changed since (then a full round starts afresh: it sees everything anyway).
        resume = bool(state.round_id and state.link) and (
            (state.round_full and state.round_hash == digest) or (not state.round_full and not full))
        try:
            if resume or not full:
                return await self._pages(lease, record, settings, message, digest,
                                         full=state.round_full if resume else False, resume=resume)
        except _TokenExpired:
            log.info("delta token of resource %s expired: full resync", record.resource_no)
            lease = await self.io(self.cursors.checkpoint, lease, full_required=True, **NO_ROUND)
        try:
            return await self._pages(lease, record, settings, message, digest, full=True)
        except _TokenExpired as exc:  # a fresh round's own page link refused: the retry starts afresh
            await self.io(self.cursors.checkpoint, lease, full_required=True, **NO_ROUND)
            raise Transient(f"the delta paging of resource {record.resource_no} was refused: {exc}") from None

    def _window(self, state: CursorState, resume: bool) -> tuple[datetime, datetime]:
        """A full round's window: fixed by its first request (a resumed round's is on the cursor)."""
        if resume and state.round_window:
            start, _, end = state.round_window.partition("|")
            return datetime.fromisoformat(start), datetime.fromisoformat(end)
        return sync_window(_now(), self.s.settings.sync_window_past_days, self.s.settings.sync_window_future_days)

    async def _pages(self, lease: Lease, record: ResourceRecord, settings: ResourceSettings,
                     message: ExchangeChange, digest: str, full: bool, resume: bool = False) -> tuple[Lease, RoundReport]:
        """One round, page by page, each page checkpointed (its link, and in `RoundLog` what the round's end
        needs of it), until its end or the run's budget (`report.paused`: the next run goes on from here)."""
        report = RoundReport(full=full)
        self._series = SeriesCompleter(self.s.exchange, record.user_id)  # masters read once per round
        self._removals, self._imports, self._looked_up = {}, {}, {}
        state = lease.state
        start, end = self._window(state, resume)
        round_id, done = (state.round_id, state.round_pages) if resume else (uuid.uuid4().hex[:12], 0)
        if resume:
            page = await self._delta(record.user_id, state.link)
        elif full:
            page = await self.s.exchange.delta_page(record.user_id, start=start, end=end)
        else:
            page = await self._delta(record.user_id, lease.state.link)
        self._budget.pages -= 1
        if lease.items:
            await self._items(lease, record, settings, message, report)
            # An item whose removal waits for the round's end stays on the row till then.
            waiting = [mark for mark in lease.items if mark.removeprefix("!") in self._removals]
            lease = await self.io(self.cursors.items_done, lease, waiting)
        seen: set[str] = set()
        kept: set[str] = set()  # removals on record in `RoundLog` already
        wrote = resume  # whether the mailbox has page rows to drop at the end
        while True:
            report.pages += 1
            page_seen: set[str] = set()
            await self._look_up(record.user_id, page.items)
            for raw in page.items:
                report.items += 1
                event_id = await self._apply_raw(raw, record, settings, message, report, full)
                if event_id:
                    page_seen.add(event_id)
            await self._flush(record, message, report)  # before the checkpoint: the page is applied
            self._looked_up = {}
            seen |= page_seen
            if page.next_link is None:
                break
            # The page is applied: what the round's end needs of it (the items a full round saw, the
            # removals that wait for the guard), then where to go on (the commit point).
            done += 1
            removals = {k: r.reason for k, r in self._removals.items() if k not in kept}
            if full or removals:
                await self.io(self._rounds.save_page, record.user_id, round_id, done, sorted(page_seen), removals)
                kept |= removals.keys()
                wrote = True
            lease = await self.io(self.cursors.checkpoint, lease, link=page.next_link, round_id=round_id,
                                  round_full=full, round_pages=done, round_hash=digest if full else "",
                                  round_window=f"{start.isoformat()}|{end.isoformat()}" if full else "")
            if self._budget.spent():
                report.paused = True
                return lease, report
            page = await self._delta(record.user_id, page.next_link)
            self._budget.pages -= 1
        if resume:  # pages applied by earlier runs, or before a crash: their part of the round's end
            earlier = await self.io(self._rounds.pages, record.user_id, round_id)
            seen |= earlier.seen
            await self._removals_of_earlier_pages(record.user_id, earlier.removals)
        now = _now()
        if full:
            copies = await self.io(self.mappings.board_copies, record.user_id)
            for removal in plan_full_resync(seen, copies):
                await self._apply(removal, None, record, message, report, full)
            await self._unseen_planner_events(seen, start, end, record, settings, message, report)
        await self._remove(record, message, report, full)
        if full:
            lease = await self.io(self.cursors.checkpoint, lease, link=page.delta_link or "", full_required=False,
                                  settings_hash=digest, last_full_at=now, last_round_at=now, **NO_ROUND)
        else:
            lease = await self.io(self.cursors.checkpoint, lease, link=page.delta_link or lease.state.link,
                                  last_round_at=now, **NO_ROUND)
        if wrote:
            await self.io(self._rounds.drop, record.user_id)
        return lease, report

    async def _removals_of_earlier_pages(self, user_id: str, removals: dict[str, str]) -> None:
        """The removals that earlier pages left waiting for the round's end, as board copies again (one
        still on record; one gone meanwhile needs nothing)."""
        missing = {k: why for k, why in removals.items() if k not in self._removals}
        if not missing:
            return
        for copy in await self.io(self.mappings.board_copies, user_id):
            if copy.event_id in missing:
                self._removals.setdefault(copy.event_id, RemoveFromBoard(copy, missing[copy.event_id]))

    async def _unseen_planner_events(self, seen: set[str], start: datetime, end: datetime, record: ResourceRecord,
                                     settings: ResourceSettings, message: ExchangeChange, report: RoundReport) -> None:
        """The connector's events the full round's window should have shown but did not: each is read,
        and one that is gone is a deletion like any other (restored by `OUTLOOK_EDIT_POLICY`). A deletion
        whose notification never came (the mailbox untracked meanwhile, a lost message) is found here."""
        for event_id, starts_at, ends_at in await self.io(self.mappings.planner_events, record.user_id):
            if not event_id or event_id in seen or not _may_overlap(starts_at, ends_at, start, end):
                continue
            raw = await self.s.exchange.get_event(record.user_id, event_id)
            report.items += 1
            await self._apply_raw(raw or {"id": event_id, "@removed": {"reason": "deleted"}}, record, settings,
                                  message, report, full=True)

    async def _look_up(self, user_id: str, items: list[Any]) -> None:
        """What each item of a page maps to, read side by side before the page is applied (one writer
        per mailbox holds its board copies; the planning worker's own rows are checked again where
        they are written: `save_outlook_copy_if`, the restore under the appointment's lease)."""
        ids = list(dict.fromkeys(str(raw["id"]) for raw in items if isinstance(raw, dict) and raw.get("id")))
        found = await asyncio.gather(*(self.io(self.mappings.by_event, user_id, event_id) for event_id in ids))
        self._looked_up = dict(zip(ids, found, strict=True))

    async def _delta(self, user_id: str, link: str) -> DeltaPage:
        try:
            return await self.s.exchange.delta_page(user_id, link=link)
        except GraphError as exc:
            if is_expired_token(exc):
                raise _TokenExpired(str(exc)) from None
            raise

    async def _apply_raw(self, raw: Any, record: ResourceRecord, settings: ResourceSettings,
                         message: ExchangeChange, report: RoundReport, full: bool, look_again: bool = False) -> str | None:
        """Plan and apply one delta item; returns its id when it is a live item (for the full round)."""
        if isinstance(raw, dict):
            self._series.remember(raw)
            raw = await self._series.complete(raw)  # an occurrence stub gets its master's fields
        try:
            event = CalendarEvent.from_graph(raw)
        except InvalidPayload as exc:
            event_id = raw.get("id", "") if isinstance(raw, dict) else ""
            report.failed += 1
            await self._log(record, message, "import", "failed", event_id=str(event_id), error=str(exc))
            return str(event_id) or None
        if event.id in self._imports:  # met twice before its page was flushed: the first must be on record
            await self._flush(record, message, report)
        if event.id in self._looked_up:  # read with its page's others (once: a second sighting reads again)
            mapped = self._looked_up.pop(event.id)
        else:
            mapped = await self.io(self.mappings.by_event, record.user_id, event.id)
        own = mapped if isinstance(mapped, OutlookCopy) else None
        action: Action
        if own is not None and await self._own_write_unseen(record, event, own):
            action = Unchanged("the connector's own write, whose answer was lost: the planning worker's retry "
                               "finishes it")
        else:
            action = plan_item(event, record.tracked, settings, mapped if isinstance(mapped, BoardCopy) else None,
                               own, self.s.settings.outlook_edit_policy, self.s.settings.sync_to_planning_enabled)
        await self._apply(action, event, record, message, report, full, known=mapped is not None)
        if not full and event.type == "seriesMaster" and not event.removed:
            await self._reapply_series(event.id, record, settings, message, report)
        elif not full and event.removed and mapped is None:
            await self._series_gone(event.id, record, message, report)
            if look_again:
                # Possibly the planner's event deleted the moment it appeared, before the planning →
                # Outlook worker saved which event it is: look once more when that write has landed.
                self._rechecks.append(event.id)
        return None if event.removed else event.id

    async def _own_write_unseen(self, record: ResourceRecord, event: CalendarEvent, copy: OutlookCopy) -> bool:
        """Whether the connector's event that looks edited holds a write of ours whose answer was lost (its
        stamp says every field is as the connector wrote it) rather than a person's edit: one read, only for
        an event that looks edited."""
        time_zone = record.tracked.time_zone
        if not looks_edited(event, copy, time_zone):
            return False
        raw = await self.s.exchange.get_event(record.user_id, event.id, STAMP_PROPERTY_ID)
        if raw is None:
            return False
        try:
            seen = hashes_of(outlook_fields(CalendarEvent.from_graph(raw), time_zone))
        except InvalidPayload:
            return False
        return seen == written_stamp(raw)

    async def _reapply_series(self, master_id: str, record: ResourceRecord, settings: ResourceSettings,
                              message: ExchangeChange, report: RoundReport) -> None:
        """A changed master: plan each current occurrence and exception again (their stubs do not come
        back), and take off the board those of the series that no longer exist (see workers/series.py)."""
        start, end = sync_window(_now(), self.s.settings.sync_window_past_days, self.s.settings.sync_window_future_days)
        live: set[str] = set()
        for raw in await self._series.occurrences_of(master_id, start, end):
            event_id = await self._apply_raw(raw, record, settings, message, report, full=False)
            if event_id:
                live.add(event_id)
        await self._flush(record, message, report)  # the series index must hold what was just imported
        for copy in await self.io(self.mappings.series_copies, record.user_id, master_id):
            if copy.event_id not in live:
                await self._apply(RemoveFromBoard(copy, "no longer an occurrence of its series in Outlook"), None,
                                  record, message, report, False)

    async def _series_gone(self, event_id: str, record: ResourceRecord, message: ExchangeChange,
                           report: RoundReport) -> None:
        """A removed item that is not on the board itself may be a series master: its occurrences go."""
        await self._flush(record, message, report)
        for copy in await self.io(self.mappings.series_copies, record.user_id, event_id):
            await self._apply(RemoveFromBoard(copy, "its series was deleted in Outlook"), None, record, message,
                              report, False)

    async def _remove(self, record: ResourceRecord, message: ExchangeChange, report: RoundReport, full: bool) -> None:
        """The round's removals from the board, under the mass-change guard (see the module docstring)."""
        await self._flush(record, message, report)  # the full round's last look-ups (unseen events) included
        holds = self.s.holds
        removals, self._removals = list(self._removals.values()), {}
        if not removals and not full:
            return
        rows = await self.io(holds.items, HoldKind.BOARD, record.user_id)
        if not removals and not rows:
            return
        by_key = {event_key(r.copy.event_id): r for r in removals}
        wanted = {key: HeldItem(key, "", event_id=r.copy.event_id, appointment_guid=r.copy.appointment_guid)
                  for key, r in by_key.items()}
        reasons = [r.reason for r in removals]

        def describe(count: int) -> str:
            reason = max(set(reasons), key=reasons.count) if reasons else "no longer in Outlook"
            return (f"Remove {count} of {record.resource_no}'s Outlook items from the planning board "
                    f"(mostly: {reason})")

        decision = await self.io(holds.guard_items, HoldKind.BOARD, record.user_id, record.resource_no, wanted,
                                 self.s.settings.mass_change.max_items, describe, _now(), full, record.user_id, rows)
        used = []
        for key, removal in by_key.items():
            if key not in decision.allowed:
                continue
            released_by = decision.allowed[key]
            if released_by:
                removal = replace(removal, reason=f"{removal.reason}; released by {released_by}")
                used.append(key)
            await self._attempt(removal, None, record, message, report, full, True)
        report.held = len(decision.held)
        if decision.created and decision.hold is not None:
            await self._log(record, message, "hold", "held", detail=f"hold {decision.hold.hold_id}: {decision.hold.what}; "
                                                                 "an admin releases or discards it on the monitor")
        if decision.resolved is not None:
            await self._log(record, message, "resolve", "applied", detail=f"hold {decision.resolved.hold_id} no longer "
                                                                          f"needed (nothing left to remove): "
                                                                          f"{decision.resolved.what}")
        # Allowances used, or (after a full round, which saw everything) no longer needed.
        consumed = {k for k, item in rows.items() if item.state == RELEASED} if full else set(used)
        if consumed:
            await self.io(holds.consume, HoldKind.BOARD, record.user_id, consumed)
            referenced = {item.hold_id for k, item in rows.items() if k not in consumed}
            await self.io(holds.forget_released, (HoldKind.BOARD,), referenced, record.user_id)

    async def _apply(self, action: Action, event: CalendarEvent | None, record: ResourceRecord,
                     message: ExchangeChange, report: RoundReport, full: bool, known: bool = True) -> None:
        name = type(action).__name__
        report.actions[name] = report.actions.get(name, 0) + 1
        if isinstance(action, RemoveFromBoard):  # counted with the round's others at its end (`_remove`)
            self._removals.setdefault(action.copy.event_id, action)
            return
        if isinstance(action, UpsertOnBoard):  # imported with the page's others (`_flush`)
            self._imports[action.event.id] = (action, known)
            return
        await self._attempt(action, event, record, message, report, full, known)

    async def _attempt(self, action: Action, event: CalendarEvent | None, record: ResourceRecord,
                       message: ExchangeChange, report: RoundReport, full: bool, known: bool) -> None:
        try:
            await self._run(action, event, record, message, report, full, known)
        except (PlanningError, GraphError) as exc:
            if exc.transient:
                raise
            # Refused for this one item (e.g. Dime.Scheduler rejects it): parked as itself, the mailbox moves on.
            await self._park_item(action, event, record, message, report, str(exc))
        except InvalidPayload as exc:  # the planner's appointment could not be read back
            await self._park_item(action, event, record, message, report, str(exc))

    async def _flush(self, record: ResourceRecord, message: ExchangeChange, report: RoundReport) -> None:
        """The page's items for the board, together: their marks (side by side, each its own partition),
        hashless copies for the first imports (one transaction), one `/import` for them all, their copies
        (one transaction) and activity entries; the same steps, in the same order, as one item's in `_run`.
        A batch Dime.Scheduler refuses goes again one item at a time: the refused item is parked as itself
        and the others are applied (their imports are upserts, so one already applied is no harm)."""
        pending, self._imports = list(self._imports.values()), {}
        if len(pending) <= 1:
            for action, known in pending:
                await self._attempt(action, action.event, record, message, report, False, known)
            return
        mappings = self.mappings
        await asyncio.gather(*(self.io(mappings.mark_outlook_item, action.appointment_guid, record.user_id,
                                       action.event.id) for action, _ in pending))
        fresh = [replace(_board_copy(action, record), content_hash="") for action, known in pending if not known]
        fresh += [action.widened for action, known in pending if known and action.widened is not None]
        if fresh:
            await self.io(mappings.save_board_copies, record.user_id, fresh)
        try:
            await self.io(self.s.planning.upsert_exchange_appointments, [
                BoardImport(action.appointment_guid, action.event.id, record.email, action.item, action.replace)
                for action, _ in pending])
        except PlanningError as exc:
            if exc.transient:
                raise
            for action, known in pending:
                await self._attempt(action, action.event, record, message, report, False, known)
            return
        await self.io(mappings.save_board_copies, record.user_id, [_board_copy(action, record) for action, _ in pending])
        report.applied += len(pending)
        await self._record([self._entry(record, message, "update" if known else "create", "applied",
                                        appointment_guid=action.appointment_guid, event_id=action.event.id)
                            for action, known in pending])

    async def _park_item(self, action: Action, event: CalendarEvent | None, record: ResourceRecord,
                         message: ExchangeChange, report: RoundReport, error: str) -> None:
        """The delta link moves past a failed item, so the item itself goes to the poison queue: the
        monitor shows it and its Retry applies that item again (`ExchangeChange.event_ids`)."""
        report.failed += 1
        ids = _ids(action, event)
        detail = ""
        if ids.get("event_id"):
            parked = ExchangeChange(record.user_id, reason="item", correlation_id=message.correlation_id,
                                    event_ids=["!" + ids["event_id"]])
            await self.io(send_text, self.s.storage, poison_queue_name(EXCHANGE_CHANGES_QUEUE), parked.to_json())
            detail = f"parked on {poison_queue_name(EXCHANGE_CHANGES_QUEUE)}; Retry on the monitor applies this item again"
        await self._log(record, message, _verb(action), "failed", **ids, detail=detail, error=error)

    async def _run(self, action: Action, event: CalendarEvent | None, record: ResourceRecord,
                   message: ExchangeChange, report: RoundReport, full: bool, known: bool) -> None:
        planning, mappings = self.s.planning, self.mappings
        if isinstance(action, UpsertOnBoard):
            # Marked first: the import's webhook does not say the item came from Outlook, and it may
            # reach the planning worker before the import call returns.
            await self.io(mappings.mark_outlook_item, action.appointment_guid, record.user_id, action.event.id)
            copy = _board_copy(action, record)
            if known and action.widened is not None:
                # The import may put values in fields the copy does not record: say so first (hash unchanged).
                await self.io(mappings.save_board_copy, action.widened)
            if not known:
                # Before a first import, a copy with no hash: if the import takes effect but its answer is
                # lost, the item's removal still finds the board item to take away (and a later round
                # imports it again, since no hash matches).
                await self.io(mappings.save_board_copy, replace(copy, content_hash=""))
            try:
                await self.io(planning.upsert_exchange_appointment, action.appointment_guid, action.event.id,
                              record.email, action.item, action.replace)
            except PlanningError as exc:
                if not known and not exc.transient:  # refused, so not applied: nothing is on the board
                    await self.io(mappings.delete_board_copy, replace(copy, content_hash=""))
                raise
            await self.io(mappings.save_board_copy, copy)
            report.applied += 1
            await self._log(record, message, "update" if known else "create", "applied",
                            appointment_guid=action.appointment_guid, event_id=action.event.id)
        elif isinstance(action, RemoveFromBoard):
            copy = action.copy
            await self.io(planning.delete_exchange_appointment, copy.appointment_guid, copy.event_id, record.email)
            await self.io(mappings.delete_board_copy, copy)
            report.applied += 1
            await self._log(record, message, "delete", "applied", appointment_guid=copy.appointment_guid,
                            event_id=copy.event_id, detail=action.reason)
        elif isinstance(action, RestoreOutlook):
            await self._restore(action, record, message, report)
        elif isinstance(action, UpdatePlanning):
            await self._update_planning(action, record, message, report)
        elif isinstance(action, Unchanged):
            await self._unchanged(action, event, record, message, full)

    async def _unchanged(self, action: Unchanged, event: CalendarEvent | None, record: ResourceRecord,
                         message: ExchangeChange, full: bool) -> None:
        copy = action.copy
        if action.change_key and isinstance(copy, BoardCopy) and copy.change_key != action.change_key:
            await self.io(self.mappings.save_board_copy, replace(copy, change_key=action.change_key))
        elif action.change_key and isinstance(copy, OutlookCopy) and copy.change_key != action.change_key:
            # The planning worker owns this row: written only if it still holds what was read (ETag).
            await self.io(self.mappings.save_outlook_copy_if, copy, replace(copy, change_key=action.change_key))
        if full or event is None or event.removed:
            return
        if isinstance(copy, OutlookCopy) and "ignore" in action.reason:
            await self._log(record, message, "skip", "skipped", appointment_guid=copy.appointment_guid,
                            event_id=event.id, detail=action.reason)
        elif copy is None and ("filtered" in action.reason or "hidden" in action.reason):
            await self._log(record, message, "skip", "skipped", event_id=event.id, detail=action.reason)

    async def _restore(self, action: RestoreOutlook, record: ResourceRecord, message: ExchangeChange,
                       report: RoundReport) -> None:
        """The planner's event was edited or deleted in Outlook: the planning → Outlook worker writes it
        back, under the appointment's lease, from the appointment as it is then (every Graph write for a
        planner's appointment is that worker's, so a crash or a retry can never make a second event)."""
        copy = action.copy
        appointment_id = await self.io(self.mappings.appointment_id, copy.appointment_guid)
        await self.io(self.s.work_queues.send_planning_change, PlanningChange(
            appointment_guid=copy.appointment_guid, event="restore", correlation_id=message.correlation_id,
            appointment_id=appointment_id or "", restore_resource=copy.resource_no,
            restore_event_id=copy.event_id or "", trace_context=message.trace_context))
        report.applied += 1

    async def _update_planning(self, action: UpdatePlanning, record: ResourceRecord, message: ExchangeChange,
                               report: RoundReport) -> None:
        """The person's edit onto the board, unless the planner changed the appointment too: then both
        sides changed and `CONFLICT_POLICY` decides (the board's win is written by the planning worker,
        which logs the conflict; Outlook's is taken here)."""
        copy, event = action.copy, action.event
        found = await planner_appointment(self.s, copy)
        if found is None:
            return
        payload, appointment = found
        time_zone = record.tracked.time_zone
        detail = "edited in Outlook; OUTLOOK_EDIT_POLICY=update_planning"
        if planner_changed(appointment, copy, time_zone):
            policy = self.s.settings.conflict_policy
            if policy is ConflictPolicy.BOARD:
                await self._restore(RestoreOutlook(copy, deleted=False), record, message, report)
                return
            seen = hashes_of(outlook_fields(event, time_zone))
            detail = conflict_account(policy, appointment, copy, time_zone, seen, event.change_key)
        if not await take_outlook_edit(self.s, payload, copy, event, time_zone, owner=False):
            return
        report.applied += 1
        await self._log(record, message, "update_planning", "applied", appointment_guid=copy.appointment_guid,
                        event_id=event.id, detail=detail)

    async def _log(self, record: ResourceRecord, message: ExchangeChange, action: str, outcome: str, *,
                   appointment_guid: str = "", event_id: str = "", detail: str = "", error: str = "") -> None:
        await self.io(self.s.activity.record, self._entry(record, message, action, outcome, appointment_guid=appointment_guid,
                                                          event_id=event_id, detail=detail, error=error))

    async def _record(self, entries: list[ActivityEntry]) -> None:
        """Many entries: their day rows together, their item twins side by side."""
        activity = self.s.activity
        await self.io(activity.record_days, entries)
        await asyncio.gather(*(self.io(activity.record_twin, entry) for entry in entries))

    @staticmethod
    def _entry(record: ResourceRecord, message: ExchangeChange, action: str, outcome: str, *,
               appointment_guid: str = "", event_id: str = "", detail: str = "", error: str = "") -> ActivityEntry:
        return ActivityEntry(direction=DIRECTION, action=action, outcome=outcome, resource_no=record.resource_no,
                             appointment_guid=appointment_guid, event_id=event_id,
                             correlation_id=message.correlation_id, detail=detail, error=error,
                             latency_ms=latency_ms(message.received_at, _now()) if outcome == "applied" else None)


def _note_sync(services: Services, resource_no: str) -> None:
    services.registry.note_sync(resource_no, "to_planning", _now())


def _board_copy(action: UpsertOnBoard, record: ResourceRecord) -> BoardCopy:
    event = action.event
    return BoardCopy(record.user_id, event.id, action.appointment_guid, action.content_hash, event.change_key,
                     event.series_master_id, action.filled)

def _verb(action: Action) -> str:
    return {"UpsertOnBoard": "upsert", "RemoveFromBoard": "delete", "RestoreOutlook": "restore",
            "UpdatePlanning": "update_planning"}.get(type(action).__name__, "skip")


def _ids(action: Action, event: CalendarEvent | None) -> dict[str, str]:
    if isinstance(action, UpsertOnBoard):
        return {"appointment_guid": action.appointment_guid, "event_id": action.event.id}
    if isinstance(action, RemoveFromBoard):
        return {"appointment_guid": action.copy.appointment_guid, "event_id": action.copy.event_id}
    if isinstance(action, RestoreOutlook | UpdatePlanning):
        return {"appointment_guid": action.copy.appointment_guid, "event_id": action.copy.event_id or ""}
    return {"event_id": event.id if event else ""}


async def handle_exchange_message(services: Services, body: str | bytes) -> None:
    """One `exchange-changes` message, whichever its kind: a mailbox's round, subscription work (a
    lifecycle event, the renew timer's upkeep), or `sync_resources`' check of one resource. Raises
    `InvalidMessage` for one that can never run."""
    kind = message_kind(body)
    if kind == SubscriptionLifecycle.kind:
        from connector.workers.subscriptions import apply_lifecycle

        await apply_lifecycle(services, SubscriptionLifecycle.from_json(body))
    elif kind == ResourceCheck.kind:
        from connector.workers.resources import check_resource

        await check_resource(services, ResourceCheck.from_json(body))
    else:
        await apply_exchange_change(services, ExchangeChange.from_json(body))


async def apply_exchange_change(services: Services, message: ExchangeChange) -> None:
    """The queue function's core: run the message; a known failure is retried or parked (never lost)."""
    try:
        await ExchangeToPlanning(services).handle(message)
    except Exception as exc:
        failure = classify(exc)
        if failure is None:
            raise  # a bug or a storage outage: the host retries and poisons per host.json
        record = await asyncio.to_thread(services.registry.by_user, message.user_id)
        entry = ActivityEntry(direction=DIRECTION, action="sync", outcome="failed",
                              resource_no=record.resource_no if record else "", correlation_id=message.correlation_id,
                              detail=f"mailbox round ({message.reason})")
        outcome = await asyncio.to_thread(handle_failure, services.storage, services.activity, EXCHANGE_CHANGES_QUEUE,
                                          message, failure, services.settings.work_max_attempts, entry)
        log.warning("exchange change for resource %s %s: %s", entry.resource_no, outcome.outcome, failure.error)
