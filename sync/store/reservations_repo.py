"""The `reservations` table: the bookings of one asset in one partition, so a booking, its
index rows, its published-event outbox and the asset's lock commit in one transaction.

Partition `<integration id>!<asset id>`:

| RowKey | row |
|---|---|
| `r!<reservation id>` | the reservation |
| `k!<sha256(iCalUId)>` | index: the reservation an Outlook meeting (any copy) belongs to |
| `x!<sha256(room event id)>` | index: the reservation a room-calendar item mirrors |
| `g!<sha256(organizer event id)>` | index: the reservation an organizer's event mirrors |
| `t!<sha256(room event id)>` | tombstone: a room item deleted before anything was linked to it |
| `o!<event id>` | outbox: a reservation event committed with its change, deleted once queued |
| `b!<reservation id>` | intent: Outlook must be brought in line with the reservation (the booking outbox) |
| `lock` | its ETag serialises every write of the partition (`Version` counts them) |

Every write goes through `commit`, which updates the lock row If-Match on the ETag read before
planning: two workers that planned against the same state cannot both commit, so two bookings
of one slot cannot both succeed. The loser re-reads and plans again.

A reservation id starts with its asset id (32 hex digits, then 32 more), so `GET
/api/reservations/{id}` finds its partition without an index. Reservations mirrored from a room
event get an id derived from that event id: two deliveries creating the same booking collide
on the row instead of making two.
"""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Mapping, Sequence

from sync.booking_model import CONFIRMED, Organizer, Reservation
from sync.store.catalog import Store
from sync.store.errors import ConflictError, NotFoundError, TransactionError
from sync.store.keys import compose, hash_key, prefix_range
from sync.store.tables import MAX_PAGE_SIZE, MERGE, REPLACE, etag_of, utc_moment

TABLE = "reservations"
LOCK_ROW = "lock"
RESERVATION = "r"
BY_ICAL = "k"
BY_ROOM_EVENT = "x"
BY_ORGANIZER_EVENT = "g"
OUTBOX = "o"
GONE = "t"
INTENT = "b"

