"""Every Windows zone name Graph may give as a mailbox's `timeZone` resolves: the table is CLDR's, as tzlocal
ships it (a dev dependency here; `connector/sync` itself imports the standard library only)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from tzlocal.windows_tz import win_tz

from connector.sync.timezones import local_midnight, mailbox_zone, zone_of
from connector.sync.windows_zones import WINDOWS_ZONES


def test_the_table_is_cldrs_windows_zones() -> None:
    assert win_tz == WINDOWS_ZONES


def test_every_windows_zone_resolves_and_none_falls_back_to_utc_unless_it_is_utc() -> None:
    for name in WINDOWS_ZONES:
        assert zone_of(name) is not None, name
        assert zone_of(name.upper()) is not None, name  # Graph's casing varies: matched case-insensitively
    assert zone_of("Coordinated Universal Time") is UTC and zone_of("not a zone") is None


def test_zones_off_the_hour_and_across_the_date_line_give_their_local_midnight() -> None:
    assert local_midnight(date(2026, 3, 4), mailbox_zone("Nepal Standard Time")) == datetime(2026, 3, 3, 18, 15, tzinfo=UTC)
    assert local_midnight(date(2026, 3, 4), mailbox_zone("Chatham Islands Standard Time")) == \
        datetime(2026, 3, 3, 10, 15, tzinfo=UTC)
    assert local_midnight(date(2026, 3, 8), mailbox_zone("Pacific Standard Time")) == datetime(2026, 3, 8, 8, tzinfo=UTC)
    assert local_midnight(date(2026, 3, 9), mailbox_zone("Pacific Standard Time")) == datetime(2026, 3, 9, 7, tzinfo=UTC)
