"""The booking side wired as the app wires it, on Azurite and the Graph emulator, for one fresh
tenant: a connected integration whose people are synced, one asset per room mailbox, and
unique queues. `drain()` runs the booking-changes queue as the worker would, until every
intent of this integration is done."""
from __future__ import annotations

import base64
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from graph import GraphConfig
from sync.booking_model import Asset, Subscription
from sync.booking_queue import BookingChange, BookingQueue
from sync.booking_settings import BookingSettings
from sync.credentials import GraphAccess
from sync.events_out import QueuePublisher, UserEventPublisher
from sync.integrations import IntegrationService
from sync.purge import PurgeRequester
from sync.store.email_guard_repo import EmailGuard
from sync.leavers import LeaverReleaser
from sync.outbound import OutboundWorker
from sync.reservation_events import ReservationEventOutbox
from sync.reservations import BookingService
from sync.secret_box import SecretBox
from sync.series import SeriesFiller
from sync.store import Store, StorageLocation, queue_service, table_service
from sync.store.assets_repo import AssetsRepo, new_asset_id
from sync.store.integrations_repo import IntegrationsRepo
from sync.store.reservations_repo import ReservationsRepo
from sync.store.series_repo import SeriesRepo
from sync.store.synclog_repo import SyncLog
from sync.store.syncstate_repo import SyncStateRepo
from sync.store.users_repo import UsersRepo
from sync.users import SyncRequest, SyncRequester, UserSync
from tests.support.calendar_client import CalendarClient
from tests.support.emulator_fixture import EmulatorTenant, new_tenant

# The worker's looks at a room's answer: at once (drain() runs it) and once more, an hour
# later, which a test runs itself after moving the emulator's clock.
ANSWER_CHECKS = (0.0, 3600.0)


class Clock:
    """Our side's clock, movable (the emulator has its own)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def advance(self, **delta) -> None:
        self.offset += timedelta(**delta)


@dataclass
class BookingWorld:
    tenant: EmulatorTenant
    integration_id: str
    store: Store
    queues: Any
    booking_queue_name: str
    events_queue_name: str
    clock: Clock
    access: GraphAccess
    service: BookingService
    worker: OutboundWorker
    filler: SeriesFiller
    releaser: LeaverReleaser
    user_sync: UserSync
    reservations: ReservationsRepo
    series: SeriesRepo
    assets: list[Asset]
    cal: CalendarClient
    booking_queue: BookingQueue
    events: ReservationEventOutbox
    synclog: SyncLog
    handled: list = field(default_factory=list)

    @property
    def people(self):
        return self.tenant.users

    def body(self, asset: Asset | None = None, person: int = 0, start: datetime | None = None, minutes: int = 60,
             **extra) -> dict:
        start = start or (self.clock() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
        return {"asset_id": (asset or self.assets[0]).id, "booker": self.people[person].mail,
                "start": start.isoformat(), "end": (start + timedelta(minutes=minutes)).isoformat(),
                "subject": extra.pop("subject", "Planning"), **extra}

    def messages(self) -> list:
        client = self.queues.get_queue_client(self.booking_queue_name)
        try:
            return list(client.receive_messages(messages_per_page=32, visibility_timeout=30))
        except Exception as error:  # the queue appears with its first message
            if "QueueNotFound" in str(error):
                return []
            raise

    def run_queue_once(self, hold: Callable[[dict], bool] = lambda m: False) -> int:
        """Runs what is on the queue now; messages `hold` picks go back at once. The sweeper
        scans every integration in the shared tables, so other tests' messages are dropped."""
        client = self.queues.get_queue_client(self.booking_queue_name)
        ran = 0
        for message in self.messages():
            data = json.loads(base64.b64decode(message.content, validate=True))
            if data.get("integration_id") == self.integration_id and hold(data):
                client.update_message(message, visibility_timeout=0)
                continue
            client.delete_message(message)
            if data.get("integration_id") != self.integration_id:
                continue
            change = BookingChange.from_message(data)
            if change.series_id:
                self.handled.append(self.filler.fill_one(change.integration_id, change.series_id))
            else:
                self.handled.append(self.worker.handle(change))
            ran += 1
        return ran

    def open_intents(self) -> list:
        return [i for i in self.reservations.intents() if i.integration_id == self.integration_id]

    def drain(self, timeout: float = 60.0) -> None:
        """Runs the queue until this integration has no intent left (messages re-queued with a
        delay are waited for)."""
        deadline = time.monotonic() + timeout
        while True:
            ran = self.run_queue_once()
            if not ran and not self.open_intents():
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"intents left after {timeout} s: {self.open_intents()}")
            if not ran:
                time.sleep(0.2)

    def reservation(self, reservation_id: str):
        asset_id = reservation_id[:32]
        return self.reservations.get(self.integration_id, asset_id, reservation_id)

    def booker_events(self, person: int = 0) -> list[dict]:
        """The person's organised meetings as stored in the emulator (cancelled ones included)."""
        return [e for e in self.cal.raw_events(self.people[person].mail) if e.get("isOrganizer")]

    def room_events(self, asset: Asset | None = None) -> list[dict]:
        return self.cal.raw_events((asset or self.assets[0]).mailbox)

    def published(self) -> list[dict]:
        client = self.queues.get_queue_client(self.events_queue_name)
        found = []
        try:
            for message in client.receive_messages(messages_per_page=32, visibility_timeout=60):
                found.append(json.loads(base64.b64decode(message.content, validate=True)))
                client.delete_message(message)
        except Exception as error:
            if "QueueNotFound" not in str(error):
                raise
        return found


