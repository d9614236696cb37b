"""Counts of what the Table layer asked of the service, for benchmarks and run summaries.

Counted when this layer issues a call, whether it succeeds or not; retries made inside the
Azure SDK are not visible here. Several tables may share one TableStats to get a total.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields


@dataclass
class TableStats:
    requests: int = 0
    """Service calls: point reads and writes, query pages, transactions, table creation."""
    transactions: int = 0
    """Entity-group transactions submitted (each is one request)."""
    operations: int = 0
    """Entity writes sent: point writes plus every operation inside a transaction."""
    pages: int = 0
    """Query pages fetched (each is one request; a page may be empty)."""
    rows_read: int = 0
    """Entities returned by point reads and queries."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, **counts: int) -> None:
        with self._lock:
            for name, amount in counts.items():
                if name.startswith("_") or not hasattr(self, name):
                    raise AttributeError(f"TableStats has no counter {name!r}")
                setattr(self, name, getattr(self, name) + amount)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    def reset(self) -> None:
        with self._lock:
            for f in fields(self):
                if not f.name.startswith("_"):
                    setattr(self, f.name, 0)
