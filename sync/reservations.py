"""Bookings made through the platform: checked, serialised per asset, written with their intent.

`POST /api/reservations` and its PATCH/DELETE land here. A request is checked field by field
(400 malformed, 422 against a rule, each naming the field), then written under the asset's
lock row: the overlap check and the commit share one lock ETag, so of two overlapping requests
only one can commit; the other re-reads, finds the winner and answers 409 naming it. The
reservation, its intent row (Outlook still to do) and its reservation event commit in one
transaction; the queue message and the event's delivery follow and are repeated by the
sweeper if a crash comes between.

A recurring request becomes a series (sync/store/series_repo.py) whose first occurrence is
booked and pushed at once; the rest are filled in the background (sync/series.py).
"""
from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping, Sequence

from sync.booking_model import (
    CANCELLED, CONFIRMED, FROM_PLATFORM, PENDING, Asset, Organizer, Reservation,
)
from sync.booking_queue import BookingChange, BookingQueue
from sync.booking_settings import BookingSettings
from sync.model import utc_now
from sync.recurrence import Recurrence, check_bounds, local_starts, parse_recurrence, to_utc, zone_named
from sync.reservation_events import ReservationEventOutbox, event_for
from sync.store.errors import ConflictError
from sync.store.reservations_repo import (
    ReservationsRepo, asset_of, intent_operation, is_reservation_id, new_reservation_id,
)
from sync.store.series_repo import OPEN, Series, SeriesRepo, new_series_id, occurrence_reservation_id
from sync.store.synclog_repo import LogEntry, SyncLog
from sync.validation import Problem, invalid, malformed, reject_unknown, require_string

log = logging.getLogger(__name__)

MAX_SUBJECT = 255
MAX_BODY = 32_000
PAST_GRACE = timedelta(minutes=5)
COMMIT_TRIES = 80
CREATE_FIELDS = frozenset({"asset_id", "integration_id", "booker", "start", "end", "time_zone", "subject", "body",
                           "private", "recurrence"})
PATCH_FIELDS = frozenset({"start", "end", "subject", "body", "private"})
SCOPES = ("occurrence", "series")
SERIES_CHUNK = 15  # occurrences per transaction: row, index rows, intent and event stay under 100 operations


def not_found() -> Problem:
    return Problem(404, "not_found", "no such reservation")


def overlap(other: Reservation) -> Problem:
    return Problem(409, "overlap", f"the asset is already booked from {other.start.isoformat()} to "
                   f"{other.end.isoformat()} by reservation {other.id}", field="start",
                   details={"reservation_id": other.id})


def parse_moment(data: Mapping[str, Any], name: str, zone) -> datetime:
    """ISO 8601 with an offset (or Z), or a local date-time read in `zone`."""
    value = require_string(data, name)
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise invalid(name, "must be an ISO 8601 date-time such as 2026-05-04T09:00:00+02:00") from None
    if moment.tzinfo is None:
        moment = to_utc(moment, zone)
    return moment.astimezone(timezone.utc)


def _text(data: Mapping[str, Any], name: str, limit: int, *, required: bool) -> str | None:
    if name not in data or data[name] is None:
        if required:
            raise Problem(400, "missing_field", f"{name}: required", field=name)
        return None
    value = data[name]
    if not isinstance(value, str):
        raise malformed(name, f"{name}: must be a string")
    if required and not value.strip():
        raise invalid(name, "must not be empty")
    if len(value) > limit:
        raise invalid(name, f"at most {limit} characters")
    return value.strip() if required else value


def _flag(data: Mapping[str, Any], name: str) -> bool | None:
    if name not in data or data[name] is None:
        return None
    if not isinstance(data[name], bool):
        raise malformed(name, f"{name}: must be true or false")
    return data[name]


def _route_id(reservation_id: str | None) -> str:
    if not is_reservation_id(reservation_id):
        raise not_found()
    return reservation_id


def _scope(raw: str | None) -> str:
    if raw is None or raw == "":
        return "occurrence"
    if raw not in SCOPES:
        raise malformed("scope", "scope: must be occurrence or series")
    return raw


@dataclass(frozen=True)
class Write:
    """One reservation to write under the lock, and whether Outlook must follow."""

    before: Reservation | None
    after: Reservation
    outlook: bool = True


