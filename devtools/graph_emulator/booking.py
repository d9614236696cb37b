"""What happens in invitees' mailboxes when an organizer's meeting is sent, updated or cancelled.

Exchange delivers the request to every invited mailbox in the tenant:
- A **room** processes it with its calendar-processing settings (`booking_policy`): under
  AutoAccept it accepts (a copy in its calendar sharing the iCalUId, with the content rules) or
  declines (no copy; a previously accepted copy is removed), and the organizer's attendee entry
  for the room becomes accepted/declined. AutoUpdate leaves a tentative copy and no response;
  None leaves the request unprocessed. A changed time or recurrence is re-checked; a moved
  occurrence is checked on its own (the room may decline just that occurrence).
- A **person** gets a tentative copy (`notResponded`) that follows the organizer's updates.
- An attendee removed from the meeting, or a deleted/cancelled meeting, cancels the copies:
  `isCancelled: true` with a "Canceled: " subject, or removal for rooms with
  RemoveCanceledMeetings. Cancelled occurrences are mirrored the same way, one by one.
Runs synchronously inside the organizer's request, after the organizer's own item is stored, so
the organizer's POST/PATCH response still shows the room's status as "none" (the real
assistant answers a moment later) and every later read is deterministic. A room's
`answer_delay_seconds` (emulator clock) holds its answer back from the organizer's item for that
long, as Exchange's asynchronous assistant does, so clients must not expect it on the next read.
"""
from __future__ import annotations

import heapq
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable

from devtools.graph_emulator import booking_policy, event_ids
from devtools.graph_emulator.calendar_store import MailboxCalendar, calendars, exception_for, expand
from devtools.graph_emulator.event_model import NO_TIME, StoredEvent
from devtools.graph_emulator.state import RoomSettings, Tenant, new_outlook_id
from devtools.graph_emulator.time_zones import format_offset

if TYPE_CHECKING:
    from devtools.graph_emulator.calendar_service import CalendarService, Mailbox

ContentRule = Callable[[StoredEvent], dict]
ConflictCheck = Callable[[datetime, datetime, str], bool]


def sync_meeting(svc: "CalendarService", tenant: Tenant, organizer_box: MailboxCalendar, event: StoredEvent) -> None:
    """Brings every invitee's copy in line with the organizer's `event` (single or master)."""
    if not event.is_organizer or event.kind == "exception":
        return
    targets = _invited_mailboxes(svc, tenant, event)
    for mailbox_id, copy_id in list(event.copies.items()):
        if mailbox_id not in targets:
            _withdraw(svc, tenant, mailbox_id, copy_id)
            del event.copies[mailbox_id]
    for mailbox in targets.values():
        if mailbox.user.is_room:
            _process_room(svc, tenant, organizer_box, event, mailbox)
        else:
            _process_person(svc, tenant, event, mailbox)


def withdraw_all(svc: "CalendarService", tenant: Tenant, event: StoredEvent) -> None:
    """The organizer deleted or cancelled the whole meeting."""
    for mailbox_id, copy_id in list(event.copies.items()):
        _withdraw(svc, tenant, mailbox_id, copy_id)
    event.copies.clear()


def record_response(svc: "CalendarService", tenant: Tenant, copy: StoredEvent, address: str, response: str,
                    original_start: datetime | None) -> None:
    """An attendee's response reaches the organizer's attendee list (for one occurrence only if
    the organizer has an exception for it)."""
    if copy.source is None:
        return
    organizer_box = calendars(tenant).mailbox(copy.source[0])
    organizer_event = organizer_box.events.get(copy.source[1])
    if organizer_event is None:
        return
    if original_start is None:
        _set_status(svc, tenant, organizer_box, organizer_event, address, response)
        return
    exception = organizer_event.exceptions.get(original_start)
    if exception is not None:
        _set_status(svc, tenant, organizer_box, exception, address, response, organizer_event)


# ---- rooms and people ----------------------------------------------------------------------------

