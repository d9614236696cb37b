"""Outlook events as the room sync reads them: Graph's JSON checked and reduced to what the
planner decides on.

Graph's answer is validated like user input (a tenant's users write subjects, names and
addresses; a tenant's admin can write more): every field has its type checked, lengths are
bounded, and an event that does not hold together (no id, end before start) is refused with a
reason instead of being half-read. Times are read in UTC because every read sends
`Prefer: outlook.timezone="UTC"`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

MAX_ID = 512
MAX_SUBJECT = 255
_ID_CHARS = re.compile(r"^[A-Za-z0-9+/=_\-.:@]+$")
_FRACTION = re.compile(r"\.(\d+)")


class UnreadableEvent(ValueError):
    """Graph returned something that is not an event we can trust; the message says what."""


def valid_graph_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID and bool(_ID_CHARS.match(value))


@dataclass(frozen=True)
class RoomEvent:
    id: str
    ical_uid: str | None
    change_key: str | None
    type: str  # singleInstance / occurrence / exception / seriesMaster
    series_master_id: str | None
    start: datetime
    end: datetime
    original_start: datetime | None
    subject: str
    organizer_email: str | None
    organizer_name: str | None
    is_cancelled: bool
    private: bool
    created_at: datetime | None
    modified_at: datetime | None
    room_response: str | None  # the room mailbox's own response to the meeting
    show_as: str | None

    @property
    def is_series_master(self) -> bool:
        return self.type == "seriesMaster"

    @property
    def series_id(self) -> str | None:
        return self.series_master_id if self.type in ("occurrence", "exception") else None


def parse_time(value: Any, what: str) -> datetime:
    """Graph's dateTimeTimeZone (UTC, because of the Prefer header) or an ISO instant."""
    if isinstance(value, Mapping):
        zone = value.get("timeZone")
        if zone not in (None, "UTC", "Etc/UTC", "tzone://Microsoft/Utc"):
            raise UnreadableEvent(f"{what} is in time zone {str(zone)[:40]!r}, not UTC as asked")
        value = value.get("dateTime")
    if not isinstance(value, str) or len(value) > 40:
        raise UnreadableEvent(f"{what} is missing or not a time")
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6], value.strip()).replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UnreadableEvent(f"{what} {value[:40]!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _optional_time(value: Any, what: str) -> datetime | None:
    return None if value in (None, "") else parse_time(value, what)


def _text(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise UnreadableEvent("a text field is not a string")
    cleaned = "".join(ch for ch in value if ch >= " " or ch in "\t")
    return cleaned[:limit]


def _email(value: Any) -> str | None:
    text = _text(value, 320)
    if not text or "@" not in text or any(ch.isspace() for ch in text):
        return None
    return text.lower()


def room_response(event: Mapping[str, Any], mailbox: str) -> str | None:
    """The room's own answer: the copy's responseStatus, else its attendee entry."""
    status = event.get("responseStatus")
    if isinstance(status, Mapping) and isinstance(status.get("response"), str):
        return status["response"]
    for attendee in event.get("attendees") or []:
        if isinstance(attendee, Mapping):
            address = _email((attendee.get("emailAddress") or {}).get("address"))
            if address == mailbox.lower():
                return (attendee.get("status") or {}).get("response")
    return None


def read_event(event: Any, mailbox: str) -> RoomEvent:
    """A RoomEvent from Graph's JSON for an item of `mailbox`'s calendar (UnreadableEvent if not one)."""
    if not isinstance(event, Mapping):
        raise UnreadableEvent("the event is not a JSON object")
    event_id = event.get("id")
    if not valid_graph_id(event_id):
        raise UnreadableEvent("the event has no valid id")
    kind = event.get("type") or "singleInstance"
    if kind not in ("singleInstance", "occurrence", "exception", "seriesMaster"):
        raise UnreadableEvent(f"unknown event type {str(kind)[:30]!r}")
    master = event.get("seriesMasterId")
    if master is not None and not valid_graph_id(master):
        raise UnreadableEvent("the event's seriesMasterId is not a valid id")
    start, end = parse_time(event.get("start"), "start"), parse_time(event.get("end"), "end")
    if end < start:
        raise UnreadableEvent("the event ends before it starts")
    ical = event.get("iCalUId")
    if ical is not None and (not isinstance(ical, str) or not 0 < len(ical) <= 2048):
        raise UnreadableEvent("the event's iCalUId is not a string of at most 2048 characters")
    organizer = (event.get("organizer") or {}).get("emailAddress") or {}
    if not isinstance(organizer, Mapping):
        organizer = {}
    sensitivity = event.get("sensitivity")
    change_key = event.get("changeKey")
    return RoomEvent(
        id=event_id, ical_uid=ical, change_key=change_key if isinstance(change_key, str) else None, type=kind,
        series_master_id=master, start=start, end=end,
        original_start=_optional_time(event.get("originalStart"), "originalStart"),
        subject=_text(event.get("subject"), MAX_SUBJECT) or "", organizer_email=_email(organizer.get("address")),
        organizer_name=_text(organizer.get("name"), 255), is_cancelled=event.get("isCancelled") is True,
        private=sensitivity in ("private", "confidential"),
        created_at=_optional_time(event.get("createdDateTime"), "createdDateTime"),
        modified_at=_optional_time(event.get("lastModifiedDateTime"), "lastModifiedDateTime"),
        room_response=room_response(event, mailbox), show_as=_text(event.get("showAs"), 40))
