"""``POST /_emulator/seed``: load master data and appointments without webhooks or counters.

Resources, categories and time markers go through the same procedures as ``/import`` (so they are
validated the same way); their keys may be camelCase (``resourceNo``, as ``GET /resource`` shows
them) or import-style PascalCase (``ResourceNo``), their values JSON-typed or strings. Appointments
use the planner's ``appointment-incoming`` reader and may set ``CreatedDate``/``LastModifiedDate``.
The whole seed is atomic.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .config import SchedulerEmulatorConfig
from .planner import PlannerProblem, create_appointment
from .procedures import PROCEDURES, Context, ProcedureError
from .store import Store


class SeedProblem(ValueError):
    """A seed body that cannot be loaded; the message names the item."""


def _items(body: dict[str, Any], key: str) -> list[Any]:
    value = body.get(key, [])
    if not isinstance(value, list):
        raise SeedProblem(f"'{key}' must be an array")
    return value


def _call(ctx: Context, procedure: str, params: dict[str, Any], where: str) -> None:
    proc = PROCEDURES[procedure.casefold()]
    try:
        proc.run(ctx, proc.parse(list(params), list(params.values()), ctx.config))
    except ProcedureError as exc:
        raise SeedProblem(f"{where}: {exc}") from None


def _pascal_keys(item: Any, where: str, aliases: dict[str, str] | None = None) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise SeedProblem(f"{where} must be an object")
    out = {}
    for key, value in item.items():
        name = (aliases or {}).get(key.casefold(), key[:1].upper() + key[1:])
        if name.casefold() != "id":  # ids are the emulator's to assign
            out[name] = value
    return out


def seed(store: Store, config: SchedulerEmulatorConfig, body: Any) -> dict[str, Any]:
    """Apply ``body`` to ``store``, all or nothing; returns a summary."""
    if not isinstance(body, dict):
        raise SeedProblem("the body must be a JSON object with resources, categories, timeMarkers, appointments")
    unknown = set(body) - {"resources", "categories", "timeMarkers", "appointments"}
    if unknown:
        raise SeedProblem(f"unknown key(s) {sorted(unknown)}; use resources, categories, timeMarkers, appointments")
    with store.transaction() as work:
        return _seed(work, config, body)


def _seed(work: Store, config: SchedulerEmulatorConfig, body: dict[str, Any]) -> dict[str, Any]:
    # Seeds are written by people and JSON: typed values are welcome here.
    ctx = Context(work, dataclasses.replace(config, strict_value_types=False), config.planner_user)
    for i, item in enumerate(_items(body, "resources")):
        _call(ctx, "mboc_upsertResource", _pascal_keys(item, f"resources[{i}]"), f"resources[{i}]")
    category_aliases = {"name": "CategoryName", "color": "CategoryHexColor"}
    for i, item in enumerate(_items(body, "categories")):
        _call(ctx, "mboc_upsertCategory", _pascal_keys(item, f"categories[{i}]", category_aliases), f"categories[{i}]")
    for i, item in enumerate(_items(body, "timeMarkers")):
        _call(ctx, "mboc_upsertTimeMarker", _pascal_keys(item, f"timeMarkers[{i}]"), f"timeMarkers[{i}]")
    created = []
    for i, item in enumerate(_items(body, "appointments")):
        try:
            appt = create_appointment(work, item, config.planner_user, keep_dates=True)
        except PlannerProblem as exc:
            raise SeedProblem(f"appointments[{i}]: {exc}") from None
        created.append({"id": appt.id, "AppointmentGuid": appt.guid})
    summary = {
        "resources": len(_items(body, "resources")),
        "categories": len(_items(body, "categories")),
        "timeMarkers": len(_items(body, "timeMarkers")),
        "appointments": created,
    }
    return summary
