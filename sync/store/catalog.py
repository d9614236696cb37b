"""Opening tables by name from one service client, each created at most once per process.

Repositories take a Store rather than a connection, so tests and benchmarks can hand them a
Store on Azurite and read one set of counters for every table.
"""
from __future__ import annotations

import threading
from typing import Any

from sync.store.connection import StorageLocation, table_service
from sync.store.stats import TableStats
from sync.store.tables import Table


class Store:
    def __init__(self, service: Any, *, stats: TableStats | None = None) -> None:
        self.service = service
        self.stats = stats if stats is not None else TableStats()
        self._tables: dict[str, Table] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_location(cls, location: StorageLocation, credential: Any = None, *,
                      stats: TableStats | None = None) -> "Store":
        return cls(table_service(location, credential), stats=stats)

    def table(self, name: str) -> Table:
        """The named table, created on first use; every table shares this Store's stats."""
        with self._lock:
            table = self._tables.get(name)
            if table is None:
                table = Table(self.service, name, stats=self.stats).ensure()
                self._tables[name] = table
            return table
