"""The `series` table: recurring reservations as defined, and how far each is materialised.

Partition = integration id, RowKey = series id (the asset id then 32 hex digits, like a
reservation id, so a series finds its asset's partition without an index).

A series is kept as its first occurrence's local wall time, its duration, its IANA zone and
Graph's patternedRecurrence; occurrences are reservations of the asset (`series_id` set) with
ids derived from the series id and the occurrence's start, so materialising the same stretch
twice writes the same rows. `MaterializedUntil` is the watermark: every occurrence starting
before it exists. The nightly job only ever moves it forward, ETag-guarded. `NextStart` is
the first occurrence after the watermark (the watermark itself while unknown), so the nightly
scan reads only the series that have something to add.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Iterator, Mapping

from sync.store.catalog import Store
from sync.store.tables import REPLACE, etag_of, utc_moment

TABLE = "series"
OPEN = "open"
ENDED = "ended"
CANCELLED = "cancelled"


def new_series_id(asset_id: str) -> str:
    return asset_id + uuid.uuid4().hex


def occurrence_reservation_id(series_id: str, local_start: datetime) -> str:
    """Deterministic: one occurrence of one series is always the same reservation."""
    digest = hashlib.sha256(f"{series_id}|{local_start.isoformat()}".encode("utf-8")).hexdigest()
    return series_id[:32] + digest[:32]


@dataclass(frozen=True)
class Series:
    id: str
    integration_id: str
    asset_id: str
    booker_user_id: str | None
    booker_email: str
    booker_name: str | None
    subject: str
    private: bool
    time_zone: str
    first_local: datetime  # naive wall time of the first occurrence
    duration_minutes: int
    recurrence: dict[str, Any]  # Graph's patternedRecurrence
    status: str
    materialized_until: datetime
    created_at: datetime
    updated_at: datetime
    body: str | None = field(default=None, repr=False)
    next_start: datetime | None = None
    etag: str | None = field(default=None, compare=False)

    @property
    def is_open(self) -> bool:
        return self.status == OPEN


class SeriesRepo:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def table(self):
        return self._store.table(TABLE)

    def get(self, integration_id: str, series_id: str) -> Series | None:
        row = self.table.get(integration_id, series_id)
        return from_entity(row) if row is not None else None

    def insert(self, series: Series) -> Series:
        etag = self.table.insert(to_entity(series))
        return replace(series, etag=etag)

    def update(self, series: Series) -> Series:
        """ETag-guarded (ConflictError when another writer moved it meanwhile)."""
        etag = self.table.update(to_entity(series), series.etag, mode=REPLACE)
        return replace(series, etag=etag)

    def delete(self, integration_id: str, series_id: str) -> None:
        self.table.delete(integration_id, series_id)

    def open_series(self, *, due_before: datetime | None = None) -> Iterator[Series]:
        """Every open series of every integration, optionally only those materialised short of
        `due_before` (the nightly job's scan)."""
        clause, params = "Status eq @open", {"open": OPEN}
        if due_before is not None:
            clause += " and NextStart lt @due"
            params["due"] = due_before
        for row in self.table.query(clause, params):
            yield from_entity(row)

    def of_booker(self, integration_id: str, user_id: str) -> list[Series]:
        rows = self.table.query("BookerUserId eq @user and Status eq @open", {"user": user_id, "open": OPEN},
                                partition=integration_id)
        return [from_entity(row) for row in rows]


def to_entity(series: Series) -> dict[str, Any]:
    entity = {
        "PartitionKey": series.integration_id, "RowKey": series.id, "AssetId": series.asset_id,
        "BookerUserId": series.booker_user_id, "BookerEmail": series.booker_email,
        "BookerName": series.booker_name, "Subject": series.subject, "Body": series.body,
        "Private": series.private, "TimeZone": series.time_zone,
        "FirstLocal": series.first_local.isoformat(), "DurationMinutes": series.duration_minutes,
        "Recurrence": json.dumps(series.recurrence, sort_keys=True), "Status": series.status,
        "MaterializedUntil": series.materialized_until, "NextStart": series.next_start or series.materialized_until,
        "CreatedAt": series.created_at,
        "UpdatedAt": series.updated_at,
    }
    return {name: value for name, value in entity.items() if value is not None}


def from_entity(row: Mapping[str, Any]) -> Series:
    return Series(
        id=row["RowKey"], integration_id=row["PartitionKey"], asset_id=row["AssetId"],
        booker_user_id=row.get("BookerUserId"), booker_email=row["BookerEmail"], booker_name=row.get("BookerName"),
        subject=row.get("Subject") or "", body=row.get("Body"), private=bool(row.get("Private")),
        time_zone=row["TimeZone"], first_local=datetime.fromisoformat(row["FirstLocal"]),
        duration_minutes=int(row["DurationMinutes"]), recurrence=json.loads(row["Recurrence"]),
        status=row["Status"], materialized_until=utc_moment(row["MaterializedUntil"]),
        next_start=utc_moment(row.get("NextStart")),
        created_at=utc_moment(row["CreatedAt"]), updated_at=utc_moment(row["UpdatedAt"]), etag=etag_of(row))
