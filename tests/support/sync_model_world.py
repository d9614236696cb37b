"""Both directions of the room sync wired in process for one fresh tenant, for the sync state
machine (tests/integration/test_sync_state_machine.py).

The booking side is `make_booking_world`; this adds the inbound side as functions/room_context.py
composes it (InboundSync, CalendarResync, SubscriptionService, the webhook checks), with the
assets subscribed at the emulator and Graph's POSTs landing on a test receiver. Accepted
notification items are not queued but kept in `pending`, so the machine can deliver, repeat,
drop or reorder them; the workers are called directly with the ids an item carries.
"""
from __future__ import annotations

import base64
import json
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import requests

from devtools.graph_emulator.delivery import delivery_service
from graph import GraphError, Throttled
from sync.booking_model import Reservation
from sync.booking_sweeper import sweep
from sync.inbound import Deferred, InboundSync
from sync.resync import CalendarResync, CalendarStateRepo
from sync.store.assets_repo import AssetsRepo, SubscriptionsRepo
from sync.store.integrations_repo import IntegrationsRepo
from sync.store.users_repo import UsersRepo
from sync.subscriptions import LIFECYCLE_PATH, NOTIFICATION_PATH, SubscriptionService
from sync.users import SyncRequest
from sync.webhook import SubscriptionCache, check_changes, check_lifecycle, parse_post
from tests.support.booking_world import BookingWorld, make_booking_world
from tests.support.emulator_fixture import CaSession
from tests.support.receiver import NotificationReceiver

LEASE_LAPSE = timedelta(seconds=61)  # longer than the outbound worker's lease


def _name(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:16]}"