class BookingService:
    def __init__(self, *, assets, users, reservations: ReservationsRepo, series: SeriesRepo,
                 queue: BookingQueue, events: ReservationEventOutbox, synclog: SyncLog, settings: BookingSettings,
                 clock: Callable[[], datetime] = utc_now, sleep: Callable[[float], None] = time.sleep) -> None:
        self.assets = assets
        self.users = users
        self.reservations = reservations
        self.series = series
        self.queue = queue
        self.events = events
        self.synclog = synclog
        self.settings = settings
        self.clock = clock
        self.sleep = sleep

    # ---- create ---------------------------------------------------------------------------

    def create(self, data: Mapping[str, Any]) -> dict[str, Any]:
        reject_unknown(data, CREATE_FIELDS)
        now = self.clock()
        asset = self._asset(data)
        zone_name = _text(data, "time_zone", 64, required=False) or asset.time_zone
        zone = zone_named(zone_name, "time_zone")
        start, end = parse_moment(data, "start", zone), parse_moment(data, "end", zone)
        self._check_times(asset, start, end, now)
        booker = self._booker(asset.integration_id, data)
        subject = _text(data, "subject", MAX_SUBJECT, required=True)
        body = _text(data, "body", MAX_BODY, required=False)
        private = bool(_flag(data, "private"))
        organizer = Organizer(email=booker.email, user_id=booker.id, name=booker.display_name)
        if data.get("recurrence") is not None:
            return self._create_series(asset, organizer, start, end, zone, subject, body, private, data["recurrence"],
                                       now)
        reservation = Reservation(
            id=new_reservation_id(asset.id), integration_id=asset.integration_id, asset_id=asset.id, start=start,
            end=end, time_zone=zone.key, subject=subject, organizer=organizer, origin=FROM_PLATFORM, status=CONFIRMED,
            sync_status=PENDING, sync_reason=None, series_id=None, occurrence_start=None, private=private,
            created_at=now, updated_at=now, body=body)
        self.write(asset.integration_id, asset.id, [Write(None, reservation)], now, decision="booked")
        return reservation.view()

    def _create_series(self, asset: Asset, organizer: Organizer, start: datetime, end: datetime, zone, subject: str,
                       body: str | None, private: bool, raw: Any, now: datetime) -> dict[str, Any]:
        local = start.astimezone(zone).replace(tzinfo=None)
        rec = parse_recurrence(raw, local.date())
        check_bounds(rec, local, self.settings.max_occurrences)
        first_local = next(iter(local_starts(rec, local)))
        duration = end - start
        first_start = to_utc(first_local, zone)
        self._check_times(asset, first_start, first_start + duration, now)
        series = Series(
            id=new_series_id(asset.id), integration_id=asset.integration_id, asset_id=asset.id,
            booker_user_id=organizer.user_id, booker_email=organizer.email or "", booker_name=organizer.name,
            subject=subject, body=body, private=private, time_zone=zone.key, first_local=first_local,
            duration_minutes=int(duration.total_seconds() // 60), recurrence=rec.as_graph(first_local.date()),
            status=OPEN, materialized_until=first_start - timedelta(seconds=1), created_at=now, updated_at=now)
        series = self.series.insert(series)
        first = occurrence_of(series, first_local, first_start, now)
        try:
            self.write(asset.integration_id, asset.id, [Write(None, first)], now, decision="series_booked")
        except Problem:
            self.series.delete(series.integration_id, series.id)
            raise
        self._advance(series, first_start)
        self.queue.send(BookingChange(asset.integration_id, series_id=series.id))
        return {**first.view(), "series": series_view(series, rec)}

    def _advance(self, series: Series, until: datetime) -> None:
        for _ in range(5):
            current = self.series.get(series.integration_id, series.id)
            if current is None or current.materialized_until >= until:
                return
            try:
                self.series.update(replace(current, materialized_until=until, updated_at=self.clock()))
                return
            except ConflictError:
                continue

    # ---- change and cancel ----------------------------------------------------------------

    def change(self, reservation_id: str | None, data: Mapping[str, Any], scope_raw: str | None) -> dict[str, Any]:
        reject_unknown(data, PATCH_FIELDS)
        if not data:
            raise malformed(None, f"nothing to change; send any of {', '.join(sorted(PATCH_FIELDS))}", "empty_patch")
        scope = _scope(scope_raw)
        reservation, asset = self._existing(reservation_id)
        if reservation.origin != FROM_PLATFORM:
            raise Problem(409, "not_platform_booking", "this reservation was made in Outlook; change it there",
                          field="id")
        if not reservation.is_confirmed:
            raise Problem(409, "not_confirmed", f"the reservation is {reservation.status}", field="id")
        now = self.clock()
        zone = zone_named(reservation.time_zone)
        start = parse_moment(data, "start", zone) if "start" in data else reservation.start
        end = parse_moment(data, "end", zone) if "end" in data else reservation.end
        if "start" in data and "end" not in data:
            end = start + (reservation.end - reservation.start)
        self._check_times(asset, start, end, now)
        changes: dict[str, Any] = {"start": start, "end": end, "sync_status": PENDING, "sync_reason": None}
        if "subject" in data:
            changes["subject"] = _text(data, "subject", MAX_SUBJECT, required=True)
        if "body" in data:
            changes["body"] = _text(data, "body", MAX_BODY, required=False)
        if "private" in data:
            changes["private"] = bool(_flag(data, "private"))
        if scope == "series" and reservation.series_id:
            return self._change_series(reservation, asset, changes, now)
        after = reservation.changed(now, **changes)
        self.write(reservation.integration_id, reservation.asset_id, [Write(reservation, after)], now,
                    decision="changed")
        return after.view()

    def _change_series(self, anchor: Reservation, asset: Asset, changes: dict[str, Any], now: datetime) -> dict:
        """Applies the anchor's change to every future confirmed occurrence: the same shift of
        local wall time and the same duration, the same subject, body and privacy.

        A refused change must change nothing: every overlap is checked before the first write,
        the occurrences are written chunk by chunk (a transaction holds at most 100 rows), a
        chunk refused after all (a booking raced in between) undoes the chunks before it, and
        the series row, which the nightly job extends from, moves only once all are in."""
        zone = zone_named(anchor.time_zone)
        shift = changes["start"].astimezone(zone).replace(tzinfo=None) - anchor.start.astimezone(zone).replace(tzinfo=None)
        duration = changes["end"] - changes["start"]
        future = sorted((r for r in self.reservations.of_series(anchor.integration_id, anchor.asset_id, anchor.series_id)
                         if r.is_confirmed and r.end > now), key=lambda r: r.start)
        extra = {k: v for k, v in changes.items() if k not in ("start", "end")}
        writes = []
        for occurrence in future:
            start = to_utc(occurrence.start.astimezone(zone).replace(tzinfo=None) + shift, zone)
            writes.append(Write(occurrence, occurrence.changed(now, start=start, end=start + duration, **extra)))
        moving = frozenset(w.after.id for w in writes)
        self._refuse_overlaps(anchor.integration_id, anchor.asset_id, writes, moving)
        done: list[Sequence[Write]] = []
        try:
            for first in range(0, len(writes), SERIES_CHUNK):
                chunk = writes[first:first + SERIES_CHUNK]
                self.write(anchor.integration_id, anchor.asset_id, chunk, now, decision="series_changed",
                           moving=moving)
                done.append(chunk)
        except Problem:
            self._undo(anchor.integration_id, anchor.asset_id, done, now, moving)
            raise
        self._move_series(anchor.integration_id, anchor.series_id, shift, duration, changes, now)
        changed = next((w.after for w in writes if w.after.id == anchor.id), anchor)
        return {**changed.view(), "occurrences_changed": len(writes)}

    def _undo(self, integration_id: str, asset_id: str, done: Sequence[Sequence[Write]], now: datetime,
              moving: frozenset[str]) -> None:
        """Puts occurrences already moved back where they were (Outlook follows again)."""
        for chunk in done:
            back = [Write(w.after, w.before.changed(now, sync_status=PENDING, sync_reason=None)) for w in chunk]
            try:
                self.write(integration_id, asset_id, back, now, decision="series_change_undone", moving=moving)
            except Problem:
                log.exception("a refused series change could not be undone on asset %s", asset_id)

    def _move_series(self, integration_id: str, series_id: str | None, shift: timedelta, duration: timedelta,
                     changes: Mapping[str, Any], now: datetime) -> None:
        """The template follows its occurrences; the watermark shifts with them, so the nightly
        job neither repeats a moved occurrence nor skips one (ETag-guarded, re-read on a race)."""
        for _ in range(5):
            series = self.series.get(integration_id, series_id) if series_id else None
            if series is None:
                return
            moved = replace(series, first_local=series.first_local + shift,
                            duration_minutes=int(duration.total_seconds() // 60),
                            subject=changes.get("subject", series.subject), body=changes.get("body", series.body),
                            private=changes.get("private", series.private),
                            materialized_until=series.materialized_until + shift,
                            next_start=series.next_start + shift if series.next_start else None, updated_at=now)
            try:
                self.series.update(moved)
                return
            except ConflictError:
                continue
        log.error("series %s: its occurrences moved but the series row stayed (written by others meanwhile)",
                  series_id)

    def cancel(self, reservation_id: str | None, scope_raw: str | None) -> dict[str, Any]:
        scope = _scope(scope_raw)
        reservation, _asset = self._existing(reservation_id)
        if reservation.origin != FROM_PLATFORM:
            raise Problem(409, "not_platform_booking", "this reservation was made in Outlook; cancel it there",
                          field="id")
        now = self.clock()
        if scope == "series" and reservation.series_id:
            cancelled = self.cancel_series(reservation.integration_id, reservation.series_id, now, reason="cancelled")
            return {**(self.reservations.get(reservation.integration_id, reservation.asset_id, reservation.id)
                       or reservation).view(), "occurrences_cancelled": cancelled}
        if reservation.status == CANCELLED:
            return reservation.view()
        after = reservation.changed(now, status=CANCELLED, sync_status=PENDING, sync_reason=None)
        self.write(reservation.integration_id, reservation.asset_id, [Write(reservation, after)], now,
                    decision="cancelled", check_overlap=False)
        return after.view()

    def cancel_series(self, integration_id: str, series_id: str, now: datetime, *, reason: str) -> int:
        """Closes the series (the nightly job stops) and cancels every occurrence not yet over."""
        for _ in range(5):
            series = self.series.get(integration_id, series_id)
            if series is None or series.status == CANCELLED:
                break
            try:
                self.series.update(replace(series, status=CANCELLED, updated_at=now))
                break
            except ConflictError:
                continue
        asset_id = asset_of(series_id)
        future = [r for r in self.reservations.of_series(integration_id, asset_id, series_id)
                  if r.is_confirmed and r.end > now]
        writes = [Write(r, r.changed(now, status=CANCELLED, sync_status=PENDING, sync_reason=None)) for r in future]
        for start in range(0, len(writes), 15):
            self.write(integration_id, asset_id, writes[start:start + 15], now, decision=f"series_{reason}",
                        check_overlap=False)
        return len(writes)

    # ---- the write under the lock ----------------------------------------------------------

    def write(self, integration_id: str, asset_id: str, writes: Sequence[Write], now: datetime, *, decision: str,
               check_overlap: bool = True, moving: frozenset[str] = frozenset()) -> None:
        """Commits the writes with their intents and events, If-Match on the asset's lock; an
        overlap with another confirmed reservation (seen under that same lock) is a 409.
        `moving`: ids rewritten by the same change in other chunks, never an overlap."""
        for attempt in range(COMMIT_TRIES):
            lock_etag, version = self.reservations.lock(integration_id, asset_id)
            if check_overlap:
                self._refuse_overlaps(integration_id, asset_id, writes, moving)
            seq = version + 1
            events = [e for e in (event_for(w.before, w.after, now) for w in writes) if e is not None]
            intents = [intent_operation(integration_id, asset_id, w.after.id, seq, now) for w in writes if w.outlook]
            try:
                self.reservations.commit(integration_id, asset_id, lock_etag, version, [w.after for w in writes],
                                         events, extra=intents)
                break
            except ConflictError:
                self.sleep(random.uniform(0, 0.005 * min(attempt + 1, 10)))
        else:
            raise Problem(503, "busy", "the asset is being booked by many requests at once; try again",
                          field="asset_id")
        self._after_commit(integration_id, asset_id, [w.after for w in writes if w.outlook])
        for write in writes:
            self.synclog.write(LogEntry(integration_id=integration_id, at=now, decision=f"platform:{decision}",
                                        outcome=write.after.status, asset_id=asset_id, reservation_id=write.after.id,
                                        input={"seq": seq}))

    def _refuse_overlaps(self, integration_id: str, asset_id: str, writes: Sequence[Write],
                         moving: frozenset[str] = frozenset()) -> None:
        """One read over the span of the writes; the earliest clash is named."""
        mine = moving | {w.after.id for w in writes}
        confirmed = [w.after for w in writes if w.after.is_confirmed]
        if not confirmed:
            return
        others = sorted((r for r in self.reservations.overlapping(integration_id, asset_id,
                                                                  min(r.start for r in confirmed),
                                                                  max(r.end for r in confirmed))
                         if r.id not in mine), key=lambda r: r.start)
        for mine_now in sorted(confirmed, key=lambda r: r.start):
            clash = next((other for other in others if other.overlaps(mine_now.start, mine_now.end)), None)
            if clash is not None:
                raise overlap(clash)

    def _after_commit(self, integration_id: str, asset_id: str, reservations: Sequence[Reservation]) -> None:
        """Queue and publish; a failure here is repaired by the sweeper, so the booking stands."""
        try:
            for reservation in reservations:
                self.queue.send(BookingChange(integration_id, reservation_id=reservation.id))
        except Exception:  # noqa: BLE001
            log.exception("booking-changes for asset %s not queued; the sweeper will", asset_id)
        try:
            self.events.flush(integration_id, asset_id)
        except Exception:  # noqa: BLE001
            log.exception("reservation events of asset %s stay in the outbox for the sweeper", asset_id)

    # ---- checks ---------------------------------------------------------------------------

    def _asset(self, data: Mapping[str, Any]) -> Asset:
        asset_id = require_string(data, "asset_id")
        asset = self.assets.get(asset_id) if len(asset_id) == 32 and asset_id.isalnum() else None
        if asset is None:
            raise invalid("asset_id", "no such asset")
        integration_id = data.get("integration_id")
        if integration_id is not None:
            if not isinstance(integration_id, str):
                raise malformed("integration_id", "integration_id: must be a string")
            if integration_id != asset.integration_id:
                raise invalid("asset_id", "belongs to another integration")
        return asset

    def _booker(self, integration_id: str, data: Mapping[str, Any]):
        booker = require_string(data, "booker").strip()
        person = (self.users.get_by_email(integration_id, booker.lower()) if "@" in booker
                  else self.users.get(integration_id, booker)) if booker else None
        if person is None:
            raise invalid("booker", "no person of this integration has this email or id")
        if not person.active:
            raise invalid("booker", "is not an active person (deactivated)")
        if not person.email:
            raise invalid("booker", "has no mailbox to hold the meeting")
        return person

    def _check_times(self, asset: Asset, start: datetime, end: datetime, now: datetime) -> None:
        if end <= start:
            raise invalid("end", "must be after start")
        if start < now - PAST_GRACE:
            raise invalid("start", "is in the past")
        if asset.max_duration_minutes and end - start > timedelta(minutes=asset.max_duration_minutes):
            raise invalid("end", f"longer than the {asset.max_duration_minutes} minutes this asset allows")
        if end - start > timedelta(days=1):
            raise invalid("end", "a reservation lasts at most 24 hours")

    def _existing(self, reservation_id: str | None) -> tuple[Reservation, Asset]:
        reservation_id = _route_id(reservation_id)
        asset = self.assets.get(asset_of(reservation_id))
        if asset is None:
            raise not_found()
        reservation = self.reservations.get(asset.integration_id, asset.id, reservation_id)
        if reservation is None:
            raise not_found()
        return reservation, asset


def occurrence_of(series: Series, local_start: datetime, start: datetime, now: datetime) -> Reservation:
    """The reservation of one occurrence (its id follows from the series and the local start)."""
    return Reservation(
        id=occurrence_reservation_id(series.id, local_start), integration_id=series.integration_id,
        asset_id=series.asset_id, start=start, end=start + timedelta(minutes=series.duration_minutes),
        time_zone=series.time_zone, subject=series.subject,
        organizer=Organizer(email=series.booker_email, user_id=series.booker_user_id, name=series.booker_name),
        origin=FROM_PLATFORM, status=CONFIRMED, sync_status=PENDING, sync_reason=None, series_id=series.id,
        occurrence_start=start, private=series.private, created_at=now, updated_at=now, body=series.body)


def series_view(series: Series, rec: Recurrence | None = None) -> dict[str, Any]:
    return {"id": series.id, "status": series.status, "time_zone": series.time_zone,
            "first_start_local": series.first_local.isoformat(), "duration_minutes": series.duration_minutes,
            "recurrence": series.recurrence,
            "materialized_until": series.materialized_until.isoformat().replace("+00:00", "Z")}
