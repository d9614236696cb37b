"""The booking side's records: an asset linked to a room mailbox, its Graph subscription, and
reservations of it. Plain dataclasses; sync/store/ turns them into rows, the API into JSON.

Times are aware datetimes in UTC. A reservation remembers which Outlook items it mirrors (the
room's copy, the organizer's event, the iCalUId they share) and the version of the Outlook item
it was last brought in line with, so an older read can never overwrite a newer one.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sync.model import iso_utc

# Subscription states an asset shows.
UNSUBSCRIBED = "unsubscribed"
SUBSCRIBED = "subscribed"
SUBSCRIPTION_ERROR = "error"
EXPIRED = "expired"

# Reservation.origin
FROM_OUTLOOK = "outlook"
FROM_PLATFORM = "platform"

# Reservation.status
CONFIRMED = "confirmed"
CANCELLED = "cancelled"
DECLINED = "declined"

# Reservation.sync_status
SYNCED = "synced"
PENDING = "pending"
FAILED = "failed"

PRIVATE_SUBJECT = "Private"


@dataclass(frozen=True)
class Subscription:
    """The asset's Graph subscription, as far as we know it."""

    state: str = UNSUBSCRIBED
    id: str | None = None
    expires_at: datetime | None = None
    subscribed_at: datetime | None = None
    client_state_hash: str | None = field(default=None, repr=False)
    last_notification_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None

    def view(self, now: datetime) -> dict[str, Any]:
        state = self.state
        if state == SUBSCRIBED and self.expires_at is not None and self.expires_at <= now:
            state = EXPIRED
        return {"state": state, "id": self.id, "expires_at": iso_utc(self.expires_at),
                "subscribed_at": iso_utc(self.subscribed_at),
                "last_notification_at": iso_utc(self.last_notification_at),
                "last_error": self.last_error, "last_error_at": iso_utc(self.last_error_at)}


@dataclass(frozen=True)
class Asset:
    """A bookable room (or desk) of one integration, linked to one room mailbox."""

    id: str
    integration_id: str
    name: str
    category: str
    mailbox: str  # lowercase SMTP address of the room mailbox
    time_zone: str  # IANA name
    capacity: int | None
    max_duration_minutes: int | None
    subscription: Subscription
    created_at: datetime
    updated_at: datetime
    etag: str | None = field(default=None, compare=False)

    def view(self, now: datetime) -> dict[str, Any]:
        return {"id": self.id, "integration_id": self.integration_id, "name": self.name,
                "category": self.category, "mailbox": self.mailbox, "time_zone": self.time_zone,
                "capacity": self.capacity, "max_duration_minutes": self.max_duration_minutes,
                "subscription": self.subscription.view(now),
                "created_at": iso_utc(self.created_at), "updated_at": iso_utc(self.updated_at)}


@dataclass(frozen=True)
class Organizer:
    email: str | None
    user_id: str | None
    name: str | None


@dataclass(frozen=True)
class Reservation:
    id: str
    integration_id: str
    asset_id: str
    start: datetime
    end: datetime
    time_zone: str
    subject: str
    organizer: Organizer
    origin: str
    status: str
    sync_status: str
    sync_reason: str | None
    series_id: str | None
    occurrence_start: datetime | None
    private: bool
    created_at: datetime
    updated_at: datetime
    # The Outlook items this reservation mirrors, and the version last applied.
    ical_uid: str | None = None
    room_event_id: str | None = None
    organizer_event_id: str | None = None
    source_change_key: str | None = None
    source_modified_at: datetime | None = None
    body: str | None = field(default=None, repr=False)
    etag: str | None = field(default=None, compare=False)

    @property
    def is_confirmed(self) -> bool:
        return self.status == CONFIRMED

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end

    def changed(self, at: datetime, **changes: Any) -> "Reservation":
        return replace(self, updated_at=at, **changes)

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "integration_id": self.integration_id, "asset_id": self.asset_id,
                "start": iso_utc(self.start), "end": iso_utc(self.end), "time_zone": self.time_zone,
                "subject": self.subject,
                "organizer": {"email": self.organizer.email, "user_id": self.organizer.user_id,
                              "name": self.organizer.name},
                "origin": self.origin, "status": self.status, "sync_status": self.sync_status,
                "sync_reason": self.sync_reason, "series_id": self.series_id,
                "occurrence_start": iso_utc(self.occurrence_start), "private": self.private,
                "created_at": iso_utc(self.created_at), "updated_at": iso_utc(self.updated_at)}
