"""When to retry a Graph call and how long to wait.

Graph's throttling guidance: on 429 wait the `Retry-After` seconds and retry; without the header
back off exponentially; 503 and 504 are transient too and may carry Retry-After
(https://learn.microsoft.com/en-us/graph/throttling). Waiting is bounded per call: once the next
wait would push the total past the budget, the call gives up with the wait it would have needed,
so the caller can schedule the work for later instead of holding a worker.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable, Protocol

RETRYABLE_STATUSES = frozenset({429, 503, 504})


class Sleeper(Protocol):
    def __call__(self, seconds: float) -> None: ...


def real_sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).

    Returns None when absent or unreadable, 0 for a date in the past."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if seconds != seconds or seconds in (float("inf"), float("-inf")):
            return None
        return max(0.0, seconds)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    current = now or datetime.now(timezone.utc)
    return max(0.0, (moment - current).total_seconds())


@dataclass
class Backoff:
    """Exponential backoff with "equal jitter": half the step is fixed, half random, so retries
    from many workers spread out but never collapse to zero."""
    base: float = 0.5
    cap: float = 16.0
    rng: Callable[[], float] = field(default=random.random)

    def delay(self, attempt: int) -> float:
        """Wait before retry number `attempt` (1 = first retry)."""
        step = min(self.cap, self.base * (2 ** max(0, attempt - 1)))
        return step / 2 + self.rng() * step / 2


@dataclass
class RetryBudget:
    """Tracks the total wait of one logical call against its limit."""
    limit: float
    spent: float = 0.0

    def allows(self, wait: float) -> bool:
        return self.spent + wait <= self.limit + 1e-9

    def spend(self, wait: float) -> None:
        self.spent += wait


def next_wait(attempt: int, retry_after: float | None, backoff: Backoff) -> float:
    """The server's Retry-After wins; otherwise our backoff for this attempt."""
    return retry_after if retry_after is not None else backoff.delay(attempt)
