"""Each resource's Outlook → planning settings, the global defaults, the mode and admin locks.

Rows in the `settings` table: `global` / `defaults` (settings every resource starts from), `global` /
`mode` (`global`: everyone follows the defaults; `per_resource`: each resource chooses), and
`resource` / `<resource no>` (that resource's own choice plus the fields an admin locked). The
effective settings are what the Outlook → planning worker obeys; a change takes effect on the next
sync of that mailbox, no restart.

The JSON shape (settings API and storage):
`{"syncToPlanning": true, "showAs": ["busy", ...], "sensitivity": ["normal", ...], "privateItems": "masked"}`.
`parse_settings` validates it strictly: an unknown field or invalid value raises `SettingsError`
naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from connector.model import Sensitivity, ShowAs
from connector.stores.repositories import AlreadyExists, Row, TableRepository, safe_key
from connector.sync.to_planning import PrivateItems, ResourceSettings

FIELDS = ("syncToPlanning", "showAs", "sensitivity", "privateItems")
MODES = ("global", "per_resource")


class SettingsError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


def settings_to_json(settings: ResourceSettings) -> dict[str, Any]:
    return {
        "syncToPlanning": settings.sync_to_planning,
        "showAs": [s.value for s in ShowAs if s in settings.show_as],
        "sensitivity": [s.value for s in Sensitivity if s in settings.sensitivity],
        "privateItems": settings.private_items.value,
    }


def _enum_list(field: str, value: Any, kind: type[ShowAs] | type[Sensitivity]) -> frozenset[Any]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SettingsError(field, "expected a list of strings")
    allowed = {m.value: m for m in kind}
    unknown = [v for v in value if v not in allowed]
    if unknown:
        raise SettingsError(field, f"unknown value {unknown[0]!r} (allowed: {', '.join(allowed)})")
    return frozenset(allowed[v] for v in value)


def parse_settings(data: Any, base: ResourceSettings, partial: bool = True) -> ResourceSettings:
    """Apply a JSON object of settings onto `base`; strict about fields and values."""
    if not isinstance(data, Mapping):
        raise SettingsError("body", "expected a JSON object")
    unknown = [k for k in data if k not in FIELDS]
    if unknown:
        raise SettingsError(unknown[0], f"unknown setting (known: {', '.join(FIELDS)})")
    if not partial:
        missing = [f for f in FIELDS if f not in data]
        if missing:
            raise SettingsError(missing[0], "required")
    result = base
    if "syncToPlanning" in data:
        if not isinstance(data["syncToPlanning"], bool):
            raise SettingsError("syncToPlanning", "expected true or false")
        result = replace(result, sync_to_planning=data["syncToPlanning"])
    if "showAs" in data:
        result = replace(result, show_as=_enum_list("showAs", data["showAs"], ShowAs))
    if "sensitivity" in data:
        result = replace(result, sensitivity=_enum_list("sensitivity", data["sensitivity"], Sensitivity))
    if "privateItems" in data:
        value = data["privateItems"]
        if value not in {m.value for m in PrivateItems}:
            raise SettingsError("privateItems", f"expected one of {', '.join(m.value for m in PrivateItems)}")
        result = replace(result, private_items=PrivateItems(value))
    return result


@dataclass(frozen=True)
class StoredSettings:
    """A settings row as read: its values, the locked fields, and the ETag for If-Match."""

    settings: ResourceSettings
    locks: frozenset[str]
    etag: str | None
    customised: bool  # False: the resource has never saved its own choice


class SettingsStore:
    def __init__(self, table: TableRepository) -> None:
        self._table = table

    def _read(self, partition: str, row: str) -> Row | None:
        return self._table.get(partition, row)

    def defaults(self) -> StoredSettings:
        row = self._read("global", "defaults")
        if row is None:
            return StoredSettings(ResourceSettings(), frozenset(), None, False)
        return StoredSettings(parse_settings(json.loads(row.data["settings"]), ResourceSettings()), frozenset(),
                              row.etag, True)

    def mode(self) -> str:
        row = self._read("global", "mode")
        return str(row.data["mode"]) if row else "per_resource"

    def own(self, resource_no: str) -> StoredSettings:
        """The resource's own row (or the defaults when it has none yet)."""
        row = self._read("resource", safe_key(resource_no))
        defaults = self.defaults()
        if row is None:
            return StoredSettings(defaults.settings, frozenset(), None, False)
        return StoredSettings(parse_settings(json.loads(row.data["settings"]), defaults.settings),
                              frozenset(json.loads(row.data.get("locks") or "[]")), row.etag, True)

    def effective(self, resource_no: str) -> ResourceSettings:
        """What the sync obeys: the defaults in global mode, otherwise the resource's own choice."""
        if self.mode() == "global":
            return self.defaults().settings
        return self.own(resource_no).settings

    def ensure_account(self, resource_no: str) -> bool:
        """Create the resource's settings row from the defaults (a new tracked resource); False if it exists."""
        try:
            self._table.insert("resource", safe_key(resource_no), {
                "settings": json.dumps(settings_to_json(self.defaults().settings)), "locks": "[]",
                "resource_no": resource_no,
            })
        except AlreadyExists:
            return False
        return True

    def save_own(self, resource_no: str, settings: ResourceSettings, locks: frozenset[str], etag: str | None) -> str:
        """Write with optimistic concurrency: `etag` None means the row must not exist yet."""
        data = {"settings": json.dumps(settings_to_json(settings)), "locks": json.dumps(sorted(locks)),
                "resource_no": resource_no}
        if etag is None:
            return self._table.insert("resource", safe_key(resource_no), data)
        return self._table.replace("resource", safe_key(resource_no), data, etag)

    def save_defaults(self, settings: ResourceSettings, etag: str | None) -> str:
        data = {"settings": json.dumps(settings_to_json(settings))}
        if etag is None:
            return self._table.insert("global", "defaults", data)
        return self._table.replace("global", "defaults", data, etag)

    def save_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise SettingsError("mode", f"expected one of {', '.join(MODES)}")
        self._table.upsert("global", "mode", {"mode": mode})
