"""The emulator's state and the operations both HTTP surfaces share.

One :class:`Emulator` per app: configuration (initial and current), the tenant's store, webhook
subscriptions and their dispatcher, injected API faults, and the counters ``/_emulator/stats``
reports. All of it is touched only from the server's event loop, so no locks are needed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiohttp import web

from .config import SchedulerEmulatorConfig
from .faults import ApiFaults
from .imports import AppointmentEvent, ImportResult, run_import
from .model import Appointment
from .payloads import View, flat_camel, incoming
from .store import Store
from .webhooks import Dispatcher, HookRegistry


class Emulator:
    def __init__(self, config: SchedulerEmulatorConfig) -> None:
        self.initial_config = config
        self.config = config
        self.store = Store()
        self.hooks = HookRegistry()
        self.dispatcher = Dispatcher(lambda: self.config)
        self.faults = ApiFaults()
        self.requests: Counter[str] = Counter()
        self.unmatched: Counter[str] = Counter()
        self.procedures: Counter[str] = Counter()
        self.procedures_changed: Counter[str] = Counter()

    # --- writes ---------------------------------------------------------------------------------
    def apply_import(self, payload: Any) -> ImportResult:
        result = run_import(self.store, self.config, payload)
        if result.store is not None:
            self.procedures.update(result.applied)
            self.procedures_changed.update(result.changed)
            for event in result.events:
                self.announce(event)
        return result

    def announce(self, event: AppointmentEvent) -> None:
        """Queue the event for every subscription of its type (and, under ``source_app`` routing, of
        the appointment's Source App), rendered as it is now."""
        source_app = event.appointment.task[0] if event.appointment.task else event.appointment.source_app
        routed = None if self.config.webhook_routing == "all" else (source_app or "")
        hooks = self.hooks.for_event(event.event, routed)
        if not hooks:
            return
        render = flat_camel if self.config.payload_casing == "camel" else incoming
        payload = render(event.store, event.appointment, View.of(self.config))
        for hook in hooks:
            self.dispatcher.enqueue(hook, event.event, event.appointment.guid, payload)

    def fire(self, event: str, appointment: Appointment, store: Store | None = None) -> None:
        self.announce(AppointmentEvent(event, appointment, store or self.store))

    # --- counters and reset ---------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "unmatched": dict(self.unmatched),
            "procedures": dict(self.procedures),
            "proceduresChanged": dict(self.procedures_changed),
            "webhooks": self.dispatcher.stats(),
        }

    def reset_counters(self) -> None:
        self.requests.clear()
        self.unmatched.clear()
        self.procedures.clear()
        self.procedures_changed.clear()
        for name in ("delivered", "failedAttempts", "dropped", "abandoned", "duplicated"):
            self.dispatcher.counters[name] = 0

    async def reset(self) -> None:
        """Back to a fresh tenant: state, subscriptions, deliveries, faults, counters, config."""
        await self.dispatcher.reset()
        self.config = self.initial_config
        self.store = Store()
        self.hooks = HookRegistry()
        self.faults = ApiFaults()
        self.reset_counters()


EMULATOR = web.AppKey("emulator", Emulator)