def make_booking_world(server, connection_string: str, unique_name, *, users: int = 3, rooms: int | list = 2,
                       settings: BookingSettings | None = None, max_retry_wait: float = 30.0) -> BookingWorld:
    tenant = new_tenant(server, users=users, rooms=rooms)
    location = StorageLocation(connection_string=connection_string)
    store = Store(table_service(location))
    queues = queue_service(location)
    clock = Clock()
    config = GraphConfig(authority_host=server.authority_host, api_base=server.api_base, ca_bundle=server.ca_path,
                         max_retry_wait=max_retry_wait)
    access = GraphAccess(config, SecretBox(os.urandom(32)))
    integrations, users_repo = IntegrationsRepo(store), UsersRepo(store)
    requester = SyncRequester(QueuePublisher(queues, unique_name("usersync")))
    integration = IntegrationService(integrations=integrations, syncstate=SyncStateRepo(store), users=users_repo,
                                     access=access, requester=requester, default_max_share=0.9,
                                     purges=PurgeRequester(QueuePublisher(queues, unique_name("purge"))),
                                     purge_steps=[]).create(
        {"domains": [tenant.domain], "tenant_id": tenant.tenant_id, "client_id": tenant.client_id,
         "client_secret": tenant.client_secret})
    booking_queue_name, events_queue_name = unique_name("booking"), unique_name("resevents")
    leavers_queue = unique_name("leavers")
    user_sync = UserSync(integrations=integrations, users=users_repo, syncstate=SyncStateRepo(store), access=access,
                         events=UserEventPublisher(QueuePublisher(queues, unique_name("userevents"))),
                         default_max_share=0.9, leavers=QueuePublisher(queues, leavers_queue),
                         email_guard=EmailGuard(store))
    user_sync.leavers_queue = leavers_queue
    user_sync.run(SyncRequest(integration["id"], str(uuid.uuid4()), "initial"))
    now = clock()
    assets_repo = AssetsRepo(store)
    assets = [assets_repo.insert(Asset(
        id=new_asset_id(), integration_id=integration["id"], name=room.display_name, category="room",
        mailbox=room.email.lower(), time_zone=room.time_zone, capacity=room.capacity, max_duration_minutes=240,
        subscription=Subscription(), created_at=now, updated_at=now)) for room in tenant.rooms]
    reservations, series, synclog = ReservationsRepo(store), SeriesRepo(store), SyncLog(store)
    booking_queue = BookingQueue(QueuePublisher(queues, booking_queue_name))
    events = ReservationEventOutbox(reservations, QueuePublisher(queues, events_queue_name))
    settings = settings or BookingSettings()
    service = BookingService(assets=assets_repo, users=users_repo, reservations=reservations, series=series,
                             queue=booking_queue, events=events, synclog=synclog, settings=settings, clock=clock)
    worker = OutboundWorker(reservations=reservations, assets=assets_repo, integrations=integrations, access=access,
                            queue=booking_queue, events=events, synclog=synclog, clock=clock,
                            answer_checks=ANSWER_CHECKS)
    filler = SeriesFiller(series=series, reservations=reservations, assets=assets_repo, integrations=integrations,
                          worker=worker, synclog=synclog, settings=settings, clock=clock)
    releaser = LeaverReleaser(users=users_repo, integrations=integrations, assets=assets_repo,
                              reservations=reservations, series=series, bookings=service, access=access,
                              synclog=synclog, clock=clock)
    return BookingWorld(tenant=tenant, integration_id=integration["id"], store=store, queues=queues,
                        booking_queue_name=booking_queue_name, events_queue_name=events_queue_name, clock=clock,
                        access=access, service=service, worker=worker, filler=filler, releaser=releaser,
                        user_sync=user_sync, reservations=reservations, series=series, assets=assets,
                        cal=CalendarClient(tenant), booking_queue=booking_queue, events=events, synclog=synclog)
