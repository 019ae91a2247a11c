"""Planted bugs a user would notice: the simulation's proof is only as good as the bugs it catches.

Each `Mutant` swaps one piece of the connector for a broken twin (the idea behind mutmut and cosmic-ray,
planted by hand where a real bug would be) and names what a planner or a technician would see. A mutant is
*caught* when some seed of the simulation breaks an invariant with it in place; the share caught is the
proof's score (`python -m devtools.sim --mutants`, and `tests/sim/test_mutations.py` in CI). A hole found by
hand that no mutant stood for gets a mutant here.

The swap replaces the original object wherever the connector's modules hold it (a function imported by name
into another module is the same object), so the planted bug is seen by every caller, as a real one would be.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Mutant:
    name: str
    what_a_user_sees: str
    module: str
    attribute: str
    broken: Callable[[Any], Any]  # the original → its broken twin


def _wrap_result(change: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A twin that calls the original and breaks what it returns."""
    def broken(original: Any) -> Any:
        def twin(*args: Any, **kwargs: Any) -> Any:
            return change(original(*args, **kwargs))
        return twin
    return broken


def _with(**fields: Any) -> Callable[[Any], Any]:
    return _wrap_result(lambda result: {**result, **fields})


def _board_end_is_start(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "End": item["Start"]}


def _timed(event: dict[str, Any]) -> dict[str, Any]:
    if not event.get("isAllDay"):
        return event
    return {**event, "isAllDay": False, "start": {**event["start"], "timeZone": "UTC"},
            "end": {**event["end"], "timeZone": "UTC"}}


def _ignore_webhooks(original: Any) -> Any:
    from connector.web.scheduler_intake import Rejection

    def twin(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)  # the checks still run (a bad secret still gets its 401) ...
        raise Rejection(200, "accepted")  # ... but nothing is enqueued
    return twin


def _ignore_show_as(original: Any) -> Any:
    from dataclasses import replace

    from connector.model import ShowAs

    def twin(event: Any, settings: Any) -> Any:
        return original(event, replace(settings, show_as=frozenset(ShowAs)))
    return twin


def _never_masked(original: Any) -> Any:
    from dataclasses import replace

    from connector.sync.to_planning import PrivateItems

    def twin(event: Any, settings: Any, time_zone: str) -> Any:
        if settings.private_items is PrivateItems.MASKED:
            settings = replace(settings, private_items=PrivateItems.SHOWN)
        return original(event, settings, time_zone)
    return twin


def _keep_unassigned(original: Any) -> Any:
    from connector.sync.to_outlook import DeleteEvent

    def twin(appointment: Any, *args: Any, **kwargs: Any) -> Any:
        actions = original(appointment, *args, **kwargs)
        if appointment is None:
            return actions
        return [a for a in actions if not isinstance(a, DeleteEvent)]
    return twin


def _no_restore(original: Any) -> Any:
    from connector.sync.to_planning import RestoreOutlook, Unchanged

    def twin(*args: Any, **kwargs: Any) -> Any:
        action = original(*args, **kwargs)
        return Unchanged("restore forgotten") if isinstance(action, RestoreOutlook) else action
    return twin


def _board_policy_always(original: Any) -> Any:
    def twin(values: Any, *args: Any, **kwargs: Any) -> Any:
        return original({**values, "CONFLICT_POLICY": "board"}, *args, **kwargs)
    return twin


def _utc_all_day(original: Any) -> Any:
    def twin(event: Any, time_zone: str) -> Any:
        return original(event, "UTC")
    return twin


def _no_resync(original: Any) -> Any:
    def twin(self: Any) -> Any:
        api = original(self)
        api._on_change = lambda records: None
        return api
    return twin


def _removals_skipped(original: Any) -> Any:
    from connector.sync.to_planning import RemoveFromBoard, Unchanged

    def twin(*args: Any, **kwargs: Any) -> Any:
        action = original(*args, **kwargs)
        return Unchanged("removal forgotten") if isinstance(action, RemoveFromBoard) else action
    return twin


def _emptied_field_kept(original: Any) -> Any:
    from dataclasses import replace

    from connector.sync.to_planning import UpsertOnBoard

    def twin(*args: Any, **kwargs: Any) -> Any:
        action = original(*args, **kwargs)
        return replace(action, replace=False) if isinstance(action, UpsertOnBoard) else action
    return twin


