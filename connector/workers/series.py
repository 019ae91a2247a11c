"""Recurring series in a mailbox round: occurrence stubs completed from their master (one read
per series per round), and a changed master re-applied to every occurrence it shapes.

Graph's delta lists an occurrence as a stub (id, type, seriesMasterId, start, end) and the series
master in full; when only the master changes (retitled, made private, show-as changed) only the
master comes again, and deleting one occurrence may give no `@removed` at all (docs PR #4501). So:
- `complete`: a stub gets its fields from its master (`connector/sync/series.py`). The master is
  read with `GET /users/{id}/events/{masterId}` once per round and kept (a master listed in the
  round replaces the read copy, being the newer one).
- `occurrences_of`: when a master arrives in an incremental round, its current occurrences and
  exceptions in the window are read with `/instances` (full items, one paged call per changed
  series). The worker plans each one as any other item and removes the board copies of the series
  (found through the series index in `connector/stores/mappings.py`) that are no longer among
  them: a silently deleted occurrence leaves the board in the round that brings its master back.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from connector.sync.series import complete_occurrence, is_stub, master_id_of

if TYPE_CHECKING:  # the gateway imports msgraph; this module is imported by the function app at start
    from connector.gateways.graph import ExchangeGateway


class SeriesCompleter:
    """Per-round cache of series masters for one mailbox."""

    def __init__(self, exchange: ExchangeGateway, user_id: str) -> None:
        self._exchange = exchange
        self._user_id = user_id
        self._masters: dict[str, dict[str, Any] | None] = {}
        self.reads = 0  # masters read from Graph this round (for tests and the activity detail)

    def remember(self, item: Mapping[str, Any]) -> None:
        """A series master listed in the round: the freshest copy there is."""
        if item.get("type") == "seriesMaster" and "@removed" not in item and item.get("id"):
            self._masters[str(item["id"])] = dict(item)

    async def complete(self, item: Mapping[str, Any]) -> Mapping[str, Any]:
        """The item itself, or for a stub the full occurrence (unchanged if its master is gone:
        then the series is being deleted and its tombstones follow)."""
        master_id = master_id_of(item)
        if not is_stub(item) or master_id is None:
            return item
        if master_id not in self._masters:
            self.reads += 1
            self._masters[master_id] = await self._exchange.get_event(self._user_id, master_id)
        master = self._masters[master_id]
        return complete_occurrence(item, master) if master is not None else item

    async def occurrences_of(self, master_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """The series' occurrences and exceptions in [start, end), full items."""
        return await self._exchange.instances(self._user_id, master_id, start, end)
