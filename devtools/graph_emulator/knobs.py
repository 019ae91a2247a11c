"""``GET /_emulator/config`` reads, ``PATCH`` (or ``POST``) changes the knobs of a running emulator.

Only plain knobs (bool, int, float, str, optional numbers) can be changed, each checked against
the type of its default, counts against being whole and positive, durations against being negative,
and the enumerated ones against the allowed values; a bad name or value is a 400 naming it and
changes nothing. `POST /_emulator/reset` puts every knob back to the emulator's start-up config. The
throttle limits have their own `/_emulator/throttle`, which also updates the live limiter.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from .config import GraphEmulatorConfig
from .core import Emulator
from .errors import GraphError

CHOICES: dict[str, tuple[str, ...]] = {
    "delta_occurrences": ("stub", "full"),
    "occurrence_delete_signal": ("none", "removed"),
    "repeated_transaction": ("existing", "conflict"),
}
_FIXED = {"token", "tenant_id", "application_id", "creator_id"}  # identity, not behaviour
_COUNTS = {"subscriptions_page_size", "endpoint_min_answers", "batch_concurrency", "batch_max_requests",
           "batch_max_body_bytes", "delivery_batch_ms"}  # whole and positive
_OPTIONAL = {"reauthorization_interval_seconds"}  # None switches the behaviour off


def config_json(config: GraphEmulatorConfig) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name not in _FIXED}


def _checked(config: GraphEmulatorConfig, name: str, value: Any) -> Any:
    fields = {f.name: f for f in dataclasses.fields(config)}
    if name not in fields or name in _FIXED:
        raise GraphError(400, "BadRequest", f"Unknown emulator knob '{name}'.")
    current = getattr(GraphEmulatorConfig(), name)
    if name in CHOICES:
        if value not in CHOICES[name]:
            raise GraphError(400, "BadRequest", f"'{name}' must be one of {', '.join(CHOICES[name])}.")
        return value
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(current, bool):
        ok = isinstance(value, bool)
    elif name in _COUNTS:
        ok = number and isinstance(value, int) and value > 0
    elif name in _OPTIONAL and value is None:
        ok = True
    elif isinstance(current, int | float):
        ok = number and value >= 0
    elif isinstance(current, str):
        ok = isinstance(value, str)
    else:  # optional numbers (None by default)
        ok = value is None or (isinstance(value, int | float) and not isinstance(value, bool))
    if not ok:
        raise GraphError(400, "BadRequest", f"'{name}' has the wrong type: {value!r}.")
    return value


def apply_overrides(emu: Emulator, changes: dict[str, Any]) -> None:
    """Check every change first, then apply them all (a bad one changes nothing)."""
    checked = {name: _checked(emu.config, name, value) for name, value in changes.items()}
    for name, value in checked.items():
        setattr(emu.config, name, value)
    emu.ensure_reauthorizer()  # a changed reauthorization period takes effect now


async def get_config(emu: Emulator, request: web.Request) -> web.Response:
    return web.json_response(config_json(emu.config))


async def patch_config(emu: Emulator, request: web.Request) -> web.Response:
    try:
        data = await request.json()
    except ValueError:
        raise GraphError(400, "BadRequest", "A JSON object body is required.") from None
    if not isinstance(data, dict):
        raise GraphError(400, "BadRequest", "A JSON object body is required.")
    apply_overrides(emu, data)
    return web.json_response(config_json(emu.config))