def _invited_mailboxes(svc: "CalendarService", tenant: Tenant, event: StoredEvent) -> dict[str, "Mailbox"]:
    found = {}
    for attendee in event.attendees:
        mailbox = svc.mailbox_for_address(tenant, attendee["emailAddress"]["address"])
        if mailbox is not None and mailbox.id != event.mailbox_id:
            found[mailbox.id] = mailbox
    return found


def _settings(mailbox: "Mailbox | None") -> RoomSettings:
    return mailbox.room.settings if mailbox is not None and mailbox.room is not None else RoomSettings()


def _current_copy(box: MailboxCalendar, event: StoredEvent, mailbox_id: str) -> StoredEvent | None:
    copy_id = event.copies.get(mailbox_id)
    return box.events.get(copy_id) if copy_id else None


def _process_person(svc: "CalendarService", tenant: Tenant, event: StoredEvent, mailbox: "Mailbox") -> None:
    box = svc.box(tenant, mailbox)
    copy = _current_copy(box, event, mailbox.id)
    _upsert_copy(svc, tenant, box, event, copy, booking_policy.plain_content, response="notResponded",
                 show_as="tentative" if copy is None else None, check=None, remove_cancelled=False)


def _process_room(svc: "CalendarService", tenant: Tenant, organizer_box: MailboxCalendar, event: StoredEvent,
                  mailbox: "Mailbox") -> None:
    settings = _settings(mailbox)
    box = svc.box(tenant, mailbox)
    copy = _current_copy(box, event, mailbox.id)
    mode = (settings.automate_processing or "").lower()
    if mode == "none":
        return
    if mode == "autoupdate":
        _upsert_copy(svc, tenant, box, event, copy, booking_policy.plain_content, response="notResponded",
                     show_as="tentative", check=None, remove_cancelled=False)
        return
    if copy is None or _schedule(copy) != _schedule(event):
        if _request_problem(svc, settings, box, event, copy) is not None:
            if copy is not None:
                box.remove(copy)
                svc.announce_deleted(tenant, box, copy.id, copy.kind == "seriesMaster")
                event.copies.pop(mailbox.id, None)
            _set_status(svc, tenant, organizer_box, event, mailbox.address, "declined")
            return

    def conflicts(start: datetime, end: datetime, own_id: str) -> bool:
        if settings.allow_conflicts:
            return False
        return booking_policy.overlapping([(start, end)], _busy(box, start, end, own_id))

    def on_instance(original_start: datetime, accepted: bool) -> None:
        exception = event.exceptions.get(original_start)
        if exception is not None:
            _set_status(svc, tenant, organizer_box, exception, mailbox.address,
                        "accepted" if accepted else "declined", event)

    _upsert_copy(svc, tenant, box, event, copy, lambda source: booking_policy.copy_content(settings, source),
                 response="accepted", show_as="busy", check=conflicts,
                 remove_cancelled=settings.remove_canceled_meetings, on_instance=on_instance)
    _set_status(svc, tenant, organizer_box, event, mailbox.address, "accepted")


def _request_problem(svc: "CalendarService", settings: RoomSettings, box: MailboxCalendar, event: StoredEvent,
                     copy: StoredEvent | None) -> str | None:
    now = svc.now()
    problem = booking_policy.out_of_policy(settings, event, now)
    if problem is not None or settings.allow_conflicts:
        return problem
    start, end = booking_policy.check_window(settings, event, now)
    wanted = [(i.start, i.end) for i in expand(event, start, end) if not i.is_cancelled]
    if booking_policy.overlapping(wanted, _busy(box, start, end, copy.id if copy else None)):
        return "The room is already booked at that time."
    return None


def _busy(box: MailboxCalendar, start: datetime, end: datetime, own_id: str | None) -> list[tuple[datetime, datetime]]:
    return [(i.start, i.end) for i in box.instances_between(start, end)
            if i.root_id != own_id and not i.is_cancelled and i.show_as != "free"]


def _schedule(event: StoredEvent) -> tuple:
    return event.start, event.end, event.is_all_day, event.recurrence


# ---- copies ------------------------------------------------------------------------------------------

