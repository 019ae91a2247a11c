"""Configuration the real host reads: ``local.settings.json`` (app settings) and ``host.json``.

App settings become environment variables, as under ``func start``: a variable that is already set
in the environment wins over ``local.settings.json``. Settings passed explicitly to
:class:`devtools.devhost.DevHost` (tests) win over both, and every change is undone on stop.
``%NAME%`` expressions in trigger attributes are resolved from the environment, as the real host
resolves them from app settings.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DevHostError

DEFAULT_FUNCTION_KEY = "dev-function-key"
DEFAULT_MASTER_KEY = "dev-master-key"
DEFAULT_MAX_REQUEST_BODY = 100 * 1024 * 1024  # the real host's 100 MB limit
_SETTING_EXPR = re.compile(r"%([^%]+)%")
_TIMESPAN = re.compile(r"^(?:(?P<d>\d+)\.)?(?P<h>\d{1,2}):(?P<m>\d{1,2})(?::(?P<s>\d{1,2}(?:\.\d+)?))?$")


def is_timespan(value: str) -> bool:
    return _TIMESPAN.match(value.strip()) is not None


def parse_timespan(value: object, field_name: str) -> float:
    """Parse a .NET TimeSpan string (``[d.]hh:mm[:ss[.fffffff]]``) into seconds."""
    if not isinstance(value, str) or not (m := _TIMESPAN.match(value.strip())):
        raise DevHostError(f"host.json: {field_name} must be a TimeSpan like '00:00:30', got {value!r}")
    days = int(m["d"] or 0)
    return days * 86400 + int(m["h"]) * 3600 + int(m["m"]) * 60 + float(m["s"] or 0)


def resolve(value: str, what: str, env: Mapping[str, str] | None = None) -> str:
    """Replace ``%NAME%`` with the app setting ``NAME``; a missing setting is a start-up error."""
    source = os.environ if env is None else env

    def lookup(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in source:
            raise DevHostError(f"{what}: app setting '{name}' (from '%{name}%') is not set")
        return source[name]

    return _SETTING_EXPR.sub(lookup, value)


@dataclass(frozen=True)
class QueueOptions:
    """host.json ``extensions.queues`` with the real host's defaults."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_polling_interval: float = 60.0
    visibility_timeout: float = 0.0
    max_dequeue_count: int = 5
    message_encoding: str = "base64"

    @property
    def max_concurrency(self) -> int:
        return self.batch_size + self.new_batch_threshold


@dataclass(frozen=True)
class HostConfig:
    """The parts of host.json the dev host honours."""

    route_prefix: str = "api"
    queues: QueueOptions = field(default_factory=QueueOptions)
    functions: tuple[str, ...] | None = None  # host.json "functions": load only these
    raw: Mapping[str, Any] = field(default_factory=dict)


def _int(section: Mapping[str, Any], key: str, default: int, minimum: int) -> int:
    value = section.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise DevHostError(f"host.json: extensions.queues.{key} must be an integer >= {minimum}, got {value!r}")
    return value


def parse_host_json(data: Mapping[str, Any]) -> HostConfig:
    extensions = data.get("extensions") or {}
    http = extensions.get("http") or {}
    prefix = http.get("routePrefix", "api")
    if not isinstance(prefix, str):
        raise DevHostError(f"host.json: extensions.http.routePrefix must be a string, got {prefix!r}")
    q = extensions.get("queues") or {}
    batch = _int(q, "batchSize", 16, 1)
    if batch > 32:  # the Storage API's limit, which the real host enforces too
        raise DevHostError("host.json: extensions.queues.batchSize must be <= 32")
    encoding = str(q.get("messageEncoding", "base64")).lower()
    if encoding not in ("base64", "none"):
        raise DevHostError(f"host.json: extensions.queues.messageEncoding must be base64 or none, got {encoding!r}")
    queues = QueueOptions(
        batch_size=batch,
        new_batch_threshold=_int(q, "newBatchThreshold", batch // 2, 0),
        max_polling_interval=parse_timespan(q["maxPollingInterval"], "extensions.queues.maxPollingInterval")
        if "maxPollingInterval" in q
        else 60.0,
        visibility_timeout=parse_timespan(q["visibilityTimeout"], "extensions.queues.visibilityTimeout")
        if "visibilityTimeout" in q
        else 0.0,
        max_dequeue_count=_int(q, "maxDequeueCount", 5, 1),
        message_encoding=encoding,
    )
    functions = data.get("functions")
    return HostConfig(
        route_prefix=prefix.strip("/"),
        queues=queues,
        functions=tuple(functions) if isinstance(functions, list) else None,
        raw=data,
    )


def load_host_json(root: Path) -> HostConfig:
    path = root / "host.json"
    if not path.exists():
        return HostConfig()
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise DevHostError(f"{path}: invalid JSON: {exc}") from exc
    return parse_host_json(data)


@dataclass(frozen=True)
class LocalSettings:
    values: dict[str, str]
    local_http_port: int | None = None


def load_local_settings(path: Path) -> LocalSettings:
    """Read ``Values`` (and ``Host.LocalHttpPort``) from a local.settings.json; a missing file is empty."""
    if not path.exists():
        return LocalSettings({})
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise DevHostError(f"{path}: invalid JSON: {exc}") from exc
    if data.get("IsEncrypted"):
        raise DevHostError(f"{path}: encrypted settings are not supported (set IsEncrypted to false)")
    values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (data.get("Values") or {}).items()}
    port = (data.get("Host") or {}).get("LocalHttpPort")
    return LocalSettings(values, int(port) if port else None)


class Environment:
    """Applies app settings to ``os.environ`` and undoes exactly those changes on :meth:`restore`."""

    def __init__(self) -> None:
        self._saved: dict[str, str | None] = {}

    def apply(self, file_values: Mapping[str, str], explicit: Mapping[str, str]) -> None:
        for name, value in file_values.items():
            if name not in os.environ:  # the environment wins over local.settings.json, as in func start
                self._set(name, value)
        for name, value in explicit.items():
            self._set(name, value)

    def _set(self, name: str, value: str) -> None:
        self._saved.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def restore(self) -> None:
        for name, old in self._saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
        self._saved.clear()


def function_key() -> str:
    return os.environ.get("DEVHOST_FUNCTION_KEY") or DEFAULT_FUNCTION_KEY


def master_key() -> str:
    return os.environ.get("DEVHOST_MASTER_KEY") or DEFAULT_MASTER_KEY


def max_request_body_size() -> int:
    """``FUNCTIONS_REQUEST_BODY_SIZE_LIMIT`` (bytes), the real host's override of its 100 MB default."""
    raw = os.environ.get("FUNCTIONS_REQUEST_BODY_SIZE_LIMIT")
    return int(raw) if raw else DEFAULT_MAX_REQUEST_BODY


def is_disabled(function_name: str) -> bool:
    """``AzureWebJobs.<name>.Disabled`` = true disables a function, as on the real host."""
    value = os.environ.get(f"AzureWebJobs.{function_name}.Disabled", "")
    return value.strip().lower() in ("true", "1")
