"""Throttling per app per mailbox (concurrency and a request budget per window) and the
subscription API's own rate limit. Limits can be changed at runtime from the control plane."""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Callable

from .config import GraphEmulatorConfig
from .errors import GraphError


def too_many_requests(retry_after: float) -> GraphError:
    text = str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
    return GraphError(429, "TooManyRequests", "Please retry again later.", {"Retry-After": text})


class Throttle:
    def __init__(self, config: GraphEmulatorConfig, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.concurrency = config.concurrency
        self.budget = config.budget
        self.window_seconds = config.window_seconds
        self.concurrency_retry_after = config.concurrency_retry_after_seconds
        self.subscription_limit = config.subscription_rate_limit
        self.subscription_window = config.subscription_rate_window_seconds
        self.in_flight: defaultdict[str, int] = defaultdict(int)
        self._history: defaultdict[str, deque[float]] = defaultdict(deque)

    def _spend(self, key: str, limit: int, window: float) -> None:
        """Count one request against a sliding window, or raise 429 with the wait until it frees."""
        now = self.clock()
        history = self._history[key]
        while history and history[0] <= now - window:
            history.popleft()
        if len(history) >= limit:
            raise too_many_requests(max(1, math.ceil(history[0] + window - now)))
        history.append(now)

    def admit(self, mailbox: str) -> None:
        """Admit a request for a mailbox (call :meth:`release` when it ends) or raise 429."""
        if self.in_flight[mailbox] >= self.concurrency:
            raise too_many_requests(self.concurrency_retry_after)
        self._spend("mailbox:" + mailbox, self.budget, self.window_seconds)
        self.in_flight[mailbox] += 1

    def release(self, mailbox: str) -> None:
        self.in_flight[mailbox] = max(0, self.in_flight[mailbox] - 1)

    def admit_subscription_write(self) -> None:
        self._spend("subscriptions", self.subscription_limit, self.subscription_window)

    def settings(self) -> dict[str, float]:
        return {
            "concurrency": self.concurrency,
            "budget": self.budget,
            "windowSeconds": self.window_seconds,
            "subscriptionLimit": self.subscription_limit,
            "subscriptionWindowSeconds": self.subscription_window,
        }
