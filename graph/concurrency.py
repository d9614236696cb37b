"""At most N requests in flight per mailbox in this process.

Outlook allows 4 concurrent requests per app and mailbox and answers the fifth with 429
"MailboxConcurrency" (https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits).
Waiting for a slot here is cheaper than being throttled there.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import ContextManager, Iterator, Mapping

from graph.config import OUTLOOK_MAILBOX_CONCURRENCY


def mailbox_key(scope: str, mailbox: str) -> tuple[str, str]:
    """Mailboxes are addressed by SMTP address, UPN or object id: compare case-insensitively,
    within one scope (tenant), since the limit is per app and mailbox."""
    return scope.lower(), mailbox.strip().lower()


class MailboxLimiter:
    """Counting slots per mailbox key. A caller may take several slots of several mailboxes at once
    (a $batch); that happens atomically, so two batches can never deadlock by each holding part."""

    def __init__(self, limit: int = OUTLOOK_MAILBOX_CONCURRENCY) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._cond = threading.Condition()
        self._in_use: dict[tuple[str, str], int] = {}

    def in_flight(self, key: tuple[str, str]) -> int:
        with self._cond:
            return self._in_use.get(key, 0)

    def _fits(self, wanted: Mapping[tuple[str, str], int]) -> bool:
        return all(self._in_use.get(key, 0) + count <= self.limit for key, count in wanted.items())

    @contextmanager
    def slots(self, wanted: Mapping[tuple[str, str], int]) -> Iterator[None]:
        """Holds `count` slots for each key (each count is clipped to the limit)."""
        claim = {key: min(self.limit, count) for key, count in wanted.items() if count > 0}
        if not claim:
            yield
            return
        with self._cond:
            self._cond.wait_for(lambda: self._fits(claim))
            for key, count in claim.items():
                self._in_use[key] = self._in_use.get(key, 0) + count
        try:
            yield
        finally:
            with self._cond:
                for key, count in claim.items():
                    left = self._in_use[key] - count
                    if left:
                        self._in_use[key] = left
                    else:
                        del self._in_use[key]
                self._cond.notify_all()

    def slot(self, key: tuple[str, str]) -> ContextManager[None]:
        return self.slots({key: 1})


# One per process: every GraphClient shares it, because the limit counts all our requests.
shared_limiter = MailboxLimiter()
