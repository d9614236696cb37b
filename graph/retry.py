"""When to retry a Graph call and how long to wait.

Graph's throttling guidance: on 429 wait the `Retry-After` seconds and retry; without the header
back off exponentially; 503 and 504 are transient too and may carry Retry-After
(https://learn.microsoft.com/en-us/graph/throttling). Waiting is bounded per call: once the next
wait would push the total past the budget, the call gives up with the wait it would have needed,
so the caller can schedule the work for later instead of holding a worker.

Which requests may be sent again after a failure that does not prove they were not applied
(no answer, a dropped connection, a 5xx) is decided by `is_retry_safe`: GET, HEAD, OPTIONS, PUT
and DELETE are idempotent; PATCH and POST only when an If-Match header makes a second copy fail
instead of applying twice, or when the caller declares it (a POST whose body carries a
transactionId). A 429 is always retried: Graph refused the request without applying it.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable, Mapping, Protocol

RETRYABLE_STATUSES = frozenset({429, 503, 504})
# Graph did not apply a throttled request: any request may be sent again after a 429.
NOT_APPLIED_STATUSES = frozenset({429})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def is_retry_safe(method: str, headers: Mapping[str, str] | None = None, declared: bool | None = None) -> bool:
    """Whether a request that may already have been applied can be sent again.

    `declared` is the caller's word and wins (True for a POST with a transactionId, False for a
    call whose repetition would be visible); otherwise idempotent methods are safe and PATCH or
    POST only with If-Match."""
    if declared is not None:
        return declared
    if method.upper() in IDEMPOTENT_METHODS:
        return True
    return any(name.lower() == "if-match" for name in (headers or {}))


def may_have_been_applied(status: int) -> bool:
    """A failure status after which an unsafe request must not be resent blindly: any 5xx."""
    return status >= 500


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
