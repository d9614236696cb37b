"""Platform -> Outlook: the worker that turns a reservation's intent row into the booker's meeting.

A platform reservation is a meeting in the booker's calendar with the room as a resource
attendee; Exchange then books the room (or declines). The worker
- creates it with a deterministic `transactionId` (reservation id + change number: Graph
  drops a repeated create) and a single-value extended property holding the reservation id;
- before creating again after any attempt that may have reached Graph (a timeout, a 5xx after
  sending, a crash before the id was stored), looks the event up by that property;
- updates with PATCH and cancels with DELETE on the organizer's event;
- stores the event id and iCalUId on the reservation: the commit writes the `g!` and `k!` index
  rows, so the room copy's notification finds this reservation instead of booking a second one;
- reads the room's answer: declined -> the reservation is `declined` with Exchange's reason.
  Exchange's booking assistant answers a moment after the create, so an answer not there yet
  is read again later (`answers` messages on booking-changes, one $batch of reads for up to 20
  reservations, after 15 s, 1, 5 and 30 minutes); until then the reservation is synced and
  says it is waiting for the room.

One worker at a time per reservation: the intent row carries a short lease. Nothing here
decides whether a booking is allowed; sync/reservations.py did that under the asset's lock.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

import graph.errors as graph_errors
from graph.batch import BatchRequest, BatchRunner
from graph.errors import Forbidden, GraphError, NotFound, Throttled, TokenError
from graph.events import (
    ExtendedProperty, calendar_view, create_event, decline_event, delete_event, find_by_extended_property,
    find_by_ical_uid, get_event, outlook_headers, update_event,
)
from graph.paths import segment
from graph.timestamps import graph_time
from sync.booking_model import CANCELLED, CONFIRMED, DECLINED, FAILED, SYNCED, Asset, Reservation
from sync.booking_queue import MAX_ANSWERS, BookingChange, BookingQueue
from sync.credentials import SecretUnreadable
from sync.model import utc_now
from sync.reservation_events import ReservationEventOutbox, event_for
from sync.store.errors import ConflictError
from sync.store.reservations_repo import (
    Intent, ReservationsRepo, asset_of, intent_key, intent_row_key, is_reservation_id,
)
from sync.store.synclog_repo import LogEntry, SyncLog

log = logging.getLogger(__name__)

# Our mark on every meeting we create; the inbound side reads it on the organizer's copy too.
RESERVATION_TAG = ExtendedProperty("6f1c2a57-3b8e-4d0a-9c61-2e7d5b4a9f13", "RoomsyncReservationId")
_TRANSACTION_NAMESPACE = uuid.UUID("0d9b3f5e-8a42-4c1e-b7a6-51f2c3d4e5a6")
LEASE = timedelta(seconds=60)
ROOM_RELEASE_COMMENT = "This booking was cancelled in the booking platform."
MAX_ATTEMPTS = 8
AMBIGUOUS_RETRY_SECONDS = 5
CONTEXT_TTL = timedelta(seconds=10)
WAITING_FOR_ROOM = "waiting for the room's answer"
# When the room's answer is read again (seconds after the previous look); Exchange's assistant
# usually answers within seconds, the later looks cover a slow or backed-up one.
ANSWER_CHECKS_SECONDS = (15.0, 60.0, 300.0, 1800.0)


def transaction_id(reservation_id: str, seq: int) -> str:
    """The same reservation and change number always give the same transactionId."""
    return str(uuid.uuid5(_TRANSACTION_NAMESPACE, f"{reservation_id}/{seq}"))


def outcome_unknown(error: BaseException) -> bool:
    """True when a failed write may still have been applied by Graph: no answer at all, a 5xx
    after the request left, or the client's own OutcomeUnknown (when the client has it)."""
    unknown = getattr(graph_errors, "OutcomeUnknown", None)
    if unknown is not None and isinstance(error, unknown):
        return True
    if not isinstance(error, GraphError):
        return False
    if error.status == 429:
        return False  # throttled requests are refused before they are processed
    return error.status == 0 or error.status >= 500