MUTANTS: tuple[Mutant, ...] = (
    Mutant("body_dropped", "the appointment's description never reaches the technician's Outlook",
           "connector.sync.to_outlook", "desired_event", _with(body={"contentType": "text", "content": ""})),
    Mutant("category_dropped", "the appointment's category never reaches Outlook",
           "connector.sync.to_outlook", "desired_event", _with(categories=[])),
    Mutant("importance_dropped", "a high-priority job shows as normal importance in Outlook",
           "connector.sync.to_outlook", "desired_event", _with(importance="normal")),
    Mutant("all_day_as_timed", "an all-day appointment is a timed event at odd hours in Outlook",
           "connector.sync.to_outlook", "desired_event", _wrap_result(_timed)),
    Mutant("board_end_is_start", "an Outlook item on the board ends when it starts",
           "connector.sync.to_planning", "board_item", _wrap_result(_board_end_is_start)),
    Mutant("board_loses_show_as", "every Outlook item on the board shows as busy, tentative or not",
           "connector.sync.to_planning", "board_item", _with(ShowAs=3)),
    Mutant("board_loses_sensitivity", "private items on the board are marked normal",
           "connector.sync.to_planning", "board_item", _with(Sensitivity=1)),
    Mutant("board_loses_categories", "an Outlook item's categories never reach the board",
           "connector.sync.to_planning", "board_item", _with(Categories=[])),
    Mutant("private_not_masked", "a private dentist appointment shows its subject on the board",
           "connector.sync.to_planning", "board_item", _never_masked),
    Mutant("emptied_field_kept", "an item turned private keeps its notes and categories on the board (where "
           "Dime.Scheduler takes a blank as not given)", "connector.sync.to_planning", "plan_item", _emptied_field_kept),
    Mutant("show_as_filter_ignored", "free time the technician keeps to themselves lands on the board",
           "connector.sync.to_planning", "filtered_out", _ignore_show_as),
    Mutant("all_day_in_utc", "an all-day item of a Brussels technician spans the wrong hours on the board",
           "connector.sync.to_planning", "board_times", _utc_all_day),
    Mutant("reassign_keeps_old_event", "a job re-assigned to a colleague stays in the first technician's calendar",
           "connector.sync.to_outlook", "plan", _keep_unassigned),
    Mutant("restore_forgotten", "the planner's event a technician deleted or edited is never put back",
           "connector.sync.to_planning", "_plan_own_event", _no_restore),
    Mutant("removal_forgotten", "an item deleted in Outlook stays on the board",
           "connector.sync.to_planning", "plan_item", _removals_skipped),
    Mutant("conflict_policy_ignored", "with CONFLICT_POLICY=outlook the technician's edit still loses",
           "connector.config", "load_settings", _board_policy_always),
    Mutant("webhooks_ignored", "a planner's change reaches Outlook only at the next poll, minutes later",
           "connector.web.scheduler_intake", "parse_notification", _ignore_webhooks),
    Mutant("settings_change_not_applied", "a technician hides private items, and they stay on the board for a day",
           "connector.services", "Services.settings_api", _no_resync),
)
BY_NAME = {m.name: m for m in MUTANTS}


@contextmanager
def planted(name: str) -> Iterator[Mutant]:
    """The mutant `name` in place for the duration: in its module and wherever its original is held."""
    mutant = BY_NAME[name]
    module = importlib.import_module(mutant.module)
    owner: Any = module
    attribute = mutant.attribute
    if "." in attribute:  # a property of a class
        class_name, attribute = attribute.split(".")
        owner = getattr(module, class_name)
        original_property = owner.__dict__[attribute]
        broken_property = type(original_property)(mutant.broken(original_property.func))
        if hasattr(broken_property, "__set_name__"):
            broken_property.__set_name__(owner, attribute)
        setattr(owner, attribute, broken_property)
        try:
            yield mutant
        finally:
            setattr(owner, attribute, original_property)
        return
    original = getattr(module, attribute)
    broken = mutant.broken(original)
    holders = [m for n, m in list(sys.modules.items())
               if n.split(".")[0] in ("connector", "functions", "devtools") and getattr(m, attribute, None) is original]
    for holder in holders:
        setattr(holder, attribute, broken)
    try:
        yield mutant
    finally:
        for holder in holders:
            setattr(holder, attribute, original)
