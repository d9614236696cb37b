"""Firing a timer trigger on its NCRONTAB schedule (UTC).

One thread per timer runs the function itself, so a run never overlaps the previous one (the
host's singleton behaviour); occurrences that go by while a run overruns are skipped, as in the
host. `past_due` is set when a run starts after the following occurrence has already come
(the machine slept, say). `run_on_startup` fires once when the host starts.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import Callable

from azure.functions.timer import TimerRequest

from devtools.localhost.invocation import Invoker
from devtools.localhost.metadata import FunctionInfo
from devtools.localhost.ncrontab import Schedule

log = logging.getLogger("devtools.localhost.timers")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def timer_request(scheduled: datetime | None, following: datetime, last: datetime | None,
                  now: datetime, past_due: bool) -> TimerRequest:
    """The TimerRequest the worker would build from the host's timer info."""
    status = {
        "Last": (last or scheduled or now).isoformat(),
        "Next": following.isoformat(),
        "LastUpdated": now.isoformat(),
    }
    return TimerRequest(past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True})


class TimerRunner:
    def __init__(self, info: FunctionInfo, schedule: Schedule, invoker: Invoker,
                 clock: Callable[[], datetime] = utc_now):
        self.info = info
        self.schedule = schedule
        self.invoker = invoker
        self.clock = clock
        self._stop = threading.Event()
        self._last: datetime | None = None
        self._thread = threading.Thread(target=self._run, name=f"timer-{info.name}", daemon=True)

    @property
    def name(self) -> str:
        return self.info.name

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def fire_now(self) -> None:
        """Run once outside the schedule (admin endpoint), in the caller's thread."""
        now = self.clock()
        self._invoke(timer_request(None, self.schedule.next_after(now), self._last, now, past_due=False))

    def _run(self) -> None:
        if self.info.run_on_startup:
            now = self.clock()
            self._invoke(timer_request(None, self.schedule.next_after(now), None, now, past_due=False))
        due = self.schedule.next_after(self.clock())
        while not self._stop.is_set():
            wait = (due - self.clock()).total_seconds()
            if wait > 0:
                self._stop.wait(min(wait, 60.0))  # re-read the clock now and then
                continue
            now = self.clock()
            following = self.schedule.next_after(due)
            past_due = now >= following  # at least one occurrence went by unrun
            self._invoke(timer_request(due, following, self._last, now, past_due))
            self._last = due
            due = self.schedule.next_after(max(self.clock(), due))

    def _invoke(self, request: TimerRequest) -> None:
        try:
            self.invoker.call(self.info, request)
        except Exception:
            log.exception("timer function %s failed", self.name)
