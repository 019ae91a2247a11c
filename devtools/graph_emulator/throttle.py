"""Throttling per app per mailbox (concurrency and a request budget per window) and the
subscription API's own rate limit. Limits can be changed at runtime from the control plane."""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Callable

from .config import GraphEmulatorConfig
from .errors import GraphError


def retry_after_text(seconds: float) -> str:
    """Retry-After as Graph writes it: whole seconds, or a fraction such as "0.5"."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def too_many_requests(retry_after: float, code: str = "TooManyRequests", limit: str = "") -> GraphError:
    """A 429 shaped like Outlook's: ApplicationThrottled names the limit, TooManyRequests does not."""
    if code == "ApplicationThrottled":
        message = f"Application is over its {limit or 'MailboxConcurrency'} limit."
    else:
        message = "Please retry again later."
    return GraphError(429, code, message, {"Retry-After": retry_after_text(retry_after)})


class Throttle:
    def __init__(self, config: GraphEmulatorConfig, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.concurrency = config.concurrency
        self.budget = config.budget
        self.window_seconds = config.window_seconds
        self.concurrency_retry_after = config.concurrency_retry_after_seconds
        self.fractional_retry_after = config.fractional_retry_after
        self.error_code = config.throttle_error_code
        self.subscription_limit = config.subscription_rate_limit
        self.subscription_window = config.subscription_rate_window_seconds
        self.in_flight: defaultdict[str, int] = defaultdict(int)
        self._history: defaultdict[str, deque[float]] = defaultdict(deque)

    def _spend(self, key: str, limit: int, window: float, code: str = "TooManyRequests") -> None:
        """Count one request against a sliding window, or raise 429 with the wait until it frees."""
        now = self.clock()
        history = self._history[key]
        while history and history[0] <= now - window:
            history.popleft()
        if len(history) >= limit:
            wait = history[0] + window - now
            wait = max(0.1, round(wait, 1)) if self.fractional_retry_after else max(1, math.ceil(wait))
            raise too_many_requests(wait, code, "MailboxRequests")
        history.append(now)

    def admit(self, mailbox: str) -> None:
        """Admit a request for a mailbox (call :meth:`release` when it ends) or raise 429."""
        if self.in_flight[mailbox] >= self.concurrency:
            raise too_many_requests(self.concurrency_retry_after, self.error_code, "MailboxConcurrency")
        self._spend("mailbox:" + mailbox, self.budget, self.window_seconds, self.error_code)
        self.in_flight[mailbox] += 1

    def release(self, mailbox: str) -> None:
        self.in_flight[mailbox] = max(0, self.in_flight[mailbox] - 1)

    def admit_subscription_write(self) -> None:
        self._spend("subscriptions", self.subscription_limit, self.subscription_window)

    def settings(self) -> dict[str, float | str]:
        return {
            "concurrency": self.concurrency,
            "budget": self.budget,
            "windowSeconds": self.window_seconds,
            "subscriptionLimit": self.subscription_limit,
            "subscriptionWindowSeconds": self.subscription_window,
            "concurrencyRetryAfter": self.concurrency_retry_after,
            "fractionalRetryAfter": self.fractional_retry_after,
            "errorCode": self.error_code,
        }
