"""The sweeper: repairs what a crash between a commit and the queue left behind.

Every intent row older than a few minutes with no live lease is put on `booking-changes`
again, and reservation events still in an outbox are sent. Both are safe to repeat: the
worker does what the intent says (or nothing), and events keep their event_id.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sync.booking_queue import BookingChange, BookingQueue
from sync.reservation_events import ReservationEventOutbox
from sync.store.reservations_repo import ReservationsRepo

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    requeued: int = 0
    leased: int = 0
    events_sent: int = 0


def sweep(reservations: ReservationsRepo, queue: BookingQueue, events: ReservationEventOutbox, *, now: datetime,
          older_than: timedelta) -> SweepReport:
    report = SweepReport()
    for intent in reservations.intents(changed_before=now - older_than):
        if intent.lease_until is not None and intent.lease_until > now:
            report.leased += 1
            continue
        queue.send(BookingChange(intent.integration_id, reservation_id=intent.reservation_id))
        report.requeued += 1
    report.events_sent = events.sweep()
    if report.requeued or report.events_sent:
        log.info("booking sweep: %d change(s) re-queued, %d event(s) sent, %d still leased", report.requeued,
                 report.events_sent, report.leased)
    return report
