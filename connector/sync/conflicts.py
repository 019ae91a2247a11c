"""Both sides changed: telling a real conflict from Graph's noise, and which side wins.

A planner's appointment and the event the connector wrote for it are one synced pair; its
`OutlookCopy` remembers both sides' versions at the last sync: the per-field hashes of what was
written (the planner's side, as Outlook shows it) and the event's changeKey after the write (the
Outlook side). "Changed" means the version moved *and* the content differs:

- the planner changed it when the appointment's desired fields no longer hash to what was written;
- a person changed it when the event's changeKey moved and its fields differ from what was written
  (Exchange moves the changeKey for invisible reasons too: a reminder, a read flag).

Graph writes are conditional (`If-Match` with the changeKey at the last sync). Graph answers 412
both for a real mismatch and, on its own, for a busy item (`ErrorIrresolvableConflict`, see
../shared/reference/graph.md): `after_precondition_failed` tells them apart from the event as it is.

`CONFLICT_POLICY` says who wins when both changed: `board` (default: the planner's appointment is the
plan) or `outlook` (the person's edit is taken onto the board). Items that came from Outlook belong to
their mailbox: the connector never writes them, so Outlook wins for them whatever the policy.

Pure: no I/O, no SDK.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class ConflictPolicy(StrEnum):
    BOARD = "board"
    OUTLOOK = "outlook"


class AfterPreconditionFailed(StrEnum):
    BUSY = "busy"  # the changeKey did not move: Graph's spontaneous 412, the same write again
    MOVED = "moved"  # the changeKey moved, the content did not: write again on the new changeKey
    EDITED = "edited"  # a person changed the event: both sides changed


def after_precondition_failed(sent_change_key: str | None, written: Mapping[str, str],
                              change_key: str | None, seen: Mapping[str, str]) -> AfterPreconditionFailed:
    """What a 412 on a conditional write meant, from the event read right after it."""
    if change_key is not None and change_key == sent_change_key:
        return AfterPreconditionFailed.BUSY
    if written and dict(seen) == dict(written):
        return AfterPreconditionFailed.MOVED
    return AfterPreconditionFailed.EDITED


def changed_fields(written: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    """The fields whose hash differs from what was written at the last sync."""
    return sorted(name for name in now if written.get(name) != now[name])


def if_match(change_key: str | None) -> str | None:
    """The `If-Match` value Graph compares with the item's changeKey (its `@odata.etag` form)."""
    return f'W/"{change_key}"' if change_key else None


def conflict_detail(policy: ConflictPolicy, planner_fields: list[str], outlook_fields: list[str],
                    planner_version: str, outlook_versions: tuple[str | None, str | None]) -> str:
    """The activity log's account of a conflict: both sides' versions and who won."""
    before, after = outlook_versions
    winner = ("the planning board's version was written to Outlook" if policy is ConflictPolicy.BOARD
              else "the Outlook edit was taken onto the planning board")
    return (f"conflict: both sides changed since the last sync; planning board: {', '.join(planner_fields) or '-'} "
            f"(appointment modified {planner_version or 'unknown'}); Outlook: {', '.join(outlook_fields) or '-'} "
            f"(changeKey {before or '-'} → {after or '-'}); CONFLICT_POLICY={policy.value}: {winner}")