_ID = re.compile(r"^[0-9a-f]{64}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def partition(integration_id: str, asset_id: str) -> str:
    return compose(integration_id, asset_id)


def is_reservation_id(value: object) -> bool:
    return isinstance(value, str) and bool(_ID.match(value))


def asset_of(reservation_id: str) -> str:
    return reservation_id[:32]


def new_reservation_id(asset_id: str) -> str:
    return asset_id + uuid.uuid4().hex


def reservation_id_for_event(asset_id: str, room_event_id: str) -> str:
    """Deterministic: the same room event always maps to the same reservation id."""
    return asset_id + hashlib.sha256(room_event_id.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class PublishedEvent:
    """A reservation event waiting in the outbox (`event_id` is stable across re-sends)."""

    event_id: str
    type: str  # reservation.created / reservation.updated / reservation.cancelled
    reservation: dict[str, Any]
    at: datetime

    def message(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "type": self.type, "at": self.at.isoformat().replace("+00:00", "Z"),
                "reservation": self.reservation}


@dataclass(frozen=True)
class Intent:
    """A platform change not yet brought to Outlook. `seq` grows with every change of the
    reservation; `attempted` is the seq of the last Graph create that may have happened (then
    the event is looked up by its extended property before creating again); a live `lease_until`
    means a worker is on it."""

    integration_id: str
    asset_id: str
    reservation_id: str
    seq: int
    changed_at: datetime
    lease_until: datetime | None = None
    attempted: int | None = None
    etag: str | None = None


def intent_operation(integration_id: str, asset_id: str, reservation_id: str, seq: int, at: datetime, *,
                     lease_until: datetime | None = None, attempted: int | None = None) -> tuple:
    """The intent row for `commit(..., extra=[...])`: merged, so a worker's lease and attempt
    marks written meanwhile survive a new change."""
    entity: dict[str, Any] = {"PartitionKey": partition(integration_id, asset_id),
                              "RowKey": compose(INTENT, reservation_id), "Seq": seq, "ChangedAt": at}
    if lease_until is not None:
        entity["LeaseUntil"] = lease_until
    if attempted is not None:
        entity["Attempted"] = attempted
    return ("upsert", entity, {"mode": MERGE})


def intent_key(intent: Intent) -> str:
    return partition(intent.integration_id, intent.asset_id)


def intent_row_key(intent: Intent) -> str:
    return compose(INTENT, intent.reservation_id)


def _intent(row: Mapping[str, Any]) -> Intent:
    integration_id, asset_id = row["PartitionKey"].split("!", 1)
    attempted = row.get("Attempted")
    return Intent(integration_id=integration_id, asset_id=asset_id, reservation_id=row["RowKey"].split("!", 1)[1],
                  seq=int(row.get("Seq") or 0), changed_at=utc_moment(row.get("ChangedAt")),
                  lease_until=utc_moment(row.get("LeaseUntil")),
                  attempted=int(attempted) if attempted is not None and int(attempted) >= 0 else None,
                  etag=etag_of(row))


@dataclass
class Snapshot:
    """What a planner sees of one partition, and the lock ETag to commit against."""

    lock_etag: str
    version: int
    rows: dict[str, Reservation] = field(default_factory=dict)


class ReservationsRepo:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def table(self):
        return self._store.table(TABLE)

    # reads
    def get(self, integration_id: str, asset_id: str, reservation_id: str) -> Reservation | None:
        row = self.table.get(partition(integration_id, asset_id), compose(RESERVATION, reservation_id))
        return from_entity(row) if row is not None else None

    def lock(self, integration_id: str, asset_id: str) -> tuple[str, int]:
        """The lock row's ETag and version, creating the row on first use."""
        key = partition(integration_id, asset_id)
        row = self.table.get(key, LOCK_ROW)
        if row is None:
            try:
                etag = self.table.insert({"PartitionKey": key, "RowKey": LOCK_ROW, "Version": 0})
                return etag, 0
            except ConflictError:  # another writer created it first: read theirs
                row = self.table.get(key, LOCK_ROW)
        return etag_of(row), int(row.get("Version") or 0)

    def find(self, integration_id: str, asset_id: str, *, ical_uid: str | None = None,
             room_event_id: str | None = None, organizer_event_id: str | None = None) -> Reservation | None:
        """The reservation an Outlook item belongs to, through the index rows."""
        key = partition(integration_id, asset_id)
        for kind, value in ((BY_ROOM_EVENT, room_event_id), (BY_ORGANIZER_EVENT, organizer_event_id),
                            (BY_ICAL, ical_uid)):
            if not value:
                continue
            pointer = self.table.get(key, compose(kind, hash_key(value)))
            if pointer is not None:
                found = self.get(integration_id, asset_id, pointer["ReservationId"])
                if found is not None:
                    return found
        return None

    def is_gone(self, integration_id: str, asset_id: str, room_event_id: str) -> bool:
        """True when a tombstone says this room item was deleted before anything was linked to it."""
        row = self.table.get(partition(integration_id, asset_id), compose(GONE, hash_key(room_event_id)))
        return row is not None

    def tombstone(self, integration_id: str, asset_id: str, room_event_id: str) -> list[tuple]:
        """The operation that records a tombstone (committed with the lock like every write)."""
        return [("upsert", {"PartitionKey": partition(integration_id, asset_id),
                            "RowKey": compose(GONE, hash_key(room_event_id)), "Gone": True}, {"mode": REPLACE})]

    def overlapping(self, integration_id: str, asset_id: str, start: datetime, end: datetime) -> list[Reservation]:
        """Confirmed reservations of the asset that overlap [start, end)."""
        low, high = prefix_range(RESERVATION)
        rows = self.table.query(
            "RowKey ge @low and RowKey lt @high and Status eq @status and Start lt @end and End gt @start",
            {"low": low, "high": high, "status": CONFIRMED, "start": start, "end": end},
            partition=partition(integration_id, asset_id))
        return [from_entity(row) for row in rows]

    def in_range(self, integration_id: str, asset_id: str, start: datetime | None, end: datetime | None, *,
                 page_size: int = MAX_PAGE_SIZE, continuation: Mapping[str, Any] | None = None):
        """One page of the asset's reservations overlapping [start, end) (either end open)."""
        low, high = prefix_range(RESERVATION)
        clauses, params = ["RowKey ge @low and RowKey lt @high"], {"low": low, "high": high}
        if end is not None:
            clauses.append("Start lt @end")
            params["end"] = end
        if start is not None:
            clauses.append("End gt @start")
            params["start"] = start
        page = self.table.query_page(" and ".join(clauses), params, partition=partition(integration_id, asset_id),
                                     page_size=page_size, continuation=continuation)
        return [from_entity(row) for row in page.rows], page.continuation

    def of_series(self, integration_id: str, asset_id: str, series_id: str) -> list[Reservation]:
        low, high = prefix_range(RESERVATION)
        rows = self.table.query("RowKey ge @low and RowKey lt @high and SeriesId eq @series",
                                {"low": low, "high": high, "series": series_id},
                                partition=partition(integration_id, asset_id))
        return [from_entity(row) for row in rows]

    def by_organizer(self, integration_id: str, *, email: str | None = None, user_id: str | None = None,
                     page_size: int = MAX_PAGE_SIZE, continuation: Mapping[str, Any] | None = None):
        """A person's reservations across the integration's assets (a range scan of its partitions)."""
        low, high = integration_id + "!", integration_id + '"'
        column, value = ("OrganizerUserId", user_id) if user_id else ("OrganizerEmail", email)
        page = self.table.query_page(f"PartitionKey ge @low and PartitionKey lt @high and {column} eq @value",
                                     {"low": low, "high": high, "value": value},
                                     page_size=page_size, continuation=continuation)
        return [from_entity(row) for row in page.rows if row["RowKey"].startswith("r!")], page.continuation

    def matching(self, integration_id: str, asset_id: str | None = None, *, start: datetime | None = None,
                 end: datetime | None = None, starting_from: datetime | None = None,
                 organizer_email: str | None = None, organizer_user_id: str | None = None) -> Iterator[Reservation]:
        """Every reservation of one asset (or, without `asset_id`, of every asset of the
        integration) that overlaps [start, end), starts at or after `starting_from` and has this
        organizer; all of it filtered by the Table service, in its key order (the API's reads)."""
        low, high = prefix_range(RESERVATION)
        clauses, params = ["RowKey ge @low and RowKey lt @high"], {"low": low, "high": high}
        if asset_id is None:  # the integration's partitions are `<integration id>!<asset id>`
            clauses.insert(0, "PartitionKey ge @plow and PartitionKey lt @phigh")
            params.update(plow=integration_id + "!", phigh=integration_id + '"')
        for clause, name, value in (("Start lt @end", "end", end), ("End gt @start", "start", start),
                                    ("Start ge @after", "after", starting_from),
                                    ("OrganizerEmail eq @email", "email", organizer_email),
                                    ("OrganizerUserId eq @user", "user", organizer_user_id)):
            if value is not None:
                clauses.append(clause)
                params[name] = value
        rows = self.table.query(" and ".join(clauses), params,
                                partition=partition(integration_id, asset_id) if asset_id else None)
        return (from_entity(row) for row in rows)

    def pending_events(self, integration_id: str, asset_id: str) -> list[PublishedEvent]:
        low, high = prefix_range(OUTBOX)
        rows = self.table.query("RowKey ge @low and RowKey lt @high", {"low": low, "high": high},
                                partition=partition(integration_id, asset_id))
        return [PublishedEvent(event_id=row["RowKey"].split("!", 1)[1], type=row["Type"],
                               reservation=json.loads(row["Reservation"]), at=utc_moment(row["At"]))
                for row in rows]

    def partitions_with_outbox(self) -> Iterator[tuple[str, str]]:
        """(integration id, asset id) of every partition holding unsent events (the sweeper's scan)."""
        seen = set()
        for row in self.table.query("RowKey ge 'o!' and RowKey lt 'o\"'", select=["PartitionKey"]):
            if row["PartitionKey"] not in seen:
                seen.add(row["PartitionKey"])
                integration_id, asset_id = row["PartitionKey"].split("!", 1)
                yield integration_id, asset_id

    def with_intent(self, integration_id: str, asset_id: str, reservation_id: str, *, lock: bool = False):
        """The reservation, its intent and (with `lock`) the lock's ETag and version, in one
        query: `(reservation or None, intent or None, (etag, version) or None)`."""
        keys = [compose(RESERVATION, reservation_id), compose(INTENT, reservation_id)] + ([LOCK_ROW] if lock else [])
        params = {f"k{n}": key for n, key in enumerate(keys)}
        rows = {row["RowKey"]: row for row in self.table.query(
            " or ".join(f"RowKey eq @k{n}" for n in range(len(keys))), params,
            partition=partition(integration_id, asset_id))}
        reservation = rows.get(keys[0])
        intent = rows.get(keys[1])
        lock_row = rows.get(LOCK_ROW) if lock else None
        return (from_entity(reservation) if reservation else None, _intent(intent) if intent else None,
                (etag_of(lock_row), int(lock_row.get("Version") or 0)) if lock_row else None)

    def intent(self, integration_id: str, asset_id: str, reservation_id: str) -> Intent | None:
        row = self.table.get(partition(integration_id, asset_id), compose(INTENT, reservation_id))
        return _intent(row) if row is not None else None

    def intents_of(self, integration_id: str, asset_id: str) -> list[Intent]:
        low, high = prefix_range(INTENT)
        return [_intent(row) for row in self.table.query("RowKey ge @low and RowKey lt @high",
                                                          {"low": low, "high": high},
                                                          partition=partition(integration_id, asset_id))]

    def several(self, integration_id: str, asset_id: str, reservation_ids) -> list[Reservation]:
        """The stored reservations among the ids (14 row keys per query: the filter limit)."""
        wanted = sorted(set(reservation_ids))
        found: list[Reservation] = []
        for start in range(0, len(wanted), 14):
            chunk = wanted[start:start + 14]
            params = {f"k{n}": compose(RESERVATION, rid) for n, rid in enumerate(chunk)}
            rows = self.table.query(" or ".join(f"RowKey eq @k{n}" for n in range(len(chunk))), params,
                                    partition=partition(integration_id, asset_id))
            found.extend(from_entity(row) for row in rows)
        return found

    def intents(self, *, changed_before: datetime | None = None) -> Iterator[Intent]:
        """Every intent of every partition (the sweeper's scan), optionally only older ones."""
        low, high = prefix_range(INTENT)
        clause, params = "RowKey ge @low and RowKey lt @high", {"low": low, "high": high}
        if changed_before is not None:
            clause += " and ChangedAt lt @before"
            params["before"] = changed_before
        for row in self.table.query(clause, params):
            yield _intent(row)

    def claim_intent(self, intent: Intent, lease_until: datetime, attempted: int | None) -> Intent:
        """Takes the lease If-Match on the intent's ETag (ConflictError when it changed)."""
        entity: dict[str, Any] = {"PartitionKey": partition(intent.integration_id, intent.asset_id),
                                  "RowKey": compose(INTENT, intent.reservation_id), "LeaseUntil": lease_until}
        if attempted is not None:
            entity["Attempted"] = attempted
        etag = self.table.update(entity, intent.etag, mode=MERGE)
        return replace(intent, lease_until=lease_until,
                       attempted=attempted if attempted is not None else intent.attempted, etag=etag)

    def release_intent(self, intent: Intent, *, done: bool) -> bool:
        """`done`: deletes the intent unless a newer change (a higher seq) arrived meanwhile;
        otherwise, or when not done, only ends the lease. False when work remains."""
        key = partition(intent.integration_id, intent.asset_id)
        row_key = compose(INTENT, intent.reservation_id)
        current = intent if intent.etag else self.intent(intent.integration_id, intent.asset_id, intent.reservation_id)
        for _ in range(5):
            if current is None:
                return True
            try:
                if done and current.seq == intent.seq:
                    self.table.delete(key, row_key, etag=current.etag)
                    return True
                self.table.update({"PartitionKey": key, "RowKey": row_key, "LeaseUntil": _EPOCH}, current.etag,
                                  mode=MERGE)
                return False
            except NotFoundError:
                return True
            except ConflictError:
                current = self.intent(intent.integration_id, intent.asset_id, intent.reservation_id)
        return False

    # writes
    def commit(self, integration_id: str, asset_id: str, lock_etag: str, version: int,
               reservations: Sequence[Reservation], events: Sequence[PublishedEvent] = (),
               extra: Iterable[tuple] = ()) -> None:
        """Writes reservations (with their index rows) and outbox events in one transaction, If-Match
        on the lock row. ConflictError when any other write reached the partition since."""
        key = partition(integration_id, asset_id)
        operations: list[tuple] = [("update", {"PartitionKey": key, "RowKey": LOCK_ROW, "Version": version + 1},
                                    {"etag": lock_etag})]
        for reservation in reservations:
            operations.append(("upsert", to_entity(reservation), {"mode": REPLACE}))
            for kind, value in ((BY_ICAL, reservation.ical_uid), (BY_ROOM_EVENT, reservation.room_event_id),
                                (BY_ORGANIZER_EVENT, reservation.organizer_event_id)):
                if value:
                    operations.append(("upsert", {"PartitionKey": key, "RowKey": compose(kind, hash_key(value)),
                                                  "ReservationId": reservation.id}, {"mode": REPLACE}))
        for event in events:
            operations.append(("create", {"PartitionKey": key, "RowKey": compose(OUTBOX, event.event_id),
                                          "Type": event.type, "Reservation": json.dumps(event.reservation),
                                          "At": event.at}))
        operations.extend(extra)
        self.table.transact(_dedupe_index_rows(operations), atomic=True)

    def clear_events(self, integration_id: str, asset_id: str, event_ids: Sequence[str]) -> None:
        """Deletes sent outbox rows, 100 per transaction; rows another flush already removed are
        fine (a transaction refuses a missing row, so that chunk is redone row by row)."""
        key = partition(integration_id, asset_id)
        for start in range(0, len(event_ids), 100):
            chunk = [compose(OUTBOX, event_id) for event_id in event_ids[start:start + 100]]
            try:
                self.table.transact([("delete", {"PartitionKey": key, "RowKey": row_key}) for row_key in chunk])
            except TransactionError:
                for row_key in chunk:
                    self.table.delete(key, row_key)

    def purge_asset(self, integration_id: str, asset_id: str) -> int:
        key = partition(integration_id, asset_id)
        rows = list(self.table.query(partition=key, select=["PartitionKey", "RowKey"]))
        if rows:
            self.table.transact([("delete", {"PartitionKey": key, "RowKey": row["RowKey"]}) for row in rows])
        return len(rows)


def _dedupe_index_rows(operations: list[tuple]) -> list[tuple]:
    """Two reservations of one commit may share an index value (a series' iCalUId): keep the last."""
    seen: dict[str, int] = {}
    for position, operation in enumerate(operations):
        seen[operation[1]["RowKey"]] = position
    return [operation for position, operation in enumerate(operations) if seen[operation[1]["RowKey"]] == position]


def to_entity(reservation: Reservation) -> dict[str, Any]:
    entity = {
        "PartitionKey": partition(reservation.integration_id, reservation.asset_id),
        "RowKey": compose(RESERVATION, reservation.id),
        "Start": reservation.start, "End": reservation.end, "TimeZone": reservation.time_zone,
        "Subject": reservation.subject, "Body": reservation.body,
        "OrganizerEmail": reservation.organizer.email, "OrganizerUserId": reservation.organizer.user_id,
        "OrganizerName": reservation.organizer.name, "Origin": reservation.origin, "Status": reservation.status,
        "SyncStatus": reservation.sync_status, "SyncReason": reservation.sync_reason,
        "SeriesId": reservation.series_id, "OccurrenceStart": reservation.occurrence_start,
        "Private": reservation.private, "CreatedAt": reservation.created_at, "UpdatedAt": reservation.updated_at,
        "ICalUId": reservation.ical_uid, "RoomEventId": reservation.room_event_id,
        "OrganizerEventId": reservation.organizer_event_id, "SourceChangeKey": reservation.source_change_key,
        "SourceModifiedAt": reservation.source_modified_at,
    }
    return {name: value for name, value in entity.items() if value is not None}


def from_entity(row: Mapping[str, Any]) -> Reservation:
    integration_id, asset_id = row["PartitionKey"].split("!", 1)
    return Reservation(
        id=row["RowKey"].split("!", 1)[1], integration_id=integration_id, asset_id=asset_id,
        start=utc_moment(row["Start"]), end=utc_moment(row["End"]), time_zone=row.get("TimeZone") or "UTC",
        subject=row.get("Subject") or "", body=row.get("Body"),
        organizer=Organizer(email=row.get("OrganizerEmail"), user_id=row.get("OrganizerUserId"),
                            name=row.get("OrganizerName")),
        origin=row["Origin"], status=row["Status"], sync_status=row.get("SyncStatus") or "synced",
        sync_reason=row.get("SyncReason"), series_id=row.get("SeriesId"),
        occurrence_start=utc_moment(row.get("OccurrenceStart")), private=bool(row.get("Private")),
        created_at=utc_moment(row["CreatedAt"]), updated_at=utc_moment(row["UpdatedAt"]),
        ical_uid=row.get("ICalUId"), room_event_id=row.get("RoomEventId"),
        organizer_event_id=row.get("OrganizerEventId"), source_change_key=row.get("SourceChangeKey"),
        source_modified_at=utc_moment(row.get("SourceModifiedAt")), etag=etag_of(row))
