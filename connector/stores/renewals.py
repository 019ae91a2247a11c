"""One subscription renewal at a time, and none repeated moments after another (row `renewal` /
`<subscription id>` in the `cursors` table).

Graph sends `reauthorizationRequired` on its own, as often as every few minutes per subscription, and
retries it like any notification, so several can be queued at once. Each one asks for the same
thing: PATCH the subscription's expiry. `claim` lets exactly one worker do it (an ETag-guarded write
of `ClaimOwner` / `ClaimUntil`; a crashed worker's claim expires) and refuses when the last renewal
finished within `recent` (`RenewedAt`), so a burst costs one PATCH. `done` records the renewal and
frees the claim; `release` frees it after a failure, so the retried message can claim it again.
The decision is the pure function `decide` (unit-tested); the store applies it with optimistic
concurrency.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.stores.repositories import AlreadyExists, ConcurrencyConflict, TableRepository, safe_key

PARTITION = "renewal"
CLAIM_TTL = timedelta(minutes=2)  # a renewal is one PATCH: a claim older than this was abandoned


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RenewalState:
    owner: str = ""
    claimed_until: datetime | None = None
    renewed_at: datetime | None = None

    def to_row(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str:
            return moment.isoformat() if moment else ""

        return {"ClaimOwner": self.owner, "ClaimUntil": iso(self.claimed_until), "RenewedAt": iso(self.renewed_at)}

    @classmethod
    def from_row(cls, data: dict[str, Any]) -> RenewalState:
        def moment(name: str) -> datetime | None:
            value = data.get(name)
            return datetime.fromisoformat(value) if value else None

        return cls(str(data.get("ClaimOwner") or ""), moment("ClaimUntil"), moment("RenewedAt"))


def decide(state: RenewalState, owner: str, now: datetime, recent: timedelta) -> RenewalState | None:
    """The claimed state, or None when another worker renews now or a renewal just finished."""
    if state.owner and state.owner != owner and state.claimed_until is not None and state.claimed_until > now:
        return None
    if state.renewed_at is not None and now - state.renewed_at < recent:
        return None
    return replace(state, owner=owner, claimed_until=now + CLAIM_TTL)


class RenewalClaims:
    def __init__(self, table: TableRepository, clock: Callable[[], datetime] = _now) -> None:
        self._table = table
        self._clock = clock

    def _read(self, subscription_id: str) -> tuple[RenewalState, str | None]:
        row = self._table.get(PARTITION, safe_key(subscription_id))
        return (RenewalState.from_row(row.data), row.etag) if row else (RenewalState(), None)

    def _write(self, subscription_id: str, state: RenewalState, etag: str | None) -> None:
        if etag is None:
            self._table.insert(PARTITION, safe_key(subscription_id), state.to_row())
        else:
            self._table.replace(PARTITION, safe_key(subscription_id), state.to_row(), etag)

    def claim(self, subscription_id: str, owner: str, recent: timedelta) -> bool:
        """True when this worker is to renew now; False when it is in hand or was done within `recent`."""
        while True:
            state, etag = self._read(subscription_id)
            claimed = decide(state, owner, self._clock(), recent)
            if claimed is None:
                return False
            try:
                self._write(subscription_id, claimed, etag)
                return True
            except (AlreadyExists, ConcurrencyConflict):
                continue  # another worker wrote meanwhile: decide again on what it wrote

    def done(self, subscription_id: str, owner: str) -> None:
        """The renewal succeeded: remember when, free the claim."""
        self._finish(subscription_id, owner, renewed=True)

    def release(self, subscription_id: str, owner: str) -> None:
        """The renewal failed: free the claim (the retried message may claim it again)."""
        self._finish(subscription_id, owner, renewed=False)

    def _finish(self, subscription_id: str, owner: str, renewed: bool) -> None:
        for _ in range(5):
            state, etag = self._read(subscription_id)
            if etag is None or state.owner != owner:
                return  # taken over after our claim expired: the new owner records its own outcome
            finished = replace(state, owner="", claimed_until=None,
                               renewed_at=self._clock() if renewed else state.renewed_at)
            try:
                self._write(subscription_id, finished, etag)
                return
            except ConcurrencyConflict:
                continue

    def forget(self, subscription_id: str) -> None:
        """The subscription is gone (deleted or replaced): drop its row."""
        self._table.delete(PARTITION, safe_key(subscription_id))
