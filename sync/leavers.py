"""Releasing a leaver's future bookings.

When the user sync deactivates a person it puts `{integration_id, user_id}` on the
`leaver-releases` queue; `release_leaver` then
- cancels their future platform reservations (and closes their open series), so the outbound
  worker deletes the Outlook meetings;
- declines, in the room's calendar and with a comment, the future Outlook meetings they
  organised on our rooms, and cancels those reservations; the integration's option
  `decline_leaver_meetings` (on by default) turns the declining off, read at each release so
  a change applies to the next leaver;
- keeps everything that has already started or ended;
- writes each release to `synclog`, and publishes it on `reservation-events` (the same
  transaction as the change, through the outbox).
Repeating a release does nothing more. A person reactivated before the message is handled is
left alone; one reactivated later keeps their bookings released (nothing restores them).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from graph.errors import GraphError, NotFound
from graph.events import decline_event
from sync.booking_model import CANCELLED, FROM_PLATFORM, SYNCED, Reservation
from sync.model import utc_now
from sync.reservations import BookingService, Write
from sync.store.series_repo import SeriesRepo
from sync.store.synclog_repo import LogEntry, SyncLog

log = logging.getLogger(__name__)

DECLINE_COMMENT = "This booking was released because its organizer has left the organisation."


@dataclass
class ReleaseReport:
    outcome: str = "released"
    platform_cancelled: int = 0
    outlook_declined: int = 0
    series_closed: int = 0
    kept_past: int = 0


class LeaverReleaser:
    def __init__(self, *, users, integrations, assets, reservations, series: SeriesRepo, bookings: BookingService,
                 access, synclog: SyncLog, clock: Callable[[], datetime] = utc_now) -> None:
        self.users = users
        self.integrations = integrations
        self.assets = assets
        self.reservations = reservations
        self.series = series
        self.bookings = bookings
        self.access = access
        self.synclog = synclog
        self.clock = clock

    def release_leaver(self, integration_id: str, user_id: str) -> ReleaseReport:
        report = ReleaseReport()
        user = self.users.get(integration_id, user_id)
        if user is None or user.active:
            report.outcome = "unknown_person" if user is None else "active_again"
            return report
        integration = self.integrations.get(integration_id)
        decline = integration is not None and integration.options.decline_leaver_meetings
        now = self.clock()
        for series in self.series.of_booker(integration_id, user_id):
            self.bookings.cancel_series(integration_id, series.id, now, reason="released_leaver")
            report.series_closed += 1
        client = None
        try:
            for reservation in self._theirs(integration_id, user_id, user.email):
                if reservation.status != "confirmed":
                    continue
                if reservation.start <= now:
                    report.kept_past += 1
                    continue
                if reservation.origin == FROM_PLATFORM:
                    self._cancel(reservation, now, outlook=True)
                    report.platform_cancelled += 1
                    continue
                if decline and reservation.room_event_id:
                    if client is None:
                        client = self.access.client_for(integration)
                    self._decline_room_copy(client, reservation)
                    report.outlook_declined += 1
                self._cancel(reservation, now, outlook=False)
        finally:
            if client is not None:
                client.close()
        log.info("leaver %s of integration %s: %d platform bookings cancelled, %d Outlook meetings declined, "
                 "%d series closed, %d past kept", user_id, integration_id, report.platform_cancelled,
                 report.outlook_declined, report.series_closed, report.kept_past)
        return report

    def _theirs(self, integration_id: str, user_id: str, email: str | None) -> list[Reservation]:
        found: dict[str, Reservation] = {}
        for key in ({"user_id": user_id}, {"email": email} if email else None):
            if key is None:
                continue
            continuation = None
            while True:
                page, continuation = self.reservations.by_organizer(integration_id, continuation=continuation, **key)
                found.update((r.id, r) for r in page)
                if continuation is None:
                    break
        return sorted(found.values(), key=lambda r: r.start)

    def _cancel(self, reservation: Reservation, now: datetime, *, outlook: bool) -> None:
        current = self.reservations.get(reservation.integration_id, reservation.asset_id, reservation.id)
        if current is None or current.status != "confirmed":
            return
        after = current.changed(now, status=CANCELLED, sync_status="pending" if outlook else SYNCED,
                                sync_reason="released: the organizer left")
        self.bookings.write(reservation.integration_id, reservation.asset_id, [Write(current, after, outlook=outlook)],
                            now, decision="released_leaver", check_overlap=False)

    def _decline_room_copy(self, client, reservation: Reservation) -> None:
        asset = self.assets.get_in(reservation.integration_id, reservation.asset_id)
        if asset is None:
            return
        try:
            decline_event(client, asset.mailbox, reservation.room_event_id, comment=DECLINE_COMMENT)
        except NotFound:
            pass
        except GraphError as error:
            self.synclog.write(LogEntry(integration_id=reservation.integration_id, at=self.clock(),
                                        decision="leaver:decline_room_copy", outcome="failed",
                                        asset_id=reservation.asset_id, reservation_id=reservation.id,
                                        reason=str(error), graph_calls=1))
