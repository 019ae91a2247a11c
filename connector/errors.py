"""Errors of the two outside services, free of SDK imports so light code paths can catch them."""

from __future__ import annotations

GRAPH_TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
PLANNING_TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class GraphError(Exception):
    """A Graph call failed: status, Graph error code, and how long Graph asked us to wait."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        self.status = status
        self.code = code
        self.retry_after = retry_after
        super().__init__(f"Graph {status} {code}: {message}")

    @property
    def transient(self) -> bool:
        """Worth retrying later (throttled, a server-side hiccup, or status 0: no answer at all)."""
        return self.status in GRAPH_TRANSIENT_STATUSES or self.status == 0

    @property
    def not_found(self) -> bool:
        return self.status == 404


class PlanningError(Exception):
    """A Dime.Scheduler call failed; `transient` says whether retrying later can help."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"Dime.Scheduler {status}: {message}")

    @property
    def transient(self) -> bool:
        return self.status in PLANNING_TRANSIENT_STATUSES or self.status == 0


class UnclearAnswer(PlanningError):
    """Dime.Scheduler answered a read, but not clearly about what was asked (a payload for another
    appointment, an empty or unreadable body): neither "here it is" nor "it is gone". Transient (502):
    retried, and on the monitor if it persists; never read as a deletion."""

    def __init__(self, message: str) -> None:
        super().__init__(502, message)
