"""Per-mailbox calendars of one tenant (`tenant.area("calendars")`), instance expansion, and the
change feed every event change goes through.

Every change to any item in any mailbox publishes a `Change` on the world's bus (subscriptions
deliver it) and is remembered with a sequence number (calendar delta uses it). Callers hold
`World.lock`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Iterator

from devtools.graph_emulator import event_ids
from devtools.graph_emulator.event_model import StoredEvent, new_exception, occurrence_view
from devtools.graph_emulator.recurrence import starts_overlapping
from devtools.graph_emulator.state import Change, Tenant, World

AREA = "calendars"
_SECOND = timedelta(seconds=1)


@dataclass
class MailboxCalendar:
    """The primary calendar of one mailbox."""
    owner_id: str
    # Single instances and series masters by id (exceptions live inside their master).
    events: dict[str, StoredEvent] = field(default_factory=dict)
    transaction_ids: dict[str, str] = field(default_factory=dict)
    # Item id -> (sequence of its last change, was it a series master).
    touched: dict[str, tuple[int, bool]] = field(default_factory=dict)
    # Calendar delta rounds (see calendar_delta), keyed by token.
    delta_rounds: dict[str, object] = field(default_factory=dict)

    def add(self, event: StoredEvent) -> None:
        self.events[event.id] = event
        if event.transaction_id:
            self.transaction_ids[event.transaction_id] = event.id

    def remove(self, event: StoredEvent) -> None:
        self.events.pop(event.id, None)
        if event.transaction_id and self.transaction_ids.get(event.transaction_id) == event.id:
            del self.transaction_ids[event.transaction_id]

    def find(self, item_id: str) -> "Found | None":
        """A stored item, or an occurrence/exception addressed by its derived id."""
        event = self.events.get(item_id)
        if event is not None:
            return Found(event, None, None)
        parsed = event_ids.parse_occurrence_id(item_id)
        if parsed is None:
            return None
        master_id, original_start = parsed
        master = self.events.get(master_id)
        if master is None or master.kind != "seriesMaster" or original_start in master.cancelled_starts:
            return None
        exception = master.exceptions.get(original_start)
        if exception is not None:
            return Found(exception, master, original_start)
        if not is_occurrence_start(master, original_start):
            return None
        return Found(occurrence_view(master, original_start), master, original_start)

    def instances_between(self, start: datetime, end: datetime) -> list[StoredEvent]:
        """What calendarView shows: single instances, occurrences and exceptions overlapping the
        window (series masters themselves never), ordered by start."""
        found: list[StoredEvent] = []
        for event in self.events.values():
            found.extend(expand(event, start, end))
        found.sort(key=lambda e: (e.start, e.end, e.id))
        return found


@dataclass
class Found:
    """An addressed item: `event` is what the id names; `master`/`original_start` are set for
    occurrences and exceptions."""
    event: StoredEvent
    master: StoredEvent | None
    original_start: datetime | None


class CalendarStore:
    def __init__(self) -> None:
        self.mailboxes: dict[str, MailboxCalendar] = {}
        # Rooms' answers not yet visible to the organizer: (due, order, apply), earliest first.
        self.pending_answers: list[tuple[datetime, int, Callable[[], None]]] = []
        self.answers_scheduled = 0

    def mailbox(self, owner_id: str) -> MailboxCalendar:
        if owner_id not in self.mailboxes:
            self.mailboxes[owner_id] = MailboxCalendar(owner_id)
        return self.mailboxes[owner_id]


def calendars(tenant: Tenant) -> CalendarStore:
    return tenant.area(AREA, CalendarStore)


def overlaps(event: StoredEvent, start: datetime, end: datetime) -> bool:
    if event.start == event.end:
        return start <= event.start < end
    return event.start < end and event.end > start


def is_occurrence_start(master: StoredEvent, original_start: datetime) -> bool:
    if master.recurrence is None:
        return False
    hits = starts_overlapping(master.recurrence, master.wall_time, master.series_zone, master.duration,
                              original_start, original_start + master.duration + _SECOND)
    return original_start in hits


def expand(event: StoredEvent, start: datetime, end: datetime) -> Iterator[StoredEvent]:
    """The instances of one stored item that overlap [start, end)."""
    if event.kind != "seriesMaster" or event.recurrence is None:
        if overlaps(event, start, end):
            yield event
        return
    for original in starts_overlapping(event.recurrence, event.wall_time, event.series_zone, event.duration,
                                       start, end):
        if original in event.cancelled_starts or original in event.exceptions:
            continue
        yield occurrence_view(event, original)
    for exception in event.exceptions.values():
        if overlaps(exception, start, end):
            yield exception


def exception_for(master: StoredEvent, original_start: datetime, now: datetime) -> StoredEvent:
    """The exception at `original_start`, created from the occurrence if there is none yet."""
    exception = master.exceptions.get(original_start)
    if exception is None:
        exception = new_exception(master, original_start, now)
        master.exceptions[original_start] = exception
    return exception


def publish(world: World, tenant_id: str, box: MailboxCalendar, item_id: str, change_type: str,
            change_key: str | None, is_master: bool = False) -> None:
    """Records the change for delta and announces it on the bus (Graph's notification shape)."""
    box.touched[item_id] = (world.next_seq(), is_master)
    world.bus.publish(Change(
        tenant_id=tenant_id, kind="events", change_type=change_type, user_id=box.owner_id, item_id=item_id,
        resource=f"Users/{box.owner_id}/Events/{item_id}",
        etag=event_ids.etag(change_key) if change_key else None, odata_type="#Microsoft.Graph.Event"))
