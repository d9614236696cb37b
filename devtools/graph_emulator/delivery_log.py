"""A record of every call the emulator made to a notification endpoint (validation handshakes,
notification POSTs, lifecycle POSTs) and of every notification it gave up on, so tests and
operators can see retries, drops and timings. URLs are stored with `code=` redacted."""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devtools.graph_emulator.clock import graph_datetime
from devtools.graph_emulator.state import World, new_guid

SERVICE = "delivery_log"
MAX_ENTRIES = 20000


@dataclass
class LogEntry:
    time: datetime
    tenant_id: str | None
    kind: str  # validation | notification | lifecycle
    url: str
    outcome: str  # delivered | failed | timeout | error | dropped | expired | discarded | validated | rejected
    status: int | None = None
    duration_ms: int | None = None
    attempt: int | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    next_attempt_at: datetime | None = None
    id: str = field(default_factory=new_guid)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": graph_datetime(self.time),
            "tenantId": self.tenant_id,
            "kind": self.kind,
            "url": self.url,
            "attempt": self.attempt,
            "status": self.status,
            "durationMs": self.duration_ms,
            "outcome": self.outcome,
            "error": self.error,
            "nextAttemptDateTime": graph_datetime(self.next_attempt_at) if self.next_attempt_at else None,
            "items": self.items,
        }


class DeliveryLog:
    def __init__(self) -> None:
        self._entries: deque[LogEntry] = deque(maxlen=MAX_ENTRIES)
        self._lock = threading.Lock()

    def add(self, entry: LogEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self, tenant_id: str | None = None, subscription_id: str | None = None,
                kind: str | None = None) -> list[LogEntry]:
        with self._lock:
            selected = list(self._entries)
        if tenant_id:
            selected = [e for e in selected if e.tenant_id == tenant_id]
        if kind:
            selected = [e for e in selected if e.kind == kind]
        if subscription_id:
            selected = [e for e in selected if any(i.get("subscriptionId") == subscription_id for i in e.items)]
        return selected

    def clear(self, tenant_id: str | None = None) -> int:
        with self._lock:
            before = len(self._entries)
            kept = [e for e in self._entries if tenant_id and e.tenant_id != tenant_id]
            self._entries.clear()
            self._entries.extend(kept)
            return before - len(kept)


def delivery_log(world: World) -> DeliveryLog:
    return world.service(SERVICE, DeliveryLog)