@dataclass
class SyncWorld:
    booking: BookingWorld
    receiver: NotificationReceiver
    inbound: InboundSync
    resync: CalendarResync
    subscriptions: SubscriptionService
    subscription_links: SubscriptionsRepo
    assets_repo: AssetsRepo
    integrations: IntegrationsRepo
    cache: SubscriptionCache
    seen_requests: int
    pending: list[dict] = field(default_factory=list)  # accepted change items not yet handled
    resyncs: list[tuple[str, str, str]] = field(default_factory=list)  # requested, not yet run
    published: dict[str, dict] = field(default_factory=dict)  # reservation events by event_id
    rejected: int = 0
    http: CaSession = None  # one kept-alive session for the control API

    # ---- short names ---------------------------------------------------------------------------
    @property
    def iid(self) -> str:
        return self.booking.integration_id

    @property
    def tenant(self):
        return self.booking.tenant

    @property
    def server(self):
        return self.booking.tenant.server

    def control(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.http.request(method, f"{self.server.base_url}/_control/{path}", **kwargs)

    def advance(self, delta: timedelta = LEASE_LAPSE) -> None:
        """Time passes on both sides alike (our clock and Exchange's)."""
        self.booking.clock.advance(seconds=delta.total_seconds())
        self.server.world.clock.advance(delta.total_seconds())

    # ---- Graph's notifications -----------------------------------------------------------------
    def collect(self) -> int:
        """Waits until the emulator has posted what is due, then checks every new POST as the
        webhook does: change items go to `pending`, lifecycle items are answered at once."""
        delivery_service(self.server.world).wait_idle(self.tenant.tenant_id, timeout=10)
        received = self.receiver.requests()
        fresh, self.seen_requests = received[self.seen_requests:], len(received)
        added = 0
        for request in fresh:
            if request.is_validation or request.method != "POST":
                continue
            items = parse_post(request.body)
            if request.path == NOTIFICATION_PATH:
                checked = check_changes(items, self.cache.get)
                for item in checked.accepted:
                    # One pending re-read per item, however Graph's pairs were split over POSTs
                    # (that depends on timing; repeats are the machine's own choice).
                    if item["integration_id"] == self.iid and not any(
                            p["asset_id"] == item["asset_id"] and p["event_id"] == item["event_id"]
                            for p in self.pending):
                        self.pending.append(item)
                        added += 1
            elif request.path == LIFECYCLE_PATH:
                checked = check_lifecycle(items, self.cache.get)
                for item in checked.accepted:
                    if item["integration_id"] == self.iid:
                        self.subscriptions.on_lifecycle(item["integration_id"], item["subscription_id"],
                                                    item["lifecycle_event"])
            self.rejected += sum(checked.rejected.values())
        return added

    def handle(self, item: dict) -> bool:
        """One item through the inbound worker; False when it must be tried again later
        (throttled, deferred or failed: the queue would retry it)."""
        try:
            self.inbound.handle_change(item["integration_id"], item["asset_id"], item["event_id"])
        except (Throttled, Deferred, GraphError):
            return False
        return True

    # ---- queues and timers ---------------------------------------------------------------------
    def run_booking_queue(self) -> int:
        try:
            return self.booking.run_queue_once()
        except GraphError:
            return 0  # the message is lost with the failed run; the sweeper brings the intent back

    def sweep(self) -> None:
        sweep(self.booking.reservations, self.booking.booking_queue, self.booking.events, now=self.booking.clock(),
              older_than=timedelta(0))

    def run_resyncs(self) -> int:
        done, left = 0, []
        for request in self.resyncs:
            try:
                self.resync.run(*request)
                done += 1
            except (Throttled, Deferred, GraphError):
                left.append(request)
        self.resyncs = left
        return done

    def links(self):
        return [link for link in self.subscription_links.all() if link.integration_id == self.iid]

    def renew_all(self) -> None:
        for link in self.links():
            self.subscriptions.renew(link)

    def user_sync(self) -> None:
        self.booking.user_sync.run(SyncRequest(self.iid, str(uuid.uuid4()), "api"))

    def run_leaver_releases(self) -> int:
        client = self.booking.queues.get_queue_client(self.booking.user_sync.leavers_queue)
        handled = 0
        for message in _receive(client):
            data = json.loads(base64.b64decode(message.content, validate=True))
            try:
                self.booking.releaser.release_leaver(data["integration_id"], data["user_id"])
            except GraphError:
                continue  # left on the queue: visible again later
            client.delete_message(message)
            handled += 1
        return handled

    def read_events(self) -> dict[str, dict]:
        """Drains `reservation-events` into `published` (a repeat of an event_id is one event)."""
        client = self.booking.queues.get_queue_client(self.booking.events_queue_name)
        while True:
            batch = _receive(client)
            if not batch:
                return self.published
            for message in batch:
                event = json.loads(base64.b64decode(message.content, validate=True))
                self.published.setdefault(event["event_id"], event)
                client.delete_message(message)

    # ---- what is stored ------------------------------------------------------------------------
    def reservations(self) -> list[Reservation]:
        found = []
        for asset in self.booking.assets:
            continuation = None
            while True:
                page, continuation = self.booking.reservations.in_range(self.iid, asset.id, None, None,
                                                                        continuation=continuation)
                found.extend(page)
                if continuation is None:
                    break
        return found

    def outbox_empty(self, asset_id: str) -> bool:
        return not self.booking.reservations.pending_events(self.iid, asset_id)

    def flush_outboxes(self) -> None:
        for asset in self.booking.assets:
            self.booking.events.flush(self.iid, asset.id)

    def room_view(self, mailbox: str) -> list[dict]:
        """The room's calendar as Graph shows it (occurrences expanded) over the sync window."""
        now = self.booking.cal.now
        return self.booking.cal.view(mailbox, now - timedelta(days=1), now + timedelta(days=self.inbound.horizon.days))

    def raw(self, mailbox: str) -> list[dict]:
        """Every stored item of a mailbox, cancelled ones included (the emulator's own view)."""
        answer = self.http.get(self.booking.cal.mailbox_control(mailbox, "events"))
        assert answer.status_code == 200, answer.text
        return answer.json()["value"]

    def meeting_call(self, method: str, mailbox: str, *parts: str, body: dict | None = None) -> requests.Response:
        """Acts as an Outlook user through the emulator's meetings control API."""
        return self.http.request(method, self.booking.cal.mailbox_control(mailbox, "meetings", *parts), json=body)

    def close(self) -> None:
        self.booking.worker.close()
        self.http.close()


def _receive(client) -> list:
    try:
        return list(client.receive_messages(messages_per_page=32, max_messages=32, visibility_timeout=30))
    except Exception as error:  # the queue appears with its first message
        if "QueueNotFound" in str(error):
            return []
        raise


def make_sync_world(server, connection_string: str, receiver: NotificationReceiver, *, users: int = 3,
                    rooms: int = 2, max_retry_wait: float = 0.3) -> SyncWorld:
    booking = make_booking_world(server, connection_string, _name, users=users, rooms=rooms,
                                 max_retry_wait=max_retry_wait)
    store = booking.store
    integrations, assets_repo, links = IntegrationsRepo(store), AssetsRepo(store), SubscriptionsRepo(store)
    cache = SubscriptionCache(links.get)
    inbound = InboundSync(integrations=integrations, assets=assets_repo, reservations=booking.reservations,
                          users=UsersRepo(store), access=booking.access, outbox=booking.events,
                          synclog=booking.synclog, clock=booking.clock)
    resync = CalendarResync(inbound=inbound, state=CalendarStateRepo(store), clock=booking.clock)
    world = SyncWorld(booking=booking, receiver=receiver, inbound=inbound, resync=resync, subscriptions=None,
                      subscription_links=links, assets_repo=assets_repo, integrations=integrations, cache=cache,
                      seen_requests=len(receiver.requests()), http=CaSession(server.ca_path))
    world.subscriptions = SubscriptionService(
        assets=assets_repo, subscriptions=links, integrations=integrations, access=booking.access,
        public_base_url=receiver.base_url, request_resync=lambda i, a, why: world.resyncs.append((i, a, why)),
        forget=cache.forget, clock=booking.clock)
    integration = integrations.get(booking.integration_id)
    for asset in booking.assets:
        world.subscriptions.subscribe(integration, assets_repo.get_in(booking.integration_id, asset.id))
    world.run_resyncs()
    return world


def instant(value: dict) -> datetime:
    """A Graph dateTimeTimeZone written in UTC, as an aware instant."""
    assert value.get("timeZone", "UTC") in ("UTC", "Etc/UTC"), value
    return datetime.fromisoformat(value["dateTime"][:19]).replace(tzinfo=timezone.utc)


@contextmanager
def sync_world(server, connection_string: str, **sizes):
    """A world with a notification receiver of its own: Graph's notifications reach the workers
    only when the test collects and handles them (or never, when it runs a resync or a lifecycle
    event itself instead)."""
    with NotificationReceiver() as receiver:
        made = make_sync_world(server, connection_string, receiver, **sizes)
        try:
            yield made
        finally:
            made.close()
