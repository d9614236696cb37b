"""Reservation events for the booking platform (`reservation-events` queue), through an outbox.

A change of a reservation and the event announcing it commit in one transaction (an outbox row
in the reservation's partition); `flush` then sends what is pending and deletes those rows in
chunks. A crash between the two leaves the rows, and the next flush of that partition (or the
sweeper) sends them again with the same `event_id`: consumers drop repeats by that id.
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sync.booking_model import CANCELLED, Reservation
from sync.store.reservations_repo import PublishedEvent, ReservationsRepo

log = logging.getLogger(__name__)

RESERVATION_EVENTS_QUEUE = "reservation-events"
CREATED = "reservation.created"
UPDATED = "reservation.updated"
CANCELLED_EVENT = "reservation.cancelled"


def event_for(before: Reservation | None, after: Reservation, at: datetime) -> PublishedEvent | None:
    """The event announcing `before` -> `after`, or None when nothing the platform sees changed."""
    if before is not None and before.view() | {"updated_at": None} == after.view() | {"updated_at": None}:
        return None
    if before is None:
        kind = CREATED
    elif after.status == CANCELLED and before.status != CANCELLED:
        kind = CANCELLED_EVENT
    else:
        kind = UPDATED
    return PublishedEvent(event_id=uuid.uuid4().hex, type=kind, reservation=after.view(), at=at)


class ReservationEventOutbox:
    def __init__(self, repo: ReservationsRepo, publisher) -> None:
        self._repo = repo
        self._publisher = publisher

    def flush(self, integration_id: str, asset_id: str) -> int:
        """Sends every pending event of one asset's partition, oldest first; returns how many."""
        pending = sorted(self._repo.pending_events(integration_id, asset_id), key=lambda event: event.at)
        sent: list[str] = []
        try:
            for event in pending:
                self._publisher.send(event.message())
                sent.append(event.event_id)
                if len(sent) == 100:
                    self._repo.clear_events(integration_id, asset_id, sent)
                    sent = []
        finally:
            if sent:
                self._repo.clear_events(integration_id, asset_id, sent)
        return len(pending)

    def sweep(self) -> int:
        """Flushes every partition with events left behind (timer)."""
        total = 0
        for integration_id, asset_id in self._repo.partitions_with_outbox():
            total += self.flush(integration_id, asset_id)
        return total
