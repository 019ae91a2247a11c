"""Pure helpers of the Outlook → planning worker and sync_resources."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from connector.errors import GraphError
from connector.model import ShowAs
from connector.sync.to_planning import PrivateItems, ResourceSettings
from connector.workers.resources import DsResource
from connector.workers.to_planning import is_expired_token, latency_ms, settings_hash, sync_window


def test_any_change_of_the_effective_settings_changes_the_hash() -> None:
    base = ResourceSettings()
    digest = settings_hash(base, True, "restore_outlook")
    assert settings_hash(ResourceSettings(), True, "restore_outlook") == digest
    assert settings_hash(replace(base, private_items=PrivateItems.SHOWN), True, "restore_outlook") != digest
    assert settings_hash(replace(base, show_as=frozenset({ShowAs.BUSY})), True, "restore_outlook") != digest
    assert settings_hash(base, False, "restore_outlook") != digest
    assert settings_hash(base, True, "ignore") != digest


def test_the_window_is_whole_utc_days() -> None:
    start, end = sync_window(datetime(2026, 3, 10, 15, 30, tzinfo=UTC), 30, 180)
    assert start == datetime(2026, 2, 8, tzinfo=UTC)
    assert end == datetime(2026, 9, 7, tzinfo=UTC)


def test_expired_tokens_are_recognised() -> None:
    assert is_expired_token(GraphError(410, "Gone", "token expired"))
    assert is_expired_token(GraphError(400, "syncStateNotFound", "x"))
    assert is_expired_token(GraphError(400, "BadRequest", "SyncStateNotFound: the sync state is invalid"))
    assert not is_expired_token(GraphError(429, "TooManyRequests", "slow down"))
    assert not is_expired_token(GraphError(404, "ErrorItemNotFound", "no such user"))


def test_latency_is_measured_from_the_notification() -> None:
    assert latency_ms("2026-03-10T09:00:00.000Z", datetime(2026, 3, 10, 9, 0, 2, 500000, tzinfo=UTC)) == 2500
    assert latency_ms("garbage", datetime.now(UTC)) is None


def test_dime_scheduler_resources_are_read_in_either_casing() -> None:
    camel = DsResource.from_api({"resourceNo": "R1", "email": " a@x.example ", "exchangeIntegrationEnabled": True})
    pascal = DsResource.from_api({"ResourceNo": "R2", "Email": "b@x.example", "ExchangeIntegrationEnabled": "True"})
    assert camel == DsResource("R1", "a@x.example", "", True)
    assert pascal is not None and pascal.enabled
    assert DsResource.from_api({"email": "x"}) is None
    off = DsResource.from_api({"resourceNo": "R3", "email": "c@x.example", "exchangeIntegrationEnabled": False})
    assert off is not None and not off.enabled
