"""Request and delivery counters behind ``GET /_emulator/stats``."""

from __future__ import annotations

from collections import Counter
from typing import Any


class Stats:
    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.requests: Counter[str] = Counter()
        self.round_trips = 0
        self.throttled = 0
        self.faults_injected = 0
        self.batch_peak_in_flight = 0  # most inner requests of one $batch running at once
        self.notifications: Counter[str] = Counter()

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "roundTrips": self.round_trips,
            "throttled": self.throttled,
            "faultsInjected": self.faults_injected,
            "batchPeakInFlight": self.batch_peak_in_flight,
            "notifications": {
                name: self.notifications[name]
                for name in ("delivered", "posts", "failedAttempts", "dropped", "duplicated", "abandoned",
                             "lifecycleDelivered", "lifecycleSent", "slowAnswers", "delayedSlowEndpoint",
                             "droppedDropEndpoint")
            },
        }
