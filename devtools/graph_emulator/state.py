"""The fake tenants: app registrations, users, room mailboxes, and a change bus.

Each Graph area keeps its own data next to this model (events, subscriptions, delta logs) in
`Tenant.areas`, so areas stay independent; all mutation happens under `World.lock`.
"""
from __future__ import annotations

import base64
import itertools
import os
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, TypeVar

from devtools.graph_emulator.clock import Clock

T = TypeVar("T")


def new_guid() -> str:
    return str(uuid.uuid4())


def new_outlook_id(prefix: str = "AAMkAG") -> str:
    """Outlook-style opaque id: base64 text that may contain `/`, `+` and `=`, like real ids."""
    return prefix + base64.b64encode(os.urandom(33)).decode("ascii") + "="


@dataclass
class ClientSecret:
    value: str
    expires_at: datetime | None = None
    key_id: str = field(default_factory=new_guid)
    hint: str = ""


@dataclass
class AppRegistration:
    client_id: str
    display_name: str
    secrets: list[ClientSecret] = field(default_factory=list)
    # Granted (admin-consented) application permissions, e.g. {"User.Read.All", "Calendars.ReadWrite"}.
    roles: set[str] = field(default_factory=set)
    # PEM public certificates (certificate credentials), keyed by their SHA-1 thumbprint (hex).
    certificates: dict[str, bytes] = field(default_factory=dict)


@dataclass
class User:
    id: str
    user_principal_name: str
    display_name: str
    mail: str | None = None
    given_name: str | None = None
    surname: str | None = None
    job_title: str | None = None
    department: str | None = None
    office_location: str | None = None
    mobile_phone: str | None = None
    business_phones: list[str] = field(default_factory=list)
    preferred_language: str | None = None
    account_enabled: bool = True
    user_type: str = "Member"
    # IANA zone of the mailbox (rooms and people), used by calendar behaviour.
    time_zone: str = "UTC"
    is_room: bool = False
    # Soft-deleted users sit in "deleted items" (restorable); hard-deleted users are removed.
    deleted_at: datetime | None = None
    # Monotonic change sequence of the last directory change (users delta uses it).
    seq: int = 0

    @property
    def has_mailbox(self) -> bool:
        return self.mail is not None


@dataclass
class RoomSettings:
    """Exchange calendar processing (Set-CalendarProcessing) with Exchange Online defaults."""
    automate_processing: str = "AutoAccept"
    add_organizer_to_subject: bool = True
    delete_subject: bool = True
    delete_comments: bool = True
    remove_private_property: bool = True
    allow_conflicts: bool = False
    allow_recurring_meetings: bool = True
    booking_window_in_days: int = 180
    # Recurring requests running past the booking window are declined (Exchange default $true).
    enforce_scheduling_horizon: bool = True
    maximum_duration_in_minutes: int = 1440
    remove_canceled_meetings: bool = False
    # Not a Set-CalendarProcessing parameter: how long the Resource Booking Assistant takes to
    # answer. Exchange answers asynchronously (the organizer's create already returns "none");
    # 0 makes the answer visible to the very next read, which keeps most tests deterministic.
    answer_delay_seconds: float = 0.0


@dataclass
class Room:
    """A room mailbox (its directory object is a User with is_room=True and the same id)."""
    user_id: str
    email: str
    display_name: str
    capacity: int | None = None
    building: str | None = None
    floor_number: int | None = None
    time_zone: str = "UTC"
    # The place id is documented as mutable; placeId is the stable one.
    place_id: str = field(default_factory=new_guid)
    id: str = field(default_factory=new_guid)
    booking_type: str = "standard"
    hidden_from_gal: bool = False
    settings: RoomSettings = field(default_factory=RoomSettings)


@dataclass
class Tenant:
    id: str
    display_name: str
    domains: list[str]
    apps: dict[str, AppRegistration] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    rooms: dict[str, Room] = field(default_factory=dict)  # keyed by lowercase email
    # Per-area state (events, subscriptions, delta logs...), created on first use by each area.
    areas: dict[str, Any] = field(default_factory=dict)

    def area(self, name: str, factory: Callable[[], Any]) -> Any:
        if name not in self.areas:
            self.areas[name] = factory()
        return self.areas[name]

    def find_user(self, id_or_upn: str, include_deleted: bool = False) -> User | None:
        """Graph addresses a user by object id or userPrincipalName (case-insensitive), and
        mailboxes also by primary SMTP address."""
        user = self.users.get(id_or_upn)
        if user is None:
            wanted = id_or_upn.lower()
            for candidate in self.users.values():
                if candidate.user_principal_name.lower() == wanted or (
                    candidate.mail and candidate.mail.lower() == wanted
                ):
                    user = candidate
                    break
        if user is not None and user.deleted_at is not None and not include_deleted:
            return None
        return user

    def find_room(self, email: str) -> Room | None:
        return self.rooms.get(email.lower())


@dataclass(frozen=True)
class Change:
    """One change in a tenant, published for subscriptions/delivery.

    `resource` uses Graph's notification form, e.g. `Users/{user-id}/Events/{event-id}`.
    """
    tenant_id: str
    kind: str  # "events" or "users"
    change_type: str  # created | updated | deleted
    user_id: str | None
    item_id: str
    resource: str
    etag: str | None = None
    odata_type: str = "#Microsoft.Graph.Event"


class ChangeBus:
    """Synchronous fan-out of changes to listeners (delivery queues them; it must not block)."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[Change], None]] = []

    def subscribe(self, listener: Callable[[Change], None]) -> None:
        self._listeners.append(listener)

    def publish(self, change: Change) -> None:
        for listener in list(self._listeners):
            listener(change)


class World:
    """Everything the emulator knows. Handlers take `lock` while they read or change state."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.lock = threading.RLock()
        self.tenants: dict[str, Tenant] = {}
        self.bus = ChangeBus()
        self.request_counts: Counter[str] = Counter()
        self._seq = itertools.count(1)
        # Key that signs the emulator's access tokens (random per process).
        self.signing_key = os.urandom(32)
        # Base URL the emulator is reachable at, e.g. https://127.0.0.1:8443 (set by the server).
        self.base_url = "https://127.0.0.1"
        # Services that areas register for each other (e.g. "delivery", "faults").
        self.services: dict[str, Any] = {}

    def service(self, name: str, make: Callable[[], T]) -> T:
        """The service registered under `name`, made with `make()` (under the lock) on first use."""
        with self.lock:
            found = self.services.get(name)
            if found is None:
                found = self.services[name] = make()
            return found

    def next_seq(self) -> int:
        return next(self._seq)

    def add_tenant(self, tenant: Tenant) -> Tenant:
        with self.lock:
            self.tenants[tenant.id] = tenant
        return tenant

    def find_tenant(self, id_or_domain: str) -> Tenant | None:
        tenant = self.tenants.get(id_or_domain)
        if tenant is not None:
            return tenant
        wanted = id_or_domain.lower()
        for candidate in self.tenants.values():
            if candidate.id.lower() == wanted or wanted in (d.lower() for d in candidate.domains):
                return candidate
        return None
