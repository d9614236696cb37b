"""Calendar operations shared by the Graph routes and the control API: create, update, delete,
cancel, respond. Each one stores the change, publishes it, then lets the mailboxes of invited
people and rooms process the meeting (`booking`), as Exchange does after a request is sent.

Graph behaviour implemented here (GRAPH.md §4):
- POST with a `transactionId` already used in the mailbox returns the existing event.
- PATCH of an occurrence turns it into an exception (same id); DELETE of an occurrence cancels
  just that occurrence; a series whose schedule changes drops exceptions that no longer match.
- DELETE or `cancel` by the organizer sends cancellations: attendee copies become `isCancelled`.
- `cancel` by an attendee is a 400 ("You need to be an organizer to cancel a meeting.").
- `decline` removes the item from the attendee's calendar (it goes to Deleted Items; a later GET
  is 404 [obs] microsoft-graph-docs#2284); `accept`/`tentativelyAccept` update the response, and
  with `sendResponse` (default true) the organizer's attendee status.
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterator

from devtools.graph_emulator import booking, event_ids
from devtools.graph_emulator.calendar_store import (
    Found, MailboxCalendar, calendars, exception_for, is_occurrence_start, publish,
)
from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.event_model import (
    StoredEvent, apply_properties, check_properties, parse_recurrence,
)
from devtools.graph_emulator.recurrence import Recurrence, localize, occurrence_dates
from devtools.graph_emulator.state import Room, Tenant, User, World, new_outlook_id
from devtools.graph_emulator.time_zones import require_zone

RESPONSES = {"accept": "accepted", "tentativelyAccept": "tentativelyAccepted", "decline": "declined"}
SERVICE = "calendars"


@dataclass(frozen=True)
class Mailbox:
    """A mailbox-enabled user (person or room)."""
    user: User
    room: Room | None

    @property
    def id(self) -> str:
        return self.user.id

    @property
    def address(self) -> str:
        return self.user.mail or self.user.user_principal_name

    @property
    def name(self) -> str:
        return self.room.display_name if self.room else self.user.display_name


def item_not_found() -> GraphError:
    return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


class CalendarService:
    def __init__(self, world: World) -> None:
        self.world = world

    def now(self) -> datetime:
        return self.world.clock.now()

    # ---- addressing --------------------------------------------------------------------------

    def resolve_mailbox(self, tenant: Tenant, segment: str) -> Mailbox:
        """`/users/{id | userPrincipalName | mail}`: unknown users are 404 ErrorInvalidUser;
        users without an Exchange Online mailbox, and soft-deleted ones, are 404
        MailboxNotEnabledForRESTAPI (its message names both cases)."""
        with self.world.lock:
            booking.deliver_due_answers(self, tenant)
        mailbox = self.mailbox_for_address(tenant, segment, require_mailbox=False)
        soft_deleted = mailbox is None and tenant.find_user(segment, include_deleted=True) is not None
        if mailbox is None and not soft_deleted:
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{segment}' is invalid.")
        if soft_deleted or not mailbox.user.has_mailbox:
            raise GraphError(404, "MailboxNotEnabledForRESTAPI",
                             "The mailbox is either inactive, soft-deleted, or is hosted on-premise.")
        return mailbox

    def mailbox_for_address(self, tenant: Tenant, key: str, require_mailbox: bool = True) -> Mailbox | None:
        user = tenant.find_user(key)
        room = None
        if user is None:
            room = tenant.find_room(key)
            user = tenant.users.get(room.user_id) if room else None
            if user is not None and user.deleted_at is not None:
                user = None
        if user is None or (require_mailbox and not user.has_mailbox):
            return None
        if room is None and user.is_room:
            room = tenant.find_room(user.mail or "") or next(
                (r for r in tenant.rooms.values() if r.user_id == user.id), None)
        return Mailbox(user, room)

    def mailbox_by_id(self, tenant: Tenant, user_id: str) -> Mailbox | None:
        user = tenant.users.get(user_id)
        if user is None:
            return None
        room = next((r for r in tenant.rooms.values() if r.user_id == user.id), None) if user.is_room else None
        return Mailbox(user, room)

    def box(self, tenant: Tenant, mailbox: Mailbox | str) -> MailboxCalendar:
        owner = mailbox if isinstance(mailbox, str) else mailbox.id
        return calendars(tenant).mailbox(owner)

    def display_name_for(self, tenant: Tenant, address: str) -> str | None:
        mailbox = self.mailbox_for_address(tenant, address)
        return mailbox.name if mailbox else None

    def find(self, box: MailboxCalendar, item_id: str) -> Found:
        found = box.find(item_id)
        if found is None:
            raise item_not_found()
        return found

    @staticmethod
    def check_if_match(found: Found, if_match: str | None) -> None:
        """Outlook refuses a write whose `If-Match` names an older changeKey: 412
        ErrorIrresolvableConflict, and nothing changes."""
        if not event_ids.if_match_allows(if_match, found.event.change_key):
            raise GraphError(412, "ErrorIrresolvableConflict",
                             "The send or update operation could not be performed because the change key passed "
                             "in the request does not match the current change key for the item.")

    # ---- change feed -------------------------------------------------------------------------

    def announce_created(self, tenant: Tenant, box: MailboxCalendar, event: StoredEvent) -> None:
        """A new item notifies `created` and then `updated` (GRAPH.md §2.3)."""
        master = event.kind == "seriesMaster"
        publish(self.world, tenant.id, box, event.id, "created", event.change_key, master)
        publish(self.world, tenant.id, box, event.id, "updated", event.change_key, master)

    def announce_changed(self, tenant: Tenant, box: MailboxCalendar, event: StoredEvent,
                         master: StoredEvent | None = None) -> None:
        """Stamps and publishes a change; an exception's change also changes its master."""
        now = self.now()
        event.stamp(now)
        publish(self.world, tenant.id, box, event.id, "updated", event.change_key, event.kind == "seriesMaster")
        if master is not None and master is not event:
            master.stamp(now)
            publish(self.world, tenant.id, box, master.id, "updated", master.change_key, True)

    def announce_deleted(self, tenant: Tenant, box: MailboxCalendar, item_id: str, is_master: bool = False) -> None:
        publish(self.world, tenant.id, box, item_id, "deleted", None, is_master)

    # ---- operations --------------------------------------------------------------------------

    def create_event(self, tenant: Tenant, mailbox: Mailbox, body: dict,
                     after_store: Callable[[StoredEvent], object] | None = None) -> tuple[StoredEvent, bool]:
        """Creates an event organized by the mailbox owner; returns (event, created). A repeated
        transactionId returns the earlier event and creates nothing."""
        with self.world.lock:
            check_properties(body)
            box = self.box(tenant, mailbox)
            transaction_id = body.get("transactionId")
            if isinstance(transaction_id, str) and transaction_id in box.transaction_ids:
                existing = box.events.get(box.transaction_ids[transaction_id])
                if existing is not None:
                    if after_store:
                        after_store(existing)
                    return existing, False
            now = self.now()
            event = StoredEvent(
                id=new_outlook_id(), mailbox_id=mailbox.id, ical_uid=event_ids.new_ical_uid(now),
                change_key=event_ids.new_change_key(), created=now, last_modified=now, start=now, end=now,
                organizer={"name": mailbox.name, "address": mailbox.address},
            )
            apply_properties(event, body, lambda a: self.display_name_for(tenant, a), creating=True)
            if body.get("recurrence") is not None:
                set_recurrence(event, parse_recurrence(body["recurrence"]))
            box.add(event)
            self.announce_created(tenant, box, event)
            if after_store:
                after_store(event)
            booking.sync_meeting(self, tenant, box, event)
            return event, True

    def update_event(self, tenant: Tenant, mailbox: Mailbox, item_id: str, body: dict,
                     after_store: Callable[[StoredEvent], object] | None = None,
                     if_match: str | None = None) -> StoredEvent:
        with self.world.lock:
            check_properties(body)
            box = self.box(tenant, mailbox)
            found = self.find(box, item_id)
            self.check_if_match(found, if_match)
            name_of = lambda a: self.display_name_for(tenant, a)  # noqa: E731
            if found.master is not None:
                if "recurrence" in body:
                    raise GraphError(400, "ErrorInvalidRequest",
                                     "Your request can't be completed. An occurrence can't have a recurrence.")
                master = found.master
                is_new = found.original_start not in master.exceptions
                exception = exception_for(master, found.original_start, self.now())
                try:
                    with unchanged_on_error(exception):
                        apply_properties(exception, {k: v for k, v in body.items() if k != "transactionId"},
                                         name_of, creating=False)
                except GraphError:
                    if is_new:
                        del master.exceptions[found.original_start]
                    raise
                self.announce_changed(tenant, box, exception, master)
                if after_store:
                    after_store(exception)
                if master.is_organizer:
                    booking.sync_meeting(self, tenant, box, master)
                return exception
            event = found.event
            with unchanged_on_error(event):
                changed = apply_properties(event, body, name_of, creating=False)
                if "recurrence" in body:
                    recurrence = parse_recurrence(body["recurrence"])
                    if recurrence is None:
                        make_single(event)
                    else:
                        set_recurrence(event, recurrence)
                elif "time" in changed and event.kind == "seriesMaster" and event.recurrence is not None:
                    # Moving the master moves the series: its range starts on the new date.
                    local_day = event.start.astimezone(event.series_zone).date()
                    set_recurrence(event, event.recurrence.with_start_date(local_day))
            self.announce_changed(tenant, box, event)
            if after_store:
                after_store(event)
            if event.is_organizer:
                booking.sync_meeting(self, tenant, box, event)
            return event

    def delete_event(self, tenant: Tenant, mailbox: Mailbox, item_id: str, if_match: str | None = None) -> None:
        with self.world.lock:
            box = self.box(tenant, mailbox)
            found = self.find(box, item_id)
            self.check_if_match(found, if_match)
            if found.master is not None:
                self._cancel_occurrence(tenant, box, found)
                return
            event = found.event
            box.remove(event)
            self.announce_deleted(tenant, box, event.id, event.kind == "seriesMaster")
            if event.is_organizer:
                booking.withdraw_all(self, tenant, event)
            else:
                self._forget_copy(tenant, event)

    def cancel_event(self, tenant: Tenant, mailbox: Mailbox, item_id: str) -> None:
        """Organizer-only; the meeting (or one occurrence) is cancelled and moved out of the
        calendar (to Deleted Items), and attendees get the cancellation."""
        with self.world.lock:
            box = self.box(tenant, mailbox)
            found = self.find(box, item_id)
            root = found.master or found.event
            if not root.is_organizer:
                raise GraphError(400, "ErrorInvalidRequest",
                                 "Your request can't be completed. You need to be an organizer to cancel a meeting.")
            self.delete_event(tenant, mailbox, item_id)

    def respond(self, tenant: Tenant, mailbox: Mailbox, item_id: str, action: str,
                send_response: bool = True, proposes_new_time: bool = False) -> None:
        """accept / tentativelyAccept / decline an invitation in an attendee's calendar."""
        with self.world.lock:
            box = self.box(tenant, mailbox)
            found = self.find(box, item_id)
            root = found.master or found.event
            if proposes_new_time and not root.options.get("allowNewTimeProposals", True):
                raise GraphError(400, "ErrorInvalidRequest",
                                 "The organizer of this meeting doesn't allow new time proposals.")
            if root.is_organizer or root.source is None:
                raise GraphError(400, "ErrorInvalidRequest",
                                 "Your request can't be completed. You can't respond to a meeting you organized.")
            response = RESPONSES[action]
            now = self.now()
            if found.master is not None:
                target = exception_for(found.master, found.original_start, now)
            else:
                target = found.event
            target.response, target.response_time = response, now
            if response == "accepted":
                target.show_as = "busy"
            elif response == "tentativelyAccepted":
                target.show_as = "tentative"
            if response == "declined":
                if found.master is not None:
                    self._cancel_occurrence(tenant, box, found)
                else:
                    box.remove(target)
                    self.announce_deleted(tenant, box, target.id, target.kind == "seriesMaster")
                    self._forget_copy(tenant, target)
            else:
                self.announce_changed(tenant, box, target, found.master)
            if send_response:
                booking.record_response(self, tenant, root, mailbox.address, response, found.original_start)

    # ---- shared steps ----------------------------------------------------------------------

    def _cancel_occurrence(self, tenant: Tenant, box: MailboxCalendar, found: Found) -> None:
        master, original_start = found.master, found.original_start
        assert master is not None and original_start is not None
        master.exceptions.pop(original_start, None)
        master.cancelled_starts.add(original_start)
        self.announce_deleted(tenant, box, event_ids.occurrence_id(master.id, original_start))
        self.announce_changed(tenant, box, master)
        if master.is_organizer:
            booking.sync_meeting(self, tenant, box, master)

    def _forget_copy(self, tenant: Tenant, copy: StoredEvent) -> None:
        """An attendee removed its copy: a later update from the organizer re-invites."""
        if copy.source is None:
            return
        organizer_box = calendars(tenant).mailbox(copy.source[0])
        original = organizer_box.events.get(copy.source[1])
        if original is not None and original.copies.get(copy.mailbox_id) == copy.id:
            del original.copies[copy.mailbox_id]