def _upsert_copy(svc: "CalendarService", tenant: Tenant, box: MailboxCalendar, source: StoredEvent,
                 copy: StoredEvent | None, content: ContentRule, response: str, show_as: str | None,
                 check: ConflictCheck | None, remove_cancelled: bool,
                 on_instance: Callable[[datetime, bool], None] | None = None) -> StoredEvent:
    now = svc.now()
    created = copy is None
    if copy is None:
        copy = StoredEvent(
            id=new_outlook_id(), mailbox_id=box.owner_id, ical_uid=source.ical_uid,
            change_key=event_ids.new_change_key(), created=now, last_modified=now, start=source.start,
            end=source.end, is_organizer=False, source=(source.mailbox_id, source.id), response=response,
            response_time=now if response == "accepted" else None,
        )
        box.add(copy)
        source.copies[box.owner_id] = copy.id
    changed = _mirror(copy, source, content(source), show_as)
    if response == "accepted" and copy.response != "accepted":
        copy.response, copy.response_time, changed = "accepted", now, True
    instances_changed = _mirror_instances(svc, tenant, box, copy, source, content, check, remove_cancelled,
                                          on_instance, announce=not created)
    if created:
        svc.announce_created(tenant, box, copy)
    elif changed or instances_changed:
        svc.announce_changed(tenant, box, copy)
    return copy


def _fingerprint(event: StoredEvent) -> tuple:
    return (event.subject, event.body_type, event.body_content, event.sensitivity, event.start, event.end,
            event.start_zone, event.end_zone, event.is_all_day, repr(event.location), repr(event.locations),
            tuple((a["emailAddress"]["address"].lower(), a["type"]) for a in event.attendees),
            event.importance, tuple(event.categories), event.kind, event.recurrence, event.show_as,
            event.is_cancelled, event.response)


def _mirror(copy: StoredEvent, source: StoredEvent, content: dict, show_as: str | None) -> bool:
    """Copies the organizer's item onto the attendee's; True if anything visible changed."""
    before = _fingerprint(copy)
    copy.subject, copy.sensitivity = content["subject"], content["sensitivity"]
    copy.body_type, copy.body_content = content["body_type"], content["body_content"]
    copy.start, copy.end, copy.is_all_day = source.start, source.end, source.is_all_day
    copy.start_zone, copy.end_zone = source.start_zone, source.end_zone
    copy.location = dict(source.location)
    copy.locations = [dict(loc) for loc in source.locations]
    copy.attendees = [{"type": a["type"], "status": {"response": "none", "time": NO_TIME},
                       "emailAddress": dict(a["emailAddress"])} for a in source.attendees]
    copy.organizer = dict(source.organizer)
    copy.importance, copy.categories = source.importance, list(source.categories)
    copy.options = dict(source.options)
    copy.is_cancelled = source.is_cancelled
    if source.kind != "exception":
        copy.kind, copy.recurrence = source.kind, source.recurrence
    if show_as is not None:
        copy.show_as = show_as
    return _fingerprint(copy) != before


