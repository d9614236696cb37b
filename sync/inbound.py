"""Outlook -> platform: one changed item of a room's calendar becomes, changes or cancels a
reservation of the linked asset.

The notification only says *which* item changed; the item is re-read from the room mailbox
(404 = deleted), so duplicates, reordering and forged payloads can only cause a re-read. The
planner (sync/planner.py) decides; this module reads what it needs, carries the decision out
under the asset's lock (ETag on the lock row, re-planned on a conflict), publishes the change
through the outbox and writes one synclog row per item.

Graph calls per change: 1 read of the item, +1 when the organizer's copy is read (to recover
the subject, or to find a platform booking not linked yet: one read serves both), +1 to
decline, +1 page of instances for a series (counted per run).
Table work per change: the lock row, the index look-ups, one overlap query, one transaction,
and one transaction clearing the outbox.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Callable

from graph import Forbidden, GraphClient, NotFound
from graph.events import decline_event, find_by_ical_uid, get_event, instances
from sync.booking_model import CONFIRMED, Asset, Organizer
from sync.model import Integration, utc_now
from sync.outbound import RESERVATION_TAG, platform_reservation_id
from sync.planner import CANCEL, CREATE, DECLINE, DEFER, UPDATE, Context, Decision, Policy, plan
from sync.reservation_events import ReservationEventOutbox, event_for
from sync.room_events import RoomEvent, UnreadableEvent, read_event
from sync.store.errors import ConflictError
from sync.store.reservations_repo import ReservationsRepo, asset_of
from sync.store.synclog_repo import LogEntry, SyncLog

log = logging.getLogger(__name__)

MAX_PLAN_ROUNDS = 12
DEFAULT_HORIZON_DAYS = 90


class Deferred(Exception):
    """The item cannot be decided yet (the platform's own meeting may not be linked); try later."""

    def __init__(self, reason: str, delay_seconds: int = 10) -> None:
        super().__init__(reason)
        self.delay_seconds = delay_seconds


class CallCounter:
    """Counts HTTP responses a Graph client received (a requests response hook)."""

    def __init__(self, client: GraphClient) -> None:
        self.count = 0
        hooks = client.session.hooks.setdefault("response", [])
        hooks.append(self._seen)

    def _seen(self, response, *args, **kwargs):
        self.count += 1
        return response


@dataclass
class ItemReport:
    event_id: str
    decisions: list[Decision] = field(default_factory=list)
    graph_calls: int = 0


class InboundSync:
    def __init__(self, *, integrations, assets, reservations: ReservationsRepo, users, access,
                 outbox: ReservationEventOutbox, synclog: SyncLog, horizon_days: int = DEFAULT_HORIZON_DAYS,
                 clock: Callable[[], datetime] = utc_now, pause: Callable[[float], None] = time.sleep) -> None:
        self.integrations = integrations
        self.pause = pause  # jittered back-off between lost races on the asset's lock
        # Workers of one process take turns per asset, so they queue instead of racing for the
        # lock row; the row's ETag still settles races between processes.
        self._turns: dict[str, threading.Lock] = {}
        self._turns_guard = threading.Lock()
        self.assets = assets
        self.reservations = reservations
        self.users = users
        self.access = access
        self.outbox = outbox
        self.synclog = synclog
        self.horizon = timedelta(days=horizon_days)
        self.clock = clock

    # entry points -------------------------------------------------------------------------------
    def handle_change(self, integration_id: str, asset_id: str, event_id: str, *, trigger: str = "notification",
                      importing: bool = False, as_read: dict | None = None) -> ItemReport | None:
        """Brings the reservation of one room item in line with Outlook. None when the
        integration or asset is gone or not active (nothing to do)."""
        target = self._target(integration_id, asset_id)
        if target is None:
            return None
        integration, asset = target
        client = self.access.client_for(integration)
        try:
            return self.apply_item(client, integration, asset, event_id, trigger=trigger, importing=importing,
                                   as_read=as_read)
        finally:
            client.close()

    def apply_item(self, client: GraphClient, integration: Integration, asset: Asset, event_id: str, *,
                   trigger: str, importing: bool = False, as_read: dict | None = None) -> ItemReport:
        counter = CallCounter(client)
        report = ItemReport(event_id)
        try:
            raw = as_read if as_read is not None else self._read(client, asset, event_id)
            if raw is None:
                self._apply(client, integration, asset, event_id, None, report, importing=importing)
                for reservation in self._future_of_series(asset, event_id):
                    self._apply(client, integration, asset, reservation.room_event_id, None, report)
            else:
                try:
                    event = read_event(raw, asset.mailbox)
                except UnreadableEvent as problem:
                    report.decisions.append(Decision("ignore", f"unreadable event: {problem}"))
                else:
                    if event.is_series_master or event.series_id:
                        self._apply_series(client, integration, asset, event, report, importing=importing)
                    else:
                        self._apply(client, integration, asset, event.id, event, report, importing=importing)
        finally:
            report.graph_calls = counter.count
            self.outbox.flush(asset.integration_id, asset.id)
            self._log(asset, event_id, trigger, report)
        return report

    # reading ------------------------------------------------------------------------------------
    def _target(self, integration_id: str, asset_id: str) -> tuple[Integration, Asset] | None:
        integration = self.integrations.get(integration_id)
        if integration is None or not integration.is_active:
            log.info("change for integration %s skipped: %s", integration_id,
                     "unknown" if integration is None else integration.status)
            return None
        asset = self.assets.get_in(integration_id, asset_id)
        if asset is None:
            log.info("change for unknown asset %s of integration %s skipped", asset_id, integration_id)
            return None
        return integration, asset

    def _read(self, client: GraphClient, asset: Asset, event_id: str) -> dict | None:
        try:
            return get_event(client, asset.mailbox, event_id)
        except NotFound:
            return None

    def _future_of_series(self, asset: Asset, master_id: str) -> list:
        now = self.clock()
        return [r for r in self.reservations.of_series(asset.integration_id, asset.id, master_id)
                if r.status == CONFIRMED and r.end > now and r.room_event_id]

    def _apply_series(self, client: GraphClient, integration: Integration, asset: Asset, event: RoomEvent,
                      report: ItemReport, *, importing: bool) -> None:
        """A series becomes its occurrences within the horizon; occurrences no longer listed
        (cancelled, or the series shortened) are cancelled."""
        master_id = event.id if event.is_series_master else event.series_master_id
        now = self.clock()
        seen: set[str] = set()
        try:
            items = list(instances(client, asset.mailbox, master_id, now - timedelta(days=1), now + self.horizon))
        except NotFound:
            items = []
        for raw in items:
            try:
                occurrence = read_event(raw, asset.mailbox)
            except UnreadableEvent as problem:
                report.decisions.append(Decision("ignore", f"unreadable occurrence: {problem}"))
                continue
            if occurrence.series_master_id is None:
                occurrence = _with_master(occurrence, master_id)
            seen.add(occurrence.id)
            self._apply(client, integration, asset, occurrence.id, occurrence, report, importing=importing)
        for reservation in self._future_of_series(asset, master_id):
            if reservation.room_event_id not in seen and reservation.start >= now - timedelta(days=1):
                self._apply(client, integration, asset, reservation.room_event_id, None, report)

    # deciding and writing -----------------------------------------------------------------------
    def _turn(self, asset: Asset) -> threading.Lock:
        with self._turns_guard:
            return self._turns.setdefault(asset.id, threading.Lock())

    def _apply(self, client: GraphClient, integration: Integration, asset: Asset, event_id: str,
               event: RoomEvent | None, report: ItemReport, *, importing: bool = False,
               may_decline: bool = True) -> Decision:
        with self._turn(asset):
            return self._apply_in_turn(client, integration, asset, event_id, event, report, importing=importing,
                                       may_decline=may_decline)

    def _apply_in_turn(self, client: GraphClient, integration: Integration, asset: Asset, event_id: str,
                       event: RoomEvent | None, report: ItemReport, *, importing: bool,
                       may_decline: bool) -> Decision:
        organizer, active = self._organizer(integration, event)
        subject = None
        policy = policy_of(integration)
        copies: dict[tuple[str, str], list[dict]] = {}  # the organizer's copy, read at most once per change
        for attempt in range(MAX_PLAN_ROUNDS):
            lock_etag, version = self.reservations.lock(asset.integration_id, asset.id)
            linked = self.reservations.find(asset.integration_id, asset.id, room_event_id=event_id,
                                            ical_uid=event.ical_uid if event else None)
            overlapping = (self.reservations.overlapping(asset.integration_id, asset.id, event.start, event.end)
                           if event is not None else [])
            gone = linked is None and self.reservations.is_gone(asset.integration_id, asset.id, event_id)
            if linked is None and event is not None and not gone:
                owner = self._platform_owner(client, asset, event, copies)
                if owner is not None:
                    decision = Decision(DEFER, f"the platform's own meeting for reservation {owner}, not yet linked")
                    report.decisions.append(decision)
                    raise Deferred(decision.reason)
            if subject is None and event is not None and _needs_subject(event, linked, policy):
                subject, private = self._recover_subject(client, event, copies)
                subject = subject or ""
                if private:
                    # The room dropped the private flag (Exchange's RemovePrivateProperty default);
                    # the organizer's copy still says so, and that is what we show.
                    event = replace(event, private=True)
            ctx = Context(asset=asset, now=self.clock(), policy=policy, organizer=organizer,
                          organizer_active=active, importing=importing, subject=subject or None, gone=gone)
            decision = plan(event, linked, overlapping, ctx)
            if decision.kind == DECLINE and not may_decline:
                report.decisions.append(decision)
                return decision
            if decision.kind == DEFER:
                report.decisions.append(decision)
                raise Deferred(decision.reason)
            if decision.writes or decision.tombstone:
                published = event_for(decision.before, decision.after, ctx.now) if decision.writes else None
                extra = self.reservations.tombstone(asset.integration_id, asset.id, event_id) if decision.tombstone else []
                try:
                    self.reservations.commit(asset.integration_id, asset.id, lock_etag, version,
                                             [decision.after] if decision.writes else [],
                                             [published] if published else [], extra)
                except ConflictError:
                    self.pause(min(1.0, random.uniform(0, 0.02 * 2 ** attempt)))
                    continue
            if decision.kind == DECLINE and event is not None:
                self._decline(client, asset, event, decision.comment)
            report.decisions.append(decision)
            return decision
        raise ConflictError(ConflictError.MODIFIED, table="reservations",
                            partition_key=f"{asset.integration_id}!{asset.id}")

    def _organizer(self, integration: Integration, event: RoomEvent | None) -> tuple[Organizer | None, bool]:
        if event is None or not event.organizer_email:
            return None, False
        person = self.users.get_by_email(integration.id, event.organizer_email)
        if person is None:
            return Organizer(email=event.organizer_email, user_id=None, name=event.organizer_name), False
        return Organizer(email=person.email, user_id=person.id, name=person.display_name), person.active

    def _organizer_copies(self, client: GraphClient, event: RoomEvent,
                          memo: dict[tuple[str, str], list[dict]]) -> list[dict]:
        """The organizer's copies of the meeting, with our tag expanded: one read serves both the
        look for a platform booking and the subject."""
        key = (event.organizer_email or "", event.ical_uid or "")
        if not all(key):
            return []
        if key not in memo:
            try:
                found = find_by_ical_uid(client, key[0], key[1], tag=RESERVATION_TAG)
            except (Forbidden, NotFound):
                found = []  # RBAC for Applications limits us to rooms, or the organizer is elsewhere
            memo[key] = [copy for copy in found if isinstance(copy, dict)]
        return memo[key]

    def _platform_owner(self, client: GraphClient, asset: Asset, event: RoomEvent,
                        memo: dict[tuple[str, str], list[dict]]) -> str | None:
        """The platform reservation this room item belongs to when the outbound worker made the
        meeting but has not stored its ids yet (it died after Graph's create, or is still on it):
        the organizer's copy carries our tag. Without this, a booking moved before the worker
        came back would meet its own old meeting as a stranger's and book the room twice. Asked
        only while the asset has platform changes still to do (one more Graph read then)."""
        if not event.organizer_email or not event.ical_uid:
            return None
        if not self.reservations.intents_of(asset.integration_id, asset.id):
            return None
        for copy in self._organizer_copies(client, event, memo):
            owner = platform_reservation_id(copy)
            if owner and asset_of(owner) == asset.id and self.reservations.get(asset.integration_id, asset.id, owner):
                return owner
        return None

    def _recover_subject(self, client: GraphClient, event: RoomEvent,
                         memo: dict[tuple[str, str], list[dict]]) -> tuple[str | None, bool]:
        """(the organizer's own subject, whether the organizer's copy is private) for a room copy
        that shows the organizer's name instead; a private copy's subject is never taken."""
        for copy in self._organizer_copies(client, event, memo):
            if isinstance(copy.get("subject"), str):
                if copy.get("sensitivity") in ("private", "confidential"):
                    return None, True
                return copy["subject"][:255], False
        return None, False

    def _decline(self, client: GraphClient, asset: Asset, event: RoomEvent, comment: str | None) -> None:
        try:
            decline_event(client, asset.mailbox, event.id, comment=comment)
        except NotFound:
            pass  # already gone from the room's calendar: the goal is met

    def _log(self, asset: Asset, event_id: str, trigger: str, report: ItemReport) -> None:
        now = self.clock()
        decisions = report.decisions or [Decision("ignore", "nothing to decide")]
        for number, decision in enumerate(decisions):
            reservation = decision.after or decision.before
            reason = decision.reason
            if decision.kind == DECLINE and decision.comment:
                reason = f"{reason}; the organizer was told: {decision.comment}"  # what was sent with the decline
            self.synclog.write(LogEntry(
                integration_id=asset.integration_id, at=now, asset_id=asset.id,
                reservation_id=reservation.id if reservation else None,
                input={"trigger": trigger, "room_event_id": event_id}, decision=decision.kind,
                reason=reason, graph_calls=report.graph_calls if number == 0 else 0,
                outcome="applied" if decision.kind in (CREATE, UPDATE, CANCEL, DECLINE) else "no change"))


def policy_of(integration: Integration) -> Policy:
    """The planner's policy from the options the customer set on the integration."""
    options = integration.options
    return Policy(unknown_organizer=options.unknown_organizer, recover_subject=options.recover_subject)


def _needs_subject(event: RoomEvent, linked, policy: Policy) -> bool:
    if not policy.recover_subject or event.private or not event.organizer_email or not event.ical_uid:
        return False
    if linked is not None and linked.origin == "platform":
        return False
    subject = event.subject.strip()
    return not subject or (event.organizer_name is not None and subject == event.organizer_name.strip())


def _with_master(event: RoomEvent, master_id: str) -> RoomEvent:
    return replace(event, series_master_id=master_id, type="occurrence" if event.type == "singleInstance" else event.type)

