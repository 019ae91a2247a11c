"""Write many table rows into Azurite quickly: raw REST upserts (Insert Or Replace Entity) signed with
the account's shared key, many in flight on one event loop.

The azure-data-tables SDK spends 3-4 ms of CPU per request in the caller, so seeding 100,000
mappings through it takes the harness minutes of CPU; a signed `PUT` from aiohttp costs a fraction
of that, and Azurite becomes the limit. Only for seeding benchmark data: string properties only,
no retries beyond a few for Azurite's own hiccups.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import yarl

API_VERSION = "2019-02-02"
CONTENT_TYPE = "application/json"


def _key_literal(value: str) -> str:
    return quote(value.replace("'", "''"), safe="")


def _signature(account: str, key: str, method: str, date: str, path: str) -> str:
    # SharedKey for the Table service: verb, Content-MD5, Content-Type, x-ms-date, canonicalized resource.
    to_sign = f"{method}\n\n{CONTENT_TYPE}\n{date}\n/{account}{path}"
    digest = hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()
    return f"SharedKey {account}:{base64.b64encode(digest).decode()}"


def _parse(connection_string: str) -> tuple[str, str, str]:
    parts = dict(p.split("=", 1) for p in connection_string.split(";") if "=" in p)
    return parts["AccountName"], parts["AccountKey"], parts["TableEndpoint"].rstrip("/")


async def _upsert_all(connection_string: str, table: str, rows: Iterable[Mapping[str, Any]], concurrency: int) -> int:
    account, key, endpoint = _parse(connection_string)
    base_path = urlsplit(endpoint).path
    semaphore = asyncio.Semaphore(concurrency)
    written = 0

    async def one(session: aiohttp.ClientSession, row: Mapping[str, Any]) -> None:
        nonlocal written
        pk, rk = str(row["PartitionKey"]), str(row["RowKey"])
        path = f"{base_path}/{table}(PartitionKey='{_key_literal(pk)}',RowKey='{_key_literal(rk)}')"
        body = json.dumps({k: v for k, v in row.items() if k not in ("PartitionKey", "RowKey")}).encode()
        async with semaphore:
            for attempt in range(5):
                date = formatdate(usegmt=True)
                headers = {"x-ms-date": date, "x-ms-version": API_VERSION, "Content-Type": CONTENT_TYPE,
                           "Accept": "application/json;odata=nometadata", "DataServiceVersion": "3.0;NetFx",
                           "Authorization": _signature(account, key, "PUT", date, path)}
                url = yarl.URL(endpoint.rsplit(base_path, 1)[0] + path, encoded=True)
                async with session.put(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status < 300:
                        written += 1
                        return
                    if response.status < 500 or attempt == 4:
                        raise RuntimeError(f"seeding {table} {pk}/{rk}: HTTP {response.status}")
                await asyncio.sleep(0.2 * (attempt + 1))

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        await asyncio.gather(*(one(session, row) for row in rows))
    return written


def upsert_rows(connection_string: str, table: str, rows: Iterable[Mapping[str, Any]], concurrency: int = 32) -> int:
    """Insert or replace every row (dicts with PartitionKey, RowKey and string properties); returns the count."""
    return asyncio.run(_upsert_all(connection_string, table, rows, concurrency))
