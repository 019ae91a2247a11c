"""Recurring series in a calendarView delta: completing occurrence stubs from their series master.

Graph's delta renders an occurrence as a stub: `@odata.type`, `@odata.etag`, `id`, `type`,
`seriesMasterId`, `start`, `end`, nothing else (microsoft-graph-docs #7632, #22197, #1716;
docs-contrib #34). The series master is listed with every field; exceptions are full items. An
occurrence shows what its master says, at its own times, so a stub plus its master is the whole
occurrence. Pure JSON in, JSON out: the worker reads the master (once per series per round).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# What a stub carries of its own; everything else comes from the master.
STUB_FIELDS = ("@odata.type", "@odata.etag", "id", "type", "seriesMasterId", "start", "end")
# Master-only fields an occurrence does not share (its own iCalUId is not in the stub).
_MASTER_ONLY = ("recurrence", "transactionId", "iCalUId", "singleValueExtendedProperties", "@odata.context")


def is_stub(item: Mapping[str, Any]) -> bool:
    """An occurrence that came without its fields (no subject, showAs, sensitivity, body)."""
    return (str(item.get("type", "")) == "occurrence" and "@removed" not in item
            and not any(name in item for name in ("subject", "showAs", "sensitivity")))


def master_id_of(item: Mapping[str, Any]) -> str | None:
    value = item.get("seriesMasterId")
    return str(value) if value else None


def complete_occurrence(stub: Mapping[str, Any], master: Mapping[str, Any]) -> dict[str, Any]:
    """The full occurrence: the master's fields at the stub's id and times."""
    full = {name: value for name, value in master.items() if name not in _MASTER_ONLY}
    full.update({name: stub[name] for name in STUB_FIELDS if name in stub})
    full["type"] = "occurrence"
    return full