def platform_reservation_id(organizer_event: dict[str, Any]) -> str | None:
    """The reservation id we tagged an organizer's event with (read with `$expand` of
    RESERVATION_TAG), or None for a meeting we did not create. The inbound side uses it when a
    room copy's notification arrives before the worker stored the event's ids."""
    value = RESERVATION_TAG.value_of(organizer_event)
    return value if is_reservation_id(value) else None


def _wall(moment: datetime) -> dict[str, str]:
    return {"dateTime": graph_time(moment)[:-1], "timeZone": "UTC"}


def meeting(reservation: Reservation, asset: Asset) -> dict[str, Any]:
    """The organizer's event for a reservation: the room as resource attendee and location."""
    return {
        "subject": reservation.subject,
        "body": {"contentType": "text", "content": reservation.body or ""},
        "start": _wall(reservation.start), "end": _wall(reservation.end),
        "location": {"displayName": asset.name, "locationEmailAddress": asset.mailbox,
                     "locationType": "conferenceRoom"},
        "attendees": [{"type": "resource", "emailAddress": {"address": asset.mailbox, "name": asset.name}}],
        "sensitivity": "private" if reservation.private else "normal",
        "showAs": "busy",
    }


def room_response(event: dict[str, Any], mailbox: str) -> str:
    """The room's answer as the organizer's copy shows it (`none` until Exchange answers)."""
    for attendee in event.get("attendees") or []:
        address = ((attendee.get("emailAddress") or {}).get("address") or "").lower()
        if address == mailbox.lower():
            return ((attendee.get("status") or {}).get("response") or "none")
    return "none"


@dataclass
class Applied:
    """What Graph now holds for a reservation."""

    event_id: str | None = None
    ical_uid: str | None = None
    status: str | None = None  # DECLINED when the room refused
    sync_status: str = SYNCED
    reason: str | None = None
    calls: int = 0
    decision: str = "noop"
    awaiting: bool = False  # the room has not answered yet: read again later


@dataclass
class Outcome:
    decision: str
    retry_in: float | None = None
    graph_calls: int = 0
    detail: dict[str, Any] = field(default_factory=dict)


class Deferred(Exception):
    def __init__(self, seconds: float, why: str) -> None:
        super().__init__(why)
        self.seconds = seconds


