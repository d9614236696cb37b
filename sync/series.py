"""Filling recurring reservations: each occurrence is its own reservation and its own Outlook
meeting (so each can be accepted, declined or cancelled on its own, and Exchange judges each
against its booking window), materialised up to the horizon.

`fill(series, until)` is resumable and idempotent: occurrence ids follow from the series and
the occurrence's local start, occurrences that already exist (even cancelled or moved ones)
are left alone, and the watermark only moves forward once the rows are in. An occurrence that
collides with another confirmed reservation is recorded as `declined` with the reason; the
others are committed with their intents (leased to this run) and created in Outlook with
$batch. Anything the batch could not do stays as an intent for the sweeper.

The nightly job runs `fill` for every open series whose watermark is short of the horizon, so
a missed night is simply a longer stretch the next time.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Callable

from sync.booking_model import CONFIRMED, DECLINED, SYNCED
from sync.booking_settings import BookingSettings
from sync.model import utc_now
from sync.recurrence import occurrences, parse_recurrence, zone_named
from sync.reservation_events import event_for
from sync.reservations import occurrence_of
from sync.store.errors import ConflictError
from sync.store.reservations_repo import Intent, ReservationsRepo, intent_operation
from sync.store.series_repo import ENDED, Series, SeriesRepo
from sync.store.synclog_repo import LogEntry, SyncLog

log = logging.getLogger(__name__)

PUSH_AT = 2000  # occurrences gathered before they are sent (bounds memory on a big night)
CHUNK = 15  # occurrences per transaction: row + intent + event, under 100 operations with the lock
PUSH_LEASE = timedelta(minutes=5)


@dataclass
class FillReport:
    series: int = 0
    materialized: int = 0
    conflicts: int = 0
    created: int = 0
    declined: int = 0
    awaiting: int = 0  # created; the room's answer is read later by an answers message
    left_for_sweeper: int = 0
    batches: int = 0
    failed: list[str] = field(default_factory=list)


class SeriesFiller:
    def __init__(self, *, series: SeriesRepo, reservations: ReservationsRepo, assets, integrations, worker,
                 synclog: SyncLog, settings: BookingSettings, clock: Callable[[], datetime] = utc_now) -> None:
        self.series = series
        self.reservations = reservations
        self.assets = assets
        self.integrations = integrations
        self.worker = worker
        self.synclog = synclog
        self.settings = settings
        self.clock = clock

    def horizon(self, now: datetime) -> datetime:
        return now + timedelta(days=self.settings.horizon_days)

    def fill_one(self, integration_id: str, series_id: str) -> FillReport:
        report = FillReport()
        self._run_cache = {}
        series = self.series.get(integration_id, series_id)
        if series is not None and series.is_open:
            pushes = Pushes()
            self.fill(series, self.horizon(self.clock()), report, pushes)
            self._push(pushes, report)
        return report

    def nightly(self) -> FillReport:
        """Every open series with an occurrence due before the horizon, each on its own: one
        failure stops no other."""
        report = FillReport()
        self._run_cache = {}
        until = self.horizon(self.clock())
        pushes = Pushes()
        for series in list(self.series.open_series(due_before=until)):
            try:
                self.fill(series, until, report, pushes)
            except Exception as error:  # noqa: BLE001 -- logged; the next night resumes from the watermark
                log.exception("series %s not filled", series.id)
                report.failed.append(f"{series.id}: {type(error).__name__}")
            if pushes.size >= PUSH_AT:
                self._push(pushes, report)
        self._push(pushes, report)
        log.info("recurrence: %d series, %d occurrences materialised, %d created in Outlook (%d batches), "
                 "%d conflicts, %d declined, %d left for the sweeper, %d failed", report.series,
                 report.materialized, report.created, report.batches, report.conflicts, report.declined,
                 report.left_for_sweeper, len(report.failed))
        return report

    def _push(self, pushes: "Pushes", report: FillReport) -> None:
        """Sends what was materialised, integration by integration, in as few batches as fit."""
        for integration_id, work in list(pushes.by_integration.items()):
            try:
                batch = self.worker.push_new(work.integration, work.assets, work.reservations, work.intents)
            except Exception as error:  # noqa: BLE001 -- the intents stay; the sweeper re-queues them
                log.exception("occurrences of integration %s left for the sweeper", integration_id)
                report.left_for_sweeper += len(work.reservations)
                report.failed.append(f"push {integration_id}: {type(error).__name__}")
                continue
            report.created += batch.created
            report.declined += batch.declined
            report.awaiting += batch.awaiting
            report.left_for_sweeper += batch.left_for_sweeper
            report.batches += batch.batches
        pushes.by_integration.clear()
        pushes.size = 0

    def fill(self, series: Series, until: datetime, report: FillReport, pushes: "Pushes") -> None:
        now = self.clock()
        report.series += 1
        integration, asset = self._context(series)
        if integration is None or asset is None or not integration.is_active:
            return
        zone = zone_named(series.time_zone)
        rec = parse_recurrence(series.recurrence, series.first_local.date())
        wanted = occurrences(rec, series.first_local, timedelta(minutes=series.duration_minutes), zone,
                             after=series.materialized_until, until=until, limit=self.settings.max_occurrences)
        pushed, intents = [], {}
        for start in range(0, len(wanted), CHUNK):
            made, leased = self._commit_chunk(series, wanted[start:start + CHUNK], now, report)
            pushed.extend(made)
            intents.update(leased)
        truncated = len(wanted) >= self.settings.max_occurrences
        reached = wanted[-1].start if truncated else until
        following = _next_after(rec, series, zone, reached)
        self._advance(series, reached, following)
        if not wanted:
            return
        if pushed:
            work = pushes.by_integration.setdefault(integration.id, Work(integration))
            work.assets[asset.id] = asset
            work.reservations.extend(pushed)
            work.intents.update(intents)
            pushes.size += len(pushed)
        self.synclog.write(LogEntry(integration_id=series.integration_id, at=now, decision="series:filled",
                                    outcome="ended" if following is None else "open", asset_id=series.asset_id,
                                    input={"series_id": series.id, "until": until.isoformat(),
                                           "occurrences": len(pushed)}))

    def _commit_chunk(self, series: Series, chunk, now: datetime, report: FillReport):
        key = (series.integration_id, series.asset_id)
        span_start, span_end = chunk[0].start, chunk[-1].end
        for _ in range(40):
            lock_etag, version = self.reservations.lock(*key)
            existing = {r.id for r in self.reservations.of_series(*key, series.id)}
            busy = [r for r in self.reservations.overlapping(*key, span_start, span_end) if r.series_id != series.id]
            rows, events, extra, confirmed = [], [], [], []
            seq = version + 1
            for occurrence in chunk:
                reservation = occurrence_of(series, occurrence.local_start, occurrence.start, now)
                if reservation.id in existing:
                    continue
                clash = next((b for b in busy if b.overlaps(reservation.start, reservation.end)), None)
                if clash is not None:
                    reservation = reservation.changed(now, status=DECLINED, sync_status=SYNCED,
                                                      sync_reason=f"conflicts with reservation {clash.id}")
                else:
                    extra.append(intent_operation(*key, reservation.id, seq, now, lease_until=now + PUSH_LEASE,
                                                  attempted=seq))
                    confirmed.append(reservation)
                rows.append(reservation)
                published = event_for(None, reservation, now)
                if published:
                    events.append(published)
            if not rows:
                return [], {}
            try:
                self.reservations.commit(*key, lock_etag, version, rows, events, extra=extra)
            except ConflictError:
                continue
            report.materialized += len(rows)
            report.conflicts += len(rows) - len(confirmed)
            for row in rows:
                if row.status != CONFIRMED:
                    self.synclog.write(LogEntry(integration_id=series.integration_id, at=now,
                                                decision="series:occurrence_conflict", outcome=DECLINED,
                                                asset_id=series.asset_id, reservation_id=row.id,
                                                reason=row.sync_reason))
            intents = {r.id: Intent(series.integration_id, series.asset_id, r.id, seq, now,
                                    lease_until=now + PUSH_LEASE, attempted=seq) for r in confirmed}
            return confirmed, intents
        raise ConflictError(ConflictError.MODIFIED, table="reservations")

    def _advance(self, series: Series, reached: datetime, following: datetime | None) -> None:
        """Moves the watermark forward (never back) and notes the next occurrence, ETag-guarded;
        a bounded series with nothing after the watermark has ended."""
        current = series
        for _ in range(5):
            if current is None or not current.is_open:
                return
            ended = following is None
            moved = replace(current, materialized_until=max(reached, current.materialized_until),
                            next_start=following or reached, status=ENDED if ended else current.status,
                            updated_at=self.clock())
            if moved == current:
                return
            try:
                self.series.update(moved)
                return
            except ConflictError:
                current = self.series.get(series.integration_id, series.id)

    def _context(self, series: Series):
        key = (series.integration_id, series.asset_id)
        cache = getattr(self, "_run_cache", {})
        if key not in cache:
            if series.integration_id not in cache:
                cache[series.integration_id] = self.integrations.get(series.integration_id)
            cache[key] = self.assets.get_in(series.integration_id, series.asset_id)
        return cache[series.integration_id], cache[key]


@dataclass
class Work:
    integration: object
    assets: dict = field(default_factory=dict)
    reservations: list = field(default_factory=list)
    intents: dict = field(default_factory=dict)


@dataclass
class Pushes:
    by_integration: dict = field(default_factory=dict)
    size: int = 0


def _next_after(rec, series: Series, zone, moment: datetime) -> datetime | None:
    """The first occurrence starting after `moment`, or None when a bounded series has no more."""
    later = occurrences(rec, series.first_local, timedelta(minutes=series.duration_minutes), zone,
                        after=moment, until=moment + timedelta(days=3660 * 3), limit=1)
    return later[0].start if later else None
