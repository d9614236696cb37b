"""Calendar events of a mailbox (a person's or a room's).

https://learn.microsoft.com/en-us/graph/api/resources/event
Every call sends `Prefer: outlook.timezone="UTC"` (start/end come back in UTC whatever the
mailbox zone) and `Prefer: IdType="ImmutableId"` (ids that survive moves between folders;
the preference applies per request, so it is on every call,
https://learn.microsoft.com/en-us/graph/outlook-immutable-id). Every call names the mailbox so
the per-mailbox concurrency limit applies.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from graph.delta import DeltaReader, DeltaRound
from graph.errors import NotFound
from graph.paths import odata_string, segment
from graph.timestamps import graph_time

if TYPE_CHECKING:
    from graph.client import GraphClient

OUTLOOK_PREFERENCES = ('outlook.timezone="UTC"', 'IdType="ImmutableId"')


def outlook_headers(*extra_preferences: str) -> dict[str, str]:
    """The Prefer header for Outlook calls (also for building $batch items by hand)."""
    return {"Prefer": ", ".join((*OUTLOOK_PREFERENCES, *extra_preferences))}


@dataclass(frozen=True)
class ExtendedProperty:
    """A named single-value extended property, id form `String {guid} Name <name>`
    (https://learn.microsoft.com/en-us/graph/api/resources/extended-properties-overview).
    The name is case-sensitive; always use this same form to read and write it."""
    property_set: str
    name: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "property_set", str(uuid.UUID(self.property_set)).upper())
        if not self.name or any(c in self.name for c in "'{}"):
            raise ValueError("an extended property name must be non-empty without quotes or braces")

    @property
    def id(self) -> str:
        return f"String {{{self.property_set}}} Name {self.name}"

    def value_of(self, event: Mapping[str, Any]) -> str | None:
        """The property's value in an event read with `$expand` of this property."""
        for prop in event.get("singleValueExtendedProperties") or []:
            if str(prop.get("id", "")).lower() == self.id.lower():
                return prop.get("value")
        return None

    def expand(self) -> str:
        return f"singleValueExtendedProperties($filter=id eq {odata_string(self.id)})"


def _events(mailbox: str) -> str:
    return f"/users/{segment(mailbox)}/events"


def _event(mailbox: str, event_id: str) -> str:
    return f"{_events(mailbox)}/{segment(event_id)}"


def get_event(client: "GraphClient", mailbox: str, event_id: str, *,
              tag: ExtendedProperty | None = None, select: str | None = None) -> dict:
    """Raises NotFound when the event is gone (or never existed in this mailbox)."""
    params = {"$select": select, "$expand": tag.expand() if tag else None}
    return client.get(_event(mailbox, event_id), params=params, headers=outlook_headers(), mailbox=mailbox)


def create_event(client: "GraphClient", mailbox: str, event: Mapping[str, Any], *,
                 transaction_id: str, tag: ExtendedProperty | None = None,
                 tag_value: str | None = None) -> dict:
    """Creates an event in `mailbox`'s calendar (201 + the event).

    `transaction_id` makes the POST idempotent on Graph's side (a second copy returns the first
    event), so it is declared retry-safe and resent after a timeout or a 5xx; `tag`/`tag_value`
    store our own reference on the event."""
    body = dict(event)
    body["transactionId"] = transaction_id
    if tag is not None:
        if tag_value is None:
            raise ValueError("tag_value is required with tag")
        props = [p for p in body.get("singleValueExtendedProperties") or [] if p.get("id") != tag.id]
        body["singleValueExtendedProperties"] = [*props, {"id": tag.id, "value": tag_value}]
    reply = client.post(_events(mailbox), body, headers=outlook_headers(), mailbox=mailbox, retry_safe=True)
    return reply.json()


def update_event(client: "GraphClient", mailbox: str, event_id: str, changes: Mapping[str, Any], *,
                 if_match: str | None = None) -> dict:
    """PATCH with only the changed properties; returns the updated event.

    Without `if_match` (the event's @odata.etag) the PATCH is not resent after a failure that
    may have been applied (OutcomeUnknown): a second copy could overwrite an organizer's edit
    made in between and sends attendees another update. With it, Graph refuses a second copy
    (Conflict), so it is resent; a Conflict after such a retry may mean the first one landed."""
    headers = outlook_headers()
    if if_match:
        headers["If-Match"] = if_match
    reply = client.patch(_event(mailbox, event_id), dict(changes), headers=headers, mailbox=mailbox)
    return reply.json()


def delete_event(client: "GraphClient", mailbox: str, event_id: str) -> bool:
    """True if deleted now, False if it was already gone (404)."""
    try:
        client.delete(_event(mailbox, event_id), headers=outlook_headers(), mailbox=mailbox)
    except NotFound:
        return False
    return True


def decline_event(client: "GraphClient", mailbox: str, event_id: str, *, comment: str | None = None,
                  send_response: bool = True) -> None:
    """The mailbox declines the meeting (202, no body)
    (https://learn.microsoft.com/en-us/graph/api/event-decline).

    Not retry-safe: a second decline sends the organizer a second response, so a failure that
    may have been applied raises OutcomeUnknown (look at the event's responseStatus)."""
    body: dict[str, Any] = {"sendResponse": send_response}
    if comment:
        body["comment"] = comment
    client.post(f"{_event(mailbox, event_id)}/decline", body, headers=outlook_headers(), mailbox=mailbox)


def instances(client: "GraphClient", mailbox: str, series_master_id: str, start: datetime,
              end: datetime, *, page_size: int = 100) -> Iterator[dict]:
    """Occurrences and exceptions of a series within [start, end) (both bounds are required)."""
    params = {"startDateTime": graph_time(start), "endDateTime": graph_time(end), "$top": page_size}
    return client.items(f"{_event(mailbox, series_master_id)}/instances", params=params,
                        headers=outlook_headers(), mailbox=mailbox)


def calendar_view(client: "GraphClient", mailbox: str, start: datetime, end: datetime, *,
                  page_size: int = 100, tag: ExtendedProperty | None = None) -> Iterator[dict]:
    """Every single instance, occurrence and exception overlapping [start, end) (series expanded;
    the default page is only 10, hence $top)."""
    params = {"startDateTime": graph_time(start), "endDateTime": graph_time(end), "$top": page_size,
              "$expand": tag.expand() if tag else None}
    return client.items(f"/users/{segment(mailbox)}/calendarView", params=params,
                        headers=outlook_headers(), mailbox=mailbox)


def calendar_view_delta_round(client: "GraphClient", mailbox: str, *, start: datetime | None = None,
                              end: datetime | None = None, delta_link: str | None = None,
                              page_size: int = 100) -> DeltaRound:
    """A calendarView delta round (https://learn.microsoft.com/en-us/graph/api/event-delta).

    The window is fixed by the first round and carried in the links. Deleted events come as
    {"id", "@removed": {"reason": "deleted"}} — also for events that merely left the window."""
    return calendar_view_delta_reader(client, mailbox, start=start, end=end, delta_link=delta_link,
                                      page_size=page_size).read_round()


def calendar_view_delta_reader(client: "GraphClient", mailbox: str, *, start: datetime | None = None,
                               end: datetime | None = None, delta_link: str | None = None,
                               page_size: int = 100) -> DeltaReader:
    headers = outlook_headers(f"odata.maxpagesize={page_size}")
    if delta_link:
        return DeltaReader(client, delta_link, headers=headers, mailbox=mailbox)
    if start is None or end is None:
        raise ValueError("a first calendarView delta round needs start and end")
    params = {"startDateTime": graph_time(start), "endDateTime": graph_time(end)}
    return DeltaReader(client, f"/users/{segment(mailbox)}/calendarView/delta", params=params,
                       headers=headers, mailbox=mailbox)


def find_by_ical_uid(client: "GraphClient", mailbox: str, ical_uid: str, *,
                     tag: ExtendedProperty | None = None) -> list[dict]:
    """Events (single instances and series masters) of the mailbox with this iCalUId; the same
    meeting has the same iCalUId in the organizer's and the room's calendar."""
    params = {"$filter": f"iCalUId eq {odata_string(ical_uid)}", "$expand": tag.expand() if tag else None}
    return list(client.items(_events(mailbox), params=params, headers=outlook_headers(), mailbox=mailbox))


def find_by_extended_property(client: "GraphClient", mailbox: str, tag: ExtendedProperty,
                              value: str) -> list[dict]:
    """Events whose extended property `tag` equals `value` (returned with the property expanded)."""
    condition = (f"singleValueExtendedProperties/Any(ep: ep/id eq {odata_string(tag.id)} "
                 f"and ep/value eq {odata_string(value)})")
    params = {"$filter": condition, "$expand": tag.expand()}
    return list(client.items(_events(mailbox), params=params, headers=outlook_headers(), mailbox=mailbox))