def _mirror_instances(svc: "CalendarService", tenant: Tenant, box: MailboxCalendar, copy: StoredEvent,
                      source: StoredEvent, content: ContentRule, check: ConflictCheck | None,
                      remove_cancelled: bool, on_instance: Callable[[datetime, bool], None] | None,
                      announce: bool) -> bool:
    """Mirrors the organizer's cancelled occurrences and exceptions onto the copy's series."""
    if copy.kind != "seriesMaster":
        had = bool(copy.exceptions or copy.cancelled_starts)
        copy.exceptions.clear()
        copy.cancelled_starts.clear()
        copy.declined_starts.clear()
        return had
    now = svc.now()
    changed = False
    wanted = set(source.exceptions) | set(source.cancelled_starts)
    for original in [s for s in copy.exceptions if s not in wanted]:
        del copy.exceptions[original]
        changed = True
    stale = {s for s in copy.cancelled_starts if s not in wanted}
    if stale:
        copy.cancelled_starts -= stale
        changed = True
    for original in [s for s in copy.declined_starts if s not in source.exceptions]:
        del copy.declined_starts[original]

    def removed(original: datetime) -> None:
        copy.exceptions.pop(original, None)
        copy.cancelled_starts.add(original)
        if announce:
            svc.announce_deleted(tenant, box, event_ids.occurrence_id(copy.id, original))

    for original in sorted(source.cancelled_starts):
        if remove_cancelled:
            if original not in copy.cancelled_starts:
                removed(original)
                changed = True
            continue
        exception = exception_for(copy, original, now)
        if not exception.is_cancelled:
            exception.is_cancelled = True
            exception.subject = booking_policy.cancelled_subject(exception.subject)
            changed = True
            if announce:
                svc.announce_changed(tenant, box, exception)
    for original, source_exception in sorted(source.exceptions.items()):
        times = (source_exception.start, source_exception.end)
        if copy.declined_starts.get(original) == times:
            continue  # still declined at this time
        existing = copy.exceptions.get(original)
        moved = existing is None or (existing.start, existing.end) != times
        if moved and check is not None and check(times[0], times[1], copy.id):
            removed(original)
            copy.declined_starts[original] = times
            changed = True
            if on_instance:
                on_instance(original, False)
            continue
        copy.declined_starts.pop(original, None)
        if original in copy.cancelled_starts:
            copy.cancelled_starts.discard(original)
            changed = True
        exception = exception_for(copy, original, now)
        exception_changed = _mirror(exception, source_exception, content(source_exception), None)
        if exception_changed:
            changed = True
            if announce:
                svc.announce_changed(tenant, box, exception)
        if on_instance:
            on_instance(original, True)
    return changed


def _withdraw(svc: "CalendarService", tenant: Tenant, mailbox_id: str, copy_id: str) -> None:
    box = svc.box(tenant, mailbox_id)
    copy = box.events.get(copy_id)
    if copy is None:
        return
    mailbox = svc.mailbox_by_id(tenant, mailbox_id)
    settings = _settings(mailbox) if mailbox is not None and mailbox.user.is_room else None
    if settings is not None and settings.remove_canceled_meetings \
            and (settings.automate_processing or "").lower() == "autoaccept":
        box.remove(copy)
        svc.announce_deleted(tenant, box, copy.id, copy.kind == "seriesMaster")
        return
    if not copy.is_cancelled:
        copy.is_cancelled = True
        copy.subject = booking_policy.cancelled_subject(copy.subject)
        svc.announce_changed(tenant, box, copy)


def deliver_due_answers(svc: "CalendarService", tenant: Tenant) -> None:
    """Makes the rooms' answers whose delay has passed visible (called before each mailbox request)."""
    pending = calendars(tenant).pending_answers
    now = svc.now()
    while pending and pending[0][0] <= now:
        heapq.heappop(pending)[2]()


def _set_status(svc: "CalendarService", tenant: Tenant, box: MailboxCalendar, item: StoredEvent, address: str,
                response: str, master: StoredEvent | None = None) -> None:
    """The attendee's answer on the organizer's item: at once, or after a room's answer delay."""
    room = tenant.find_room(address)
    delay = room.settings.answer_delay_seconds if room is not None else 0
    if delay <= 0:
        _apply_status(svc, tenant, box, item, address, response, master)
        return
    def later() -> None:
        root = master or item
        if box.events.get(root.id) is root:  # not deleted meanwhile
            _apply_status(svc, tenant, box, item, address, response, master)

    store = calendars(tenant)
    store.answers_scheduled += 1
    heapq.heappush(store.pending_answers, (svc.now() + timedelta(seconds=delay), store.answers_scheduled, later))


def _apply_status(svc: "CalendarService", tenant: Tenant, box: MailboxCalendar, item: StoredEvent, address: str,
                  response: str, master: StoredEvent | None = None) -> None:
    for attendee in item.attendees:
        if attendee["emailAddress"]["address"].lower() == address.lower():
            if attendee["status"].get("response") != response:
                attendee["status"] = {"response": response, "time": format_offset(svc.now())}
                svc.announce_changed(tenant, box, item, master)
            return
