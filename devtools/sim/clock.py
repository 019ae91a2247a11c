"""Virtual time: an asyncio loop whose clock only moves when nothing is ready to run, and the wall
clock the connector reads (`datetime.now`) tied to it."""

from __future__ import annotations

import asyncio
import selectors
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday morning: every run starts from the same moment


class _InstantSelector(selectors.BaseSelector):
    """No real I/O happens in the simulation: `select` returns at once and moves the clock instead of
    sleeping for the loop's timeout."""

    def __init__(self) -> None:
        self._map: dict[Any, selectors.SelectorKey] = {}
        self.loop: VirtualLoop | None = None

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        key = selectors.SelectorKey(fileobj, fileobj if isinstance(fileobj, int) else fileobj.fileno(), events, data)
        self._map[fileobj] = key
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._map.pop(fileobj)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if self.loop is not None and timeout:
            self.loop.advance(timeout)
        return []

    def get_map(self) -> Any:
        return self._map

    def close(self) -> None:
        self._map.clear()


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        selector = _InstantSelector()
        self._virtual_now = 0.0
        super().__init__(selector)
        selector.loop = self

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        self._virtual_now += max(0.0, seconds)

    def is_idle(self) -> bool:
        """Nothing is ready to run (only timers and awaited futures remain)."""
        return not self._ready  # type: ignore[attr-defined]

    def next_timer(self) -> float | None:
        scheduled = [h for h in self._scheduled if not h.cancelled()]  # type: ignore[attr-defined]
        return min((h.when() for h in scheduled), default=None)


class _AnyDatetime(type):
    """`isinstance(x, SimDatetime)` holds for every datetime, as `isinstance(x, datetime)` did in the
    modules whose `datetime` name the simulation replaces."""

    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, datetime)

    def __subclasscheck__(cls, subclass: type) -> bool:
        return issubclass(subclass, datetime)


class SimDatetime(datetime, metaclass=_AnyDatetime):
    """`datetime` whose `now()` is the simulation's wall clock (EPOCH + the loop's virtual seconds)."""

    loop: VirtualLoop | None = None

    @classmethod
    def now(cls, tz: Any = None) -> SimDatetime:  # type: ignore[override]
        seconds = cls.loop.time() if cls.loop is not None else 0.0
        moment = EPOCH + timedelta(seconds=seconds)
        value = moment if tz is None else moment.astimezone(tz)
        return cls.fromtimestamp(value.timestamp(), value.tzinfo)

    @classmethod
    def utcnow(cls) -> SimDatetime:  # type: ignore[override]
        return cls.now(UTC).replace(tzinfo=None)
