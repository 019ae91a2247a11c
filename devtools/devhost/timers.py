"""Timer triggers: NCRONTAB schedules (6 fields, seconds first; 5 fields also accepted, as the host
does) or TimeSpan intervals (``hh:mm:ss``), evaluated in UTC.

A timer never overlaps itself: a tick that comes while the previous run is still busy is skipped,
as the real host's singleton lock does; manual (admin) runs wait for the running one.
``run_on_startup`` runs once when the host starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from azure.functions.timer import TimerRequest
from croniter import croniter

from .errors import DevHostError
from .invocation import Invoker
from .loader import FunctionSpec
from .settings import is_timespan, parse_timespan

log = logging.getLogger("devhost")
PAST_DUE_AFTER = timedelta(seconds=1)  # woke this much later than scheduled: report past_due


class Schedule:
    """Next occurrences of a schedule expression."""

    def __init__(self, expression: str, function_name: str) -> None:
        self.expression = expression
        self.interval: timedelta | None = None
        if is_timespan(expression):
            self.interval = timedelta(seconds=parse_timespan(expression, f"function '{function_name}' schedule"))
            if self.interval <= timedelta(0):
                raise DevHostError(f"function '{function_name}': schedule interval must be positive")
            return
        fields = expression.split()
        if len(fields) not in (5, 6) or not croniter.is_valid(expression, second_at_beginning=len(fields) == 6):
            raise DevHostError(f"function '{function_name}': invalid NCRONTAB schedule {expression!r}")
        self._seconds_first = len(fields) == 6

    def next_after(self, moment: datetime) -> datetime:
        if self.interval is not None:
            return moment + self.interval
        nxt: datetime = croniter(self.expression, moment, second_at_beginning=self._seconds_first).get_next(datetime)
        return nxt


class TimerRunner:
    """Schedules one timer function."""

    def __init__(self, spec: FunctionSpec, schedule: Schedule, invoker: Invoker) -> None:
        self.spec = spec
        self.schedule = schedule
        self.invoker = invoker
        self.lock = asyncio.Lock()
        self.last: datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self._runs: set[asyncio.Task[None]] = set()

    def start(self, scheduled: bool) -> None:
        if scheduled:
            self._task = asyncio.create_task(self._loop(), name=f"timer:{self.spec.name}")

    async def stop(self, drain: float = 10) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._runs:
            await asyncio.wait(self._runs, timeout=drain)

    def run_now(self, past_due: bool = False, reason: str = "manual") -> None:
        """Run in the background, after a run that is still busy (admin invocation)."""
        task = asyncio.create_task(self._run(past_due, reason, wait=True))
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)

    async def _loop(self) -> None:
        if bool(self.spec.trigger.run_on_startup):
            self._spawn(False, "run on startup")
        due = self.schedule.next_after(datetime.now(UTC))
        while True:
            await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
            late = datetime.now(UTC) - due
            if self.lock.locked():
                log.info("Timer '%s': skipping the tick at %s, the previous run is still busy", self.spec.name, due)
            else:
                self._spawn(late > PAST_DUE_AFTER, f"timer fired at {due.isoformat()}")
            due = self.schedule.next_after(max(due, datetime.now(UTC)))

    def _spawn(self, past_due: bool, reason: str) -> None:
        task = asyncio.create_task(self._run(past_due, reason, wait=False))
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)

    async def _run(self, past_due: bool, reason: str, wait: bool) -> None:
        if not wait and self.lock.locked():
            return
        async with self.lock:
            now = datetime.now(UTC)
            status = {
                "Last": (self.last or now).isoformat(),
                "Next": self.schedule.next_after(now).isoformat(),
                "LastUpdated": now.isoformat(),
            }
            self.last = now
            request = TimerRequest(past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True})
            with contextlib.suppress(Exception):  # logged by the invoker; the timer keeps its schedule
                await self.invoker.invoke(self.spec, request, detail=f"Reason='{reason}', PastDue={past_due}")
