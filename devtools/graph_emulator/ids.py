"""Opaque, case-sensitive ids shaped like Exchange's (URL-safe base64).

A stored item has a regular id (changes when the item moves folder) and an immutable id. An
occurrence of a series has no stored record: its id encodes the master's id and the original start,
so it is stable across calls and, like Exchange's, changes when the master's regular id changes.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import UTC, datetime

REGULAR_PREFIX = "AAMkAG"
IMMUTABLE_PREFIX = "AAkALg"
OCCURRENCE_PREFIX = "AAMkOC"
_STAMP = "%Y%m%dT%H%M%S"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def new_regular_id() -> str:
    return REGULAR_PREFIX + _b64(secrets.token_bytes(42))


def new_immutable_id() -> str:
    return IMMUTABLE_PREFIX + _b64(secrets.token_bytes(42))


def new_change_key() -> str:
    return _b64(secrets.token_bytes(21))


def new_guid() -> str:
    return str(uuid.uuid4())


def new_ical_uid() -> str:
    return "040000008200E00074C5B7101A82E008" + secrets.token_hex(28).upper()


def occurrence_id(master_id: str, original_start: datetime) -> str:
    raw = master_id.encode() + b"\x00" + original_start.astimezone(UTC).strftime(_STAMP).encode()
    return OCCURRENCE_PREFIX + _b64(raw)


def parse_occurrence_id(value: str) -> tuple[str, datetime] | None:
    """(master id, original start) for an occurrence id, None for anything else."""
    if not value.startswith(OCCURRENCE_PREFIX):
        return None
    try:
        raw = base64.urlsafe_b64decode(value[len(OCCURRENCE_PREFIX):].encode("ascii"))
        master, _, stamp = raw.partition(b"\x00")
        start = datetime.strptime(stamp.decode(), _STAMP).replace(tzinfo=UTC)
        return master.decode(), start
    except (ValueError, UnicodeError):
        return None