def calendar_service(world: World) -> CalendarService:
    """The world's calendar service (Graph routes and the control API share it)."""
    return world.service(SERVICE, lambda: CalendarService(world))


@contextmanager
def unchanged_on_error(event: StoredEvent) -> Iterator[None]:
    """A refused update leaves the item exactly as it was (Graph applies a PATCH whole or not at all)."""
    saved = copy.deepcopy(event.__dict__)
    try:
        yield
    except Exception:
        event.__dict__.clear()
        event.__dict__.update(saved)
        raise


def set_recurrence(event: StoredEvent, recurrence: Recurrence | None) -> None:
    """Makes `event` a series master; its start moves to the first occurrence (Outlook keeps
    the master at the series' first instance). Exceptions that no longer match are dropped."""
    if recurrence is None:
        make_single(event)
        return
    zone = require_zone(recurrence.range.time_zone or event.start_zone)
    wall_time = event.start.astimezone(zone).time()
    first = next(occurrence_dates(recurrence), None)
    if first is None:
        raise GraphError(400, "ErrorInvalidRequest", "Your request can't be completed. The recurrence has no occurrences.")
    duration = event.duration
    event.start = localize(first, wall_time, zone)
    event.end = event.start + duration
    event.recurrence = recurrence
    event.kind = "seriesMaster"
    for original in list(event.exceptions):
        if not is_occurrence_start(event, original):
            del event.exceptions[original]
    event.cancelled_starts = {s for s in event.cancelled_starts if is_occurrence_start(event, s)}


def make_single(event: StoredEvent) -> None:
    event.recurrence = None
    event.kind = "singleInstance"
    event.exceptions.clear()
    event.cancelled_starts.clear()