class OutboundWorker:
    """Brings one reservation (or a batch of new occurrences) to Outlook."""

    def __init__(self, *, reservations: ReservationsRepo, assets, integrations, access, queue: BookingQueue,
                 events: ReservationEventOutbox, synclog: SyncLog,
                 clock: Callable[[], datetime] = utc_now,
                 answer_checks: tuple[float, ...] = ANSWER_CHECKS_SECONDS) -> None:
        self.reservations = reservations
        self.assets = assets
        self.integrations = integrations
        self.access = access
        self.queue = queue
        self.events = events
        self.synclog = synclog
        self.clock = clock
        self.answer_checks = answer_checks
        self._clients: dict[tuple, Any] = {}
        self._context_cache: dict[tuple, tuple] = {}

    # ---- one reservation ------------------------------------------------------------------

    def handle(self, change: BookingChange) -> Outcome:
        """Runs one message; re-queues it (hidden) when it must wait, never loses it."""
        if change.answer_ids:
            return self.check_answers(change.integration_id, change.answer_ids, attempt=change.attempt)
        try:
            outcome = self.sync(change.integration_id, change.asset_id, change.reservation_id, attempt=change.attempt)
        except Deferred as wait:
            outcome = Outcome("deferred", retry_in=wait.seconds, detail={"why": str(wait)})
        if outcome.retry_in is not None:
            self.queue.send(BookingChange(change.integration_id, reservation_id=change.reservation_id,
                                          attempt=change.attempt + 1), outcome.retry_in)
        return outcome

    def sync(self, integration_id: str, asset_id: str, reservation_id: str, *, attempt: int = 0) -> Outcome:
        reservation, intent, _ = self.reservations.with_intent(integration_id, asset_id, reservation_id)
        if intent is None:
            return Outcome("nothing_to_do")
        now = self.clock()
        if intent.lease_until is not None and intent.lease_until > now:
            raise Deferred((intent.lease_until - now).total_seconds() + 0.5, "another worker holds the lease")
        if reservation is None:
            self.reservations.release_intent(intent, done=True)
            return Outcome("gone")
        earlier_attempt = intent.attempted
        creating = reservation.is_confirmed and not reservation.organizer_event_id
        try:
            intent = self.reservations.claim_intent(intent, now + LEASE, intent.seq if creating else None)
        except ConflictError:
            raise Deferred(0.5, "the intent changed while claiming it") from None
        integration, asset = self._context(integration_id, asset_id, now)
        if integration is None or asset is None:
            return self._finish(reservation, intent, Applied(sync_status=FAILED, decision="failed",
                                reason="the integration or the asset no longer exists"), done=True)
        if not integration.is_active:
            self._finish(reservation, intent, Applied(sync_status=FAILED, decision="failed",
                         reason=f"the integration is {integration.status}: {integration.status_reason or ''}".strip()),
                         done=False)
            return Outcome("parked")
        try:
            client = self._client(integration)
            applied = self._apply(client, reservation, asset, intent, earlier_attempt)
        except Throttled as busy:
            self.reservations.release_intent(intent, done=False)
            return Outcome("throttled", retry_in=max(busy.retry_after, 1.0))
        except GraphError as error:
            if outcome_unknown(error) and attempt < MAX_ATTEMPTS:
                self.reservations.release_intent(intent, done=False)
                log.warning("reservation %s: Graph outcome unknown (%s); retrying", reservation.id, error.code)
                return Outcome("retry", retry_in=AMBIGUOUS_RETRY_SECONDS * (attempt + 1))
            applied = Applied(sync_status=FAILED, decision="failed", reason=f"Graph refused: {error}")
        except (TokenError, SecretUnreadable) as error:
            self._finish(reservation, intent, Applied(sync_status=FAILED, decision="failed",
                         reason=f"no Graph access: {error}"), done=False)
            return Outcome("failed", detail={"reason": str(error)})
        return self._finish(reservation, intent, applied, done=True)

    def _apply(self, client, reservation: Reservation, asset: Asset, intent: Intent,
               earlier_attempt: int | None) -> Applied:
        mailbox = reservation.organizer.email
        applied = Applied(event_id=reservation.organizer_event_id, ical_uid=reservation.ical_uid)
        if not mailbox:
            return Applied(sync_status=FAILED, decision="failed", reason="the reservation has no booker mailbox")
        if not applied.event_id and earlier_attempt is not None:
            found = self._find(client, mailbox, reservation.id, applied)
            if found:
                applied.event_id, applied.ical_uid = found["id"], found.get("iCalUId")
                applied.decision = "found_by_tag"
        if reservation.status == CANCELLED:
            if applied.event_id:
                applied.calls += 1
                try:
                    deleted = delete_event(client, mailbox, applied.event_id)
                except Forbidden:
                    deleted = False
                applied.decision = "deleted"
                if not deleted and applied.ical_uid:
                    # The organizer's mailbox is gone (a deleted leaver) or blocked: the room
                    # would keep the booking, so its copy is declined on the room's side.
                    self._release_room_copy(client, asset, applied)
            return applied
        if reservation.status != CONFIRMED:
            return applied  # declined: the booker keeps the room's answer in their calendar
        body = meeting(reservation, asset)
        event = None
        if applied.event_id:
            try:
                applied.calls += 1
                event = update_event(client, mailbox, applied.event_id, body)
                applied.decision = "updated" if applied.decision == "noop" else applied.decision + "+updated"
            except NotFound:
                applied.event_id = None  # deleted in Outlook meanwhile: book it again
        if not applied.event_id:
            try:
                applied.calls += 1
                event = create_event(client, mailbox, body, transaction_id=transaction_id(reservation.id, intent.seq),
                                     tag=RESERVATION_TAG, tag_value=reservation.id)
                applied.decision = "created"
            except GraphError as error:
                if not outcome_unknown(error):
                    raise
                found = self._find(client, mailbox, reservation.id, applied)
                if not found:
                    raise
                event, applied.decision = found, "created_after_unknown_outcome"
            applied.event_id, applied.ical_uid = event["id"], event.get("iCalUId")
        self._read_answer(client, mailbox, asset, reservation, applied)
        return applied

    def _release_room_copy(self, client, asset: Asset, applied: Applied) -> None:
        applied.calls += 1
        for copy in find_by_ical_uid(client, asset.mailbox, applied.ical_uid):
            if copy.get("isCancelled"):
                continue
            applied.calls += 1
            try:
                decline_event(client, asset.mailbox, copy["id"], comment=ROOM_RELEASE_COMMENT)
                applied.decision = "room_copy_declined"
            except NotFound:
                pass

    def _find(self, client, mailbox: str, reservation_id: str, applied: Applied) -> dict | None:
        applied.calls += 1
        found = find_by_extended_property(client, mailbox, RESERVATION_TAG, reservation_id)
        return found[0] if found else None

    def _read_answer(self, client, mailbox: str, asset: Asset, reservation: Reservation, applied: Applied) -> None:
        """Exchange answers for the room after our request; the organizer's copy shows it."""
        applied.calls += 1
        current = get_event(client, mailbox, applied.event_id, select="attendees,iCalUId")
        applied.ical_uid = current.get("iCalUId") or applied.ical_uid
        self._judge(client, current, asset, reservation, applied)

    def _judge(self, client, event: dict, asset: Asset, reservation: Reservation, applied: Applied) -> None:
        answer = room_response(event, asset.mailbox)
        if answer == "declined":
            applied.status, applied.sync_status = DECLINED, SYNCED
            applied.reason = self._decline_reason(client, asset, reservation, applied)
            applied.decision += "+declined"
        elif answer in ("accepted", "organizer"):
            applied.sync_status, applied.reason = SYNCED, None
        else:
            applied.sync_status, applied.reason, applied.awaiting = SYNCED, WAITING_FOR_ROOM, True

    def _decline_reason(self, client, asset: Asset, reservation: Reservation, applied: Applied) -> str:
        """Exchange gives its reason only in a mail to the organizer; the room's own calendar
        tells a conflict from a policy refusal (booking window, duration, recurrence)."""
        applied.calls += 1
        busy = [item for item in calendar_view(client, asset.mailbox, reservation.start, reservation.end)
                if not item.get("isCancelled") and item.get("showAs") != "free"
                and item.get("iCalUId") != applied.ical_uid]
        if busy:
            return "the room declined: it is already booked at that time"
        return ("the room declined: outside its booking policy (booking window, longest meeting or "
                "recurring meetings)")

    # ---- storing the result ---------------------------------------------------------------

    def _finish(self, reservation: Reservation, intent: Intent, applied: Applied, *, done: bool) -> Outcome:
        """Stores what Graph now holds, under the asset's lock; a finished intent is deleted in the
        same transaction unless a newer change of the reservation arrived meanwhile."""
        now = self.clock()
        released = False
        for _ in range(20):
            current, newer, lock = self.reservations.with_intent(reservation.integration_id, reservation.asset_id,
                                                                 reservation.id, lock=True)
            if current is None:
                break
            if lock is None:
                lock = self.reservations.lock(reservation.integration_id, reservation.asset_id)
            superseded = newer is not None and newer.seq != intent.seq
            changes: dict[str, Any] = {"organizer_event_id": applied.event_id or current.organizer_event_id,
                                       "ical_uid": applied.ical_uid or current.ical_uid}
            if not superseded:
                changes["sync_status"], changes["sync_reason"] = applied.sync_status, applied.reason
                if applied.status == DECLINED and current.status == CONFIRMED:
                    changes["status"] = DECLINED
            after = current.changed(now, **changes)
            published = event_for(current, after, now)
            extra = []
            if done and newer is not None and not superseded:
                extra.append(("delete", {"PartitionKey": intent_key(newer), "RowKey": intent_row_key(newer)},
                              {"etag": newer.etag}))
            try:
                self.reservations.commit(reservation.integration_id, reservation.asset_id, lock[0], lock[1],
                                         [after], [published] if published else [], extra=extra)
                released = bool(extra)
                break
            except ConflictError:
                continue
        else:
            raise ConflictError(ConflictError.MODIFIED, table="reservations")
        if not released:
            self.reservations.release_intent(intent, done=done)
        if applied.awaiting and current is not None and not superseded:
            self._ask_later(reservation.integration_id, [reservation.id], 0)
        self._flush(reservation.integration_id, reservation.asset_id)
        self.synclog.write(LogEntry(
            integration_id=reservation.integration_id, at=now, decision=f"outbound:{applied.decision}",
            outcome=applied.status or applied.sync_status, asset_id=reservation.asset_id,
            reservation_id=reservation.id, reason=applied.reason, graph_calls=applied.calls,
            input={"seq": intent.seq, "event_id": applied.event_id}))
        return Outcome(applied.decision, graph_calls=applied.calls,
                       detail={"sync_status": applied.sync_status, "reason": applied.reason})

    def _context(self, integration_id: str, asset_id: str, now: datetime):
        """The integration and asset, read at most every few seconds per process (a parked
        integration or a changed mailbox is seen within that time)."""
        key = (integration_id, asset_id)
        cached = self._context_cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1], cached[2]
        integration = self.integrations.get(integration_id)
        asset = self.assets.get_in(integration_id, asset_id)
        self._context_cache[key] = (now + CONTEXT_TTL, integration, asset)
        return integration, asset

    def _flush(self, integration_id: str, asset_id: str) -> None:
        try:
            self.events.flush(integration_id, asset_id)
        except Exception:  # noqa: BLE001 -- the sweeper sends them later; the booking is stored
            log.exception("reservation events of asset %s stay in the outbox for the sweeper", asset_id)

    def _client(self, integration):
        key = (integration.id, integration.updated_at)
        client = self._clients.get(key)
        if client is None:
            for old in [k for k in self._clients if k[0] == integration.id]:
                self._clients.pop(old).close()
            client = self._clients[key] = self.access.client_for(integration)
        return client

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    # ---- many new occurrences at once ------------------------------------------------------

    def push_new(self, integration, assets: dict[str, Asset], reservations: Iterable[Reservation],
                 intents: dict[str, Intent]) -> "BatchReport":
        """Creates the meetings of freshly materialised occurrences (of any assets of one
        integration) with $batch: 20 per request, at most 4 in flight per mailbox (the client's
        limiter), and stores the results one transaction per 15 reservations. The rooms answer
        a moment later, so their answers are read by `answers` messages (20 per $batch), not
        here. Items that fail stay as intents for the sweeper (their create may have happened:
        the worker then finds the event by its tag)."""
        report = BatchReport()
        items = [r for r in reservations if r.is_confirmed and not r.organizer_event_id and r.organizer.email]
        if not items:
            return report
        client = self._client(integration)
        creates = [BatchRequest("POST", f"/users/{segment(r.organizer.email)}/events",
                                body=_tagged(meeting(r, assets[r.asset_id]), r, intents[r.id].seq),
                                headers=outlook_headers(), id=str(n + 1)) for n, r in enumerate(items)]
        runner = BatchRunner(client)
        created = runner.run(creates)
        made: list[tuple[Reservation, dict]] = []
        for reservation, result in zip(items, created):
            if result.ok and isinstance(result.body, dict) and result.body.get("id"):
                made.append((reservation, result.body))
            else:
                report.left_for_sweeper += 1
        report.batches = runner.batches_sent
        results: dict[tuple[str, str], list[tuple[Reservation, Applied]]] = {}
        awaiting: list[str] = []
        for reservation, body in made:
            applied = Applied(event_id=body["id"], ical_uid=body.get("iCalUId"), decision="created_in_batch")
            self._judge(client, body, assets[reservation.asset_id], reservation, applied)
            results.setdefault((reservation.integration_id, reservation.asset_id), []).append((reservation, applied))
            report.created += 1
            report.declined += applied.status == DECLINED
            if applied.awaiting:
                awaiting.append(reservation.id)
        for (integration_id, asset_id), done in results.items():
            for start in range(0, len(done), 15):
                self._finish_many(integration_id, asset_id, done[start:start + 15], intents)
            self._flush(integration_id, asset_id)
        report.awaiting = len(awaiting)
        self._ask_later(integration.id, awaiting, 0)
        return report

    # ---- the rooms' answers, read again later -------------------------------------------------

    def _ask_later(self, integration_id: str, reservation_ids: list[str], check: int) -> None:
        """Queues `answers` messages for the `check`-th look (none after the last)."""
        if check >= len(self.answer_checks):
            return
        for start in range(0, len(reservation_ids), MAX_ANSWERS):
            self.queue.send(BookingChange(integration_id, answer_ids=tuple(reservation_ids[start:start + MAX_ANSWERS]),
                                          attempt=check), self.answer_checks[check])

    def check_answers(self, integration_id: str, reservation_ids: Iterable[str], *, attempt: int = 0) -> Outcome:
        """Reads the room's answer for reservations stored as waiting for it, in one $batch.
        Idempotent: only reservations still waiting, unchanged and with no newer change pending
        are read and written (a newer change reads its own answer), so a repeated message finds
        nothing left to do; a changed reservation is never overwritten with an older answer."""
        now = self.clock()
        waiting: list[Reservation] = []
        for reservation_id in dict.fromkeys(reservation_ids):
            reservation, intent, _ = self.reservations.with_intent(integration_id, asset_of(reservation_id),
                                                                   reservation_id)
            if (reservation is not None and intent is None and reservation.is_confirmed
                    and reservation.organizer_event_id and reservation.organizer.email
                    and reservation.sync_reason == WAITING_FOR_ROOM):
                waiting.append(reservation)
        if not waiting:
            return Outcome("nothing_to_do")
        integration = self.integrations.get(integration_id)
        if integration is None or not integration.is_active:
            self._ask_later(integration_id, [r.id for r in waiting], attempt + 1)  # it may be active again by then
            return Outcome("parked")
        client = self._client(integration)
        reads = [BatchRequest("GET", f"/users/{segment(r.organizer.email)}/events/{segment(r.organizer_event_id)}"
                                     "?$select=attendees,iCalUId", headers=outlook_headers(), id=str(n + 1))
                 for n, r in enumerate(waiting)]
        runner = BatchRunner(client)
        try:
            answers = runner.run(reads)
        except (GraphError, TokenError, SecretUnreadable) as error:
            log.warning("the rooms' answers could not be read (%s); looking again later", type(error).__name__)
            self._ask_later(integration_id, [r.id for r in waiting], attempt + 1)
            return Outcome("retry", graph_calls=runner.batches_sent)
        answered: dict[str, list[tuple[Reservation, Applied]]] = {}
        still: list[Reservation] = []
        for reservation, answer in zip(waiting, answers):
            _, asset = self._context(integration_id, reservation.asset_id, now)
            if asset is None or answer.status == 404:
                continue  # the asset or the organizer's meeting is gone: other paths handle that
            applied = Applied(event_id=reservation.organizer_event_id, ical_uid=reservation.ical_uid,
                              decision="answer_read", awaiting=True)
            if answer.ok and isinstance(answer.body, dict):
                applied.awaiting = False
                self._judge(client, answer.body, asset, reservation, applied)
            if not applied.awaiting:
                answered.setdefault(reservation.asset_id, []).append((reservation, applied))
            elif attempt + 1 >= len(self.answer_checks):
                minutes = round(sum(self.answer_checks) / 60)
                applied.reason, applied.decision = f"the room did not answer within {minutes} minutes", "answer_missing"
                answered.setdefault(reservation.asset_id, []).append((reservation, applied))
            else:
                still.append(reservation)
        for asset_id, done in answered.items():
            self._finish_many(integration_id, asset_id, done, None, decision="outbound:answer_read")
            self._flush(integration_id, asset_id)
        self._ask_later(integration_id, [r.id for r in still], attempt + 1)
        return Outcome("answers_read", graph_calls=runner.batches_sent,
                       detail={"answered": sum(len(done) for done in answered.values()), "waiting": len(still)})

    def _finish_many(self, integration_id: str, asset_id: str, done: list[tuple[Reservation, Applied]],
                     intents: dict[str, Intent] | None, *, decision: str = "outbound:created_in_batch") -> None:
        """Stores several results in one transaction with their intents' deletion (each only
        if no newer change came in: If-Match on the intent as read here). Without `intents`
        (an answer read later) a reservation is written only if it is still as it was read
        and no change of it is pending."""
        now = self.clock()
        wanted = {r.id for r, _ in done}
        for _ in range(20):
            lock_etag, version = self.reservations.lock(integration_id, asset_id)
            current = {r.id: r for r in self.reservations.several(integration_id, asset_id, wanted)}
            pending = {i.reservation_id: i for i in self.reservations.intents_of(integration_id, asset_id)
                       if i.reservation_id in wanted}
            rows, events, extra = [], [], []
            for reservation, applied in done:
                before = current.get(reservation.id)
                if before is None:
                    continue
                intent = pending.get(reservation.id)
                if intents is None:
                    if intent is not None or before.updated_at != reservation.updated_at:
                        continue
                    changes: dict[str, Any] = {}
                else:
                    changes = {"organizer_event_id": applied.event_id, "ical_uid": applied.ical_uid}
                fresh = intent is not None and intents is not None and intent.seq == intents[reservation.id].seq
                if fresh or intent is None:
                    changes.update(sync_status=applied.sync_status, sync_reason=applied.reason)
                    if applied.status == DECLINED and before.status == CONFIRMED:
                        changes["status"] = DECLINED
                after = before.changed(now, **changes)
                rows.append(after)
                published = event_for(before, after, now)
                if published:
                    events.append(published)
                if fresh:
                    extra.append(("delete", {"PartitionKey": intent_key(intent), "RowKey": intent_row_key(intent)},
                                  {"etag": intent.etag}))
            try:
                self.reservations.commit(integration_id, asset_id, lock_etag, version, rows, events, extra=extra)
                break
            except ConflictError:
                continue
        self.synclog.write(LogEntry(
            integration_id=integration_id, at=now, decision=decision,
            outcome=f"{sum(1 for _, a in done if a.status == DECLINED)} declined of {len(done)}", asset_id=asset_id,
            input={"reservations": sorted(wanted)}, graph_calls=0))


def _tagged(body: dict, reservation: Reservation, seq: int) -> dict:
    return {**body, "transactionId": transaction_id(reservation.id, seq),
            "singleValueExtendedProperties": [{"id": RESERVATION_TAG.id, "value": reservation.id}]}


@dataclass
class BatchReport:
    created: int = 0
    declined: int = 0
    awaiting: int = 0  # created, the room's answer to be read later
    left_for_sweeper: int = 0
    batches: int = 0

