"""The Resource Booking Assistant's rules for one room (Set-CalendarProcessing; GRAPH.md §4.7).

With `AutomateProcessing AutoAccept` a request is declined when it is:
- longer than `MaximumDurationInMinutes` (0 = unlimited);
- recurring while `AllowRecurringMeetings` is false;
- starting after the booking window (`BookingWindowInDays` from now; 0 = today only), or, when
  `EnforceSchedulingHorizon` is true (default), recurring past the window (an endless series
  always is);
- overlapping the room's busy items while `AllowConflicts` is false (checked for every instance
  inside the window).
An accepted request is copied into the room's calendar with the AutoAccept content rules:
`AddOrganizerToSubject` puts the organizer's name in the subject (replacing it when
`DeleteSubject` is also on; prefixing it otherwise [unverified order]), `DeleteSubject` alone
empties it, `DeleteComments` removes the body, `RemovePrivateProperty` clears the private flag.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from devtools.graph_emulator.event_model import StoredEvent
from devtools.graph_emulator.recurrence import last_occurrence_date, localize
from devtools.graph_emulator.state import RoomSettings

CANCELED_PREFIX = "Canceled: "


def horizon(settings: RoomSettings, now: datetime) -> datetime:
    days = settings.booking_window_in_days
    if days <= 0:
        return datetime.combine(now.date() + timedelta(days=1), time(0), tzinfo=timezone.utc)
    return now + timedelta(days=days)


def out_of_policy(settings: RoomSettings, request: StoredEvent, now: datetime) -> str | None:
    """Why the request breaks the room's policy (conflicts aside), or None."""
    limit = settings.maximum_duration_in_minutes
    if limit and request.duration > timedelta(minutes=limit):
        return f"The meeting is longer than the {limit} minutes this room allows."
    recurring = request.kind == "seriesMaster" and request.recurrence is not None
    if recurring and not settings.allow_recurring_meetings:
        return "This room doesn't accept recurring meetings."
    end_of_window = horizon(settings, now)
    if request.start > end_of_window:
        return "The meeting is outside the room's booking window."
    if recurring and settings.enforce_scheduling_horizon:
        last = last_occurrence_date(request.recurrence)
        if last is None or localize(last, request.wall_time, request.series_zone) > end_of_window:
            return "The recurring meeting extends past the room's booking window."
    return None


def check_window(settings: RoomSettings, request: StoredEvent, now: datetime) -> tuple[datetime, datetime]:
    """The span whose instances are checked for conflicts."""
    if request.kind == "seriesMaster":
        return request.start, max(horizon(settings, now), request.start + request.duration)
    return request.start, request.end


def overlapping(instances: list[tuple[datetime, datetime]], busy: list[tuple[datetime, datetime]]) -> bool:
    for start, end in instances:
        for busy_start, busy_end in busy:
            if start < busy_end and busy_start < end:
                return True
    return False


def copy_subject(settings: RoomSettings, subject: str, organizer_name: str) -> str:
    if settings.add_organizer_to_subject:
        return organizer_name if settings.delete_subject or not subject else f"{organizer_name} {subject}"
    return "" if settings.delete_subject else subject


def copy_content(settings: RoomSettings, source: StoredEvent) -> dict:
    """Subject, body and sensitivity of the room's copy under AutoAccept."""
    return {
        "subject": copy_subject(settings, source.subject, source.organizer.get("name") or ""),
        "body_type": source.body_type if not settings.delete_comments else "html",
        "body_content": "" if settings.delete_comments else source.body_content,
        "sensitivity": "normal" if settings.remove_private_property else source.sensitivity,
    }


def plain_content(source: StoredEvent) -> dict:
    """People (and rooms that don't auto-accept) see the organizer's content unchanged."""
    return {"subject": source.subject, "body_type": source.body_type, "body_content": source.body_content,
            "sensitivity": source.sensitivity}


def cancelled_subject(subject: str) -> str:
    return subject if subject.startswith(CANCELED_PREFIX) else CANCELED_PREFIX + subject
