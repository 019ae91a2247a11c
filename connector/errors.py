"""Errors of the two outside services, free of SDK imports so light code paths can catch them."""

from __future__ import annotations

import re

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


# -- what of an error may be recorded ------------------------------------------------------------------
# Error text reaches the activity log, the monitor and the log lines (telemetry). Upstream messages are
# not ours: Dime.Scheduler's validation errors quote the offending value and may echo the whole request
# (an appointment's subject and body), Graph's can quote property values, a gateway in between answers
# an HTML page, and any of them can be megabytes. Which part is an item's content cannot be known, so
# only the shape is kept: the status and code the connector puts first, and the message's own words,
# with every quoted value and everything from an echoed JSON/XML/HTML body onward removed, on one line,
# at most `MAX_ERROR_CHARS`. An unquoted subject in running text cannot be told from the words around
# it; the upstream messages seen quote what they echo.
MAX_ERROR_CHARS = 300
_SCAN_CHARS = 4 * MAX_ERROR_CHARS  # only the head is kept anyway; an open quote past it counts as unclosed
_QUOTED = (
    (re.compile(r'"(?:[^"\\]|\\.)*(?:"|$)', re.DOTALL), '"…"'),
    (re.compile(r"(?<!\w)'.*?(?:'(?!\w)|$)", re.DOTALL), "'…'"),  # not an apostrophe (can't, O'Brien)
    (re.compile("\u201c[^\u201d]*(?:\u201d|$)", re.DOTALL), "\u201c…\u201d"),  # typographic double quotes
    (re.compile("\u2018[^\u2019]*(?:\u2019|$)", re.DOTALL), "\u2018…\u2019"),  # and single ones
)
_PAYLOAD = re.compile(r"(?:\{|\[\s*[\[{\"']|<[A-Za-z!?/]).*", re.DOTALL)  # an echoed body, to the end
_SPACE = re.compile(r"[\s\x00-\x1f\x7f]+")


def error_summary(text: str) -> str:
    """The recordable part of an error message (see above): bounded, one line, no quoted values and no
    echoed payload. Idempotent, so a summary passed on is kept as it is."""
    head = text[:_SCAN_CHARS]
    for pattern, mark in _QUOTED:
        head = pattern.sub(mark, head)
    head = _SPACE.sub(" ", _PAYLOAD.sub("[payload removed]", head)).strip()
    return head if len(head) <= MAX_ERROR_CHARS else head[:MAX_ERROR_CHARS - 1].rstrip() + "…"
