"""The `synclog` table: one row per sync decision, for the admin page and for support.

Partition `<integration id>!<yyyymmdd>` (a day of one integration: a day's log reads as one range
and old days can be dropped whole); RowKey = inverted time + a random suffix, so a page lists
the newest first. Each row names its asset and reservation, the input (which Outlook item, which
request), the decision and why, the Graph calls it cost and the outcome. Nothing here is a
secret: subjects of private meetings are never logged.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping

from sync.model import iso_utc
from sync.store.catalog import Store
from sync.store.keys import compose
from sync.store.tables import utc_moment

TABLE = "synclog"
_FAR_FUTURE = 10**16  # microseconds; inverted timestamps stay positive until year 2286


@dataclass(frozen=True)
class LogEntry:
    integration_id: str
    at: datetime
    decision: str
    outcome: str
    asset_id: str | None = None
    reservation_id: str | None = None
    input: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    graph_calls: int = 0

    def view(self) -> dict[str, Any]:
        return {"at": iso_utc(self.at), "integration_id": self.integration_id, "asset_id": self.asset_id,
                "reservation_id": self.reservation_id, "input": self.input, "decision": self.decision,
                "reason": self.reason, "graph_calls": self.graph_calls, "outcome": self.outcome}


def _partition(integration_id: str, day: datetime) -> str:
    return compose(integration_id, day.strftime("%Y%m%d"))


class SyncLog:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def table(self):
        return self._store.table(TABLE)

    def write(self, entry: LogEntry) -> None:
        micros = int(entry.at.timestamp() * 1_000_000)
        row = {"PartitionKey": _partition(entry.integration_id, entry.at),
               "RowKey": f"{_FAR_FUTURE - micros:017d}-{uuid.uuid4().hex[:8]}",
               "At": entry.at, "AssetId": entry.asset_id, "ReservationId": entry.reservation_id,
               "Input": json.dumps(entry.input, sort_keys=True)[:8000], "Decision": entry.decision,
               "Reason": (entry.reason or "")[:2000] or None, "GraphCalls": entry.graph_calls,
               "Outcome": entry.outcome}
        self.table.insert({name: value for name, value in row.items() if value is not None})

    def read(self, integration_id: str, *, now: datetime, days: int = 7, asset_id: str | None = None,
             reservation_id: str | None = None, limit: int = 200) -> list[LogEntry]:
        """The newest entries of the last `days` days, optionally of one asset or reservation."""
        found: list[LogEntry] = []
        clauses, params = [], {}
        if asset_id:
            clauses.append("AssetId eq @asset")
            params["asset"] = asset_id
        if reservation_id:
            clauses.append("ReservationId eq @reservation")
            params["reservation"] = reservation_id
        for back in range(days):
            day = now - timedelta(days=back)
            rows = self.table.query(" and ".join(clauses) or None, params or None,
                                    partition=_partition(integration_id, day), page_size=min(limit, 1000))
            for row in rows:
                found.append(_entry(integration_id, row))
                if len(found) >= limit:
                    return found
        return found

    def purge(self, integration_id: str, *, now: datetime, days: int = 400) -> int:
        removed = 0
        for back in range(days):
            key = _partition(integration_id, now - timedelta(days=back))
            rows = list(self.table.query(partition=key, select=["PartitionKey", "RowKey"]))
            if rows:
                self.table.transact([("delete", {"PartitionKey": key, "RowKey": r["RowKey"]}) for r in rows])
                removed += len(rows)
        return removed


def _entry(integration_id: str, row: Mapping[str, Any]) -> LogEntry:
    return LogEntry(integration_id=integration_id, at=utc_moment(row["At"]), decision=row["Decision"],
                    outcome=row["Outcome"], asset_id=row.get("AssetId"), reservation_id=row.get("ReservationId"),
                    input=json.loads(row.get("Input") or "{}"), reason=row.get("Reason"),
                    graph_calls=int(row.get("GraphCalls") or 0))

