"""One calendar item as the emulator stores it, and its Graph JSON in both directions.

Times are stored in UTC with the zone the client wrote them in (`originalStartTimeZone`).
Responses show `start`/`end` in UTC unless `Prefer: outlook.timezone` names another zone.
Writable properties are checked like Graph does: an unknown property is a 400 `RequestBodyRead`.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from typing import Any, Callable
from urllib.parse import quote
from zoneinfo import ZoneInfo

from devtools.graph_emulator import event_ids
from devtools.graph_emulator.clock import graph_datetime
from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.recurrence import Recurrence, RecurrenceError
from devtools.graph_emulator.time_zones import format_local, format_offset, parse_local, require_zone

NO_TIME = "0001-01-01T00:00:00Z"
MAX_ATTENDEES = 500
SHOW_AS = ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")
SENSITIVITY = ("normal", "personal", "private", "confidential")
IMPORTANCE = ("low", "normal", "high")
ATTENDEE_TYPES = ("required", "optional", "resource")
RESPONSES = ("none", "organizer", "tentativelyAccepted", "accepted", "declined", "notResponded")

# Simple writable properties kept as given, with their defaults on a new event.
OPTION_DEFAULTS: dict[str, Any] = {
    "isReminderOn": True, "reminderMinutesBeforeStart": 15, "isOnlineMeeting": False,
    "onlineMeetingProvider": "unknown", "allowNewTimeProposals": True, "hideAttendees": False,
    "responseRequested": True, "isDraft": False,
}
WRITABLE = {
    "subject", "body", "start", "end", "isAllDay", "attendees", "location", "locations", "recurrence",
    "showAs", "sensitivity", "importance", "categories", "transactionId", "singleValueExtendedProperties",
    "organizer", *OPTION_DEFAULTS,
}
# Read-only properties a client may echo back (e.g. PATCH with a fetched object); ignored.
IGNORED = {
    "@odata.type", "@odata.etag", "@odata.context", "id", "changeKey", "createdDateTime",
    "lastModifiedDateTime", "iCalUId", "type", "seriesMasterId", "webLink", "bodyPreview",
    "isOrganizer", "responseStatus", "hasAttachments", "onlineMeetingUrl", "onlineMeeting",
    "originalStart", "originalStartTimeZone", "originalEndTimeZone", "isCancelled", "occurrenceId",
    "cancelledOccurrences", "exceptionOccurrences", "multiValueExtendedProperties", "attachments",
    "extensions", "calendar", "instances",
}


@dataclass
class StoredEvent:
    id: str
    mailbox_id: str
    ical_uid: str
    change_key: str
    created: datetime
    last_modified: datetime
    start: datetime
    end: datetime
    start_zone: str = "UTC"
    end_zone: str = "UTC"
    kind: str = "singleInstance"  # singleInstance | seriesMaster | exception | occurrence (views only)
    subject: str = ""
    body_type: str = "html"
    body_content: str = ""
    is_all_day: bool = False
    organizer: dict = field(default_factory=dict)  # {"name", "address"}
    attendees: list[dict] = field(default_factory=list)
    location: dict = field(default_factory=dict)
    locations: list[dict] = field(default_factory=list)
    recurrence: Recurrence | None = None
    series_master_id: str | None = None
    original_start: datetime | None = None
    is_cancelled: bool = False
    show_as: str = "busy"
    sensitivity: str = "normal"
    importance: str = "normal"
    response: str = "organizer"
    response_time: datetime | None = None
    transaction_id: str | None = None
    is_organizer: bool = True
    categories: list[str] = field(default_factory=list)
    # Normalised property id -> (id as the client wrote it, value).
    extended: dict[str, tuple[str, str]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=lambda: dict(OPTION_DEFAULTS))
    # Series masters: removed occurrences and modified ones (exceptions), keyed by original start.
    cancelled_starts: set[datetime] = field(default_factory=set)
    exceptions: dict[datetime, "StoredEvent"] = field(default_factory=dict)
    # Attendee copies: (organizer mailbox id, organizer event id).
    source: tuple[str, str] | None = None
    # Organizer events: attendee mailbox id -> id of that mailbox's copy.
    copies: dict[str, str] = field(default_factory=dict)
    # Room copies: occurrences the room declined -> the (start, end) it declined.
    declined_starts: dict[datetime, tuple[datetime, datetime]] = field(default_factory=dict)

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def series_zone_name(self) -> str:
        if self.recurrence and self.recurrence.range.time_zone:
            return self.recurrence.range.time_zone
        return self.start_zone

    @property
    def series_zone(self) -> ZoneInfo:
        return require_zone(self.series_zone_name)

    @property
    def wall_time(self) -> time:
        return self.start.astimezone(self.series_zone).time()

    @property
    def root_id(self) -> str:
        """The stored item this instance belongs to (its master for occurrences/exceptions)."""
        return self.series_master_id or self.id

    def stamp(self, now: datetime) -> None:
        """Every change gets a new changeKey and lastModifiedDateTime."""
        self.change_key = event_ids.new_change_key()
        self.last_modified = now


def occurrence_view(master: StoredEvent, original_start: datetime) -> StoredEvent:
    """A read-only occurrence of a series, derived from its master."""
    local_day = original_start.astimezone(master.series_zone).date()
    return replace(
        master, id=event_ids.occurrence_id(master.id, original_start),
        ical_uid=event_ids.occurrence_ical_uid(master.ical_uid, local_day),
        start=original_start, end=original_start + master.duration, kind="occurrence",
        recurrence=None, series_master_id=master.id, original_start=original_start,
        cancelled_starts=set(), exceptions={}, copies={}, declined_starts={}, transaction_id=None,
    )


def new_exception(master: StoredEvent, original_start: datetime, now: datetime) -> StoredEvent:
    """A modified occurrence: starts as the occurrence, keeps its id, gets its own changeKey."""
    view = occurrence_view(master, original_start)
    view.kind = "exception"
    view.attendees = [dict(a, status=dict(a.get("status") or {})) for a in master.attendees]
    view.extended = dict(master.extended)
    view.options = dict(master.options)
    view.categories = list(master.categories)
    view.stamp(now)
    return view


# ---- reading request bodies ------------------------------------------------------------------------

def _body_error(message: str) -> GraphError:
    return GraphError(400, "RequestBodyRead", message)


def _invalid(message: str) -> GraphError:
    return GraphError(400, "ErrorInvalidRequest", message)


def _enum(value: Any, allowed: tuple[str, ...], type_name: str) -> str:
    for option in allowed:
        if isinstance(value, str) and value.lower() == option.lower():
            return option
    raise _body_error(f"Cannot convert the literal '{value}' to the expected type 'microsoft.graph.{type_name}'.")


def _string(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _body_error(f"Cannot convert a value of type '{type(value).__name__}' to 'Edm.String' for '{name}'.")
    return value


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise _body_error(f"Cannot convert the literal '{value}' to the expected type 'Edm.Boolean' for '{name}'.")
    return value


def _date_time_zone(value: Any, name: str) -> tuple[datetime, str]:
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise _body_error(f"'{name}' must be a dateTimeTimeZone object with a dateTime.")
    zone_name = value.get("timeZone") or "UTC"
    zone = require_zone(zone_name)
    try:
        return parse_local(value["dateTime"], zone), zone_name
    except ValueError:
        raise _body_error(f"Cannot convert the literal '{value['dateTime']}' to the expected type 'Edm.DateTimeOffset'.") from None


def normalise_property_id(prop_id: Any) -> str:
    """Key for an extended property id: type, GUID and keywords are case-insensitive, the Name
    part is case-sensitive (GRAPH.md 4.5)."""
    if not isinstance(prop_id, str) or not prop_id.strip():
        raise GraphError(400, "ErrorInvalidProperty", "The extended property id is missing or empty.")
    parts = prop_id.strip().split(" ")
    parts = [p for p in parts if p]
    if len(parts) == 2 and parts[1].lower().startswith("0x"):
        return f"{parts[0].lower()} {parts[1].lower()}"
    if len(parts) >= 4 and parts[1].startswith("{") and parts[2].lower() in ("name", "id"):
        keyword = parts[2].lower()
        rest = " ".join(parts[3:]) if keyword == "name" else parts[3].lower()
        return f"{parts[0].lower()} {parts[1].upper()} {keyword} {rest}"
    raise GraphError(400, "ErrorInvalidProperty", f"The extended property id '{prop_id}' is not valid.")


def _location(value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _body_error("'location' must be an object.")
    kept = {k: value[k] for k in ("displayName", "locationEmailAddress", "locationUri", "locationType",
                                 "uniqueId", "uniqueIdType", "address", "coordinates") if k in value}
    kept["displayName"] = _string(kept.get("displayName"), "location.displayName")
    return kept


def _attendees(value: Any, previous: list[dict], name_of: Callable[[str], str | None]) -> list[dict]:
    if not isinstance(value, list):
        raise _body_error("'attendees' must be a collection.")
    if len(value) > MAX_ATTENDEES:
        raise _invalid(f"An event can have at most {MAX_ATTENDEES} attendees.")
    known = {(a["emailAddress"]["address"] or "").lower(): a for a in previous}
    result: dict[str, dict] = {}
    for item in value:
        email = (item or {}).get("emailAddress") if isinstance(item, dict) else None
        address = email.get("address") if isinstance(email, dict) else None
        if not isinstance(address, str) or "@" not in address:
            raise GraphError(400, "ErrorInvalidRecipients", "At least one recipient isn't valid., A recipient must have an email address.")
        kind = _enum(item.get("type") or "required", ATTENDEE_TYPES, "attendeeType")
        before = known.get(address.lower())
        status = dict(before["status"]) if before else {"response": "none", "time": NO_TIME}
        display = email.get("name") or (before or {}).get("emailAddress", {}).get("name") or name_of(address) or address
        result[address.lower()] = {"type": kind, "status": status,
                                   "emailAddress": {"name": display, "address": address}}
    return list(result.values())


def check_properties(body: Any) -> dict:
    if not isinstance(body, dict):
        raise _body_error("The request body must be a JSON object describing an event.")
    for key in body:
        if key not in WRITABLE and key not in IGNORED and not key.startswith("@"):
            raise _body_error(f"The property '{key}' does not exist on type 'microsoft.graph.event'. Make sure to "
                              "only use property names that are defined by the type or mark the type as open type.")
    return body


def apply_properties(event: StoredEvent, body: dict, name_of: Callable[[str], str | None],
                     creating: bool) -> set[str]:
    """Writes the request's properties onto `event` (the body already passed `check_properties`);
    returns the names of what changed in a way that matters to scheduling ("time", "recurrence",
    "attendees", "content")."""
    changed: set[str] = set()
    if "subject" in body:
        event.subject = _string(body["subject"], "subject")
        changed.add("content")
    if "body" in body:
        value = body["body"] or {}
        if not isinstance(value, dict):
            raise _body_error("'body' must be an itemBody object.")
        event.body_type = _enum(value.get("contentType") or "text", ("text", "html"), "bodyType")
        event.body_content = _string(value.get("content"), "body.content")
        changed.add("content")
    for key, attr, allowed, type_name in (("showAs", "show_as", SHOW_AS, "freeBusyStatus"),
                                          ("sensitivity", "sensitivity", SENSITIVITY, "sensitivity"),
                                          ("importance", "importance", IMPORTANCE, "importance")):
        if key in body:
            setattr(event, attr, _enum(body[key], allowed, type_name))
            changed.add("content")
    if "categories" in body:
        if not isinstance(body["categories"], list) or not all(isinstance(c, str) for c in body["categories"]):
            raise _body_error("'categories' must be a collection of strings.")
        event.categories = list(body["categories"])
    for key in OPTION_DEFAULTS:
        if key in body and body[key] is not None:
            event.options[key] = body[key]
    if "transactionId" in body:
        value = body["transactionId"]
        if not creating and value != event.transaction_id:
            raise _invalid("The transactionId of an event can't be changed.")
        event.transaction_id = _string(value, "transactionId") or None
    if "location" in body or "locations" in body:
        _apply_locations(event, body)
        changed.add("content")
    if "attendees" in body:
        event.attendees = _attendees(body["attendees"] or [], event.attendees, name_of)
        changed.add("attendees")
    if "singleValueExtendedProperties" in body:
        _apply_extended(event, body["singleValueExtendedProperties"])
    times_changed = _apply_times(event, body, creating)
    if times_changed:
        changed.add("time")
    if "recurrence" in body:
        changed.add("recurrence")
    return changed


def _apply_locations(event: StoredEvent, body: dict) -> None:
    if "locations" in body:
        items = body["locations"] or []
        if not isinstance(items, list):
            raise _body_error("'locations' must be a collection.")
        event.locations = [_location(item) for item in items]
        if "location" not in body:
            names = [loc["displayName"] for loc in event.locations if loc.get("displayName")]
            event.location = dict(event.locations[0]) if len(event.locations) == 1 else (
                {"displayName": "; ".join(names)} if names else {})
    if "location" in body:
        event.location = _location(body["location"])
        if "locations" not in body:
            # Documented: setting location replaces locations.
            event.locations = [dict(event.location)] if event.location.get("displayName") else []


def _apply_extended(event: StoredEvent, items: Any) -> None:
    if not isinstance(items, list):
        raise _body_error("'singleValueExtendedProperties' must be a collection.")
    for item in items:
        if not isinstance(item, dict):
            raise _body_error("An extended property must be an object with id and value.")
        key = normalise_property_id(item.get("id"))
        value = item.get("value")
        if value is None:
            event.extended.pop(key, None)
            continue
        if not isinstance(value, str):
            raise _body_error("The value of a single-value extended property must be a string.")
        event.extended[key] = (item["id"], value)


def _apply_times(event: StoredEvent, body: dict, creating: bool) -> bool:
    before = (event.start, event.end, event.is_all_day, event.start_zone, event.end_zone)
    if creating and ("start" not in body or "end" not in body):
        raise _invalid("Your request can't be completed. The start and end of the event are required.")
    if "start" in body:
        event.start, event.start_zone = _date_time_zone(body["start"], "start")
    if "end" in body:
        event.end, event.end_zone = _date_time_zone(body["end"], "end")
    if "isAllDay" in body:
        event.is_all_day = _bool(body["isAllDay"], "isAllDay")
    if event.end < event.start:
        raise _invalid("Your request can't be completed. The end of the event is before its start.")
    if event.is_all_day:
        for moment, zone_name in ((event.start, event.start_zone), (event.end, event.end_zone)):
            local = moment.astimezone(require_zone(zone_name))
            if local.time() != time(0):
                raise _invalid("Your request can't be completed. An all-day event must start and end at midnight.")
        if event.end == event.start:
            raise _invalid("Your request can't be completed. An all-day event must last at least one day.")
    return before != (event.start, event.end, event.is_all_day, event.start_zone, event.end_zone)


def parse_recurrence(value: Any) -> Recurrence | None:
    if value is None:
        return None
    try:
        recurrence = Recurrence.from_graph(value)
        if recurrence.range.time_zone:
            require_zone(recurrence.range.time_zone)
        return recurrence
    except RecurrenceError as exc:
        raise GraphError(400, "ErrorInvalidRequest", f"Your request can't be completed. {exc}.") from None


# ---- rendering ---------------------------------------------------------------------------------------

@dataclass
class RenderOptions:
    """What the request asked for: response zone, body type, extended properties to expand."""
    zone_name: str = "UTC"
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    body_type: str | None = None  # None keeps Graph's default (html)
    expand_property_ids: list[str] | None = None


_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
_HEAD = re.compile(r"<head.*?</head>", re.S | re.I)


def html_to_text(content: str) -> str:
    text = _HEAD.sub("", content)
    text = re.sub(r"<br\s*/?>|</p>|</div>", "\n", text, flags=re.I)
    return html.unescape(_TAG.sub("", text)).strip()


def text_to_html(content: str) -> str:
    escaped = html.escape(content).replace("\r\n", "\n").replace("\n", "<br>\r\n")
    return ('<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n'
            f"</head>\r\n<body>\r\n{escaped}\r\n</body>\r\n</html>\r\n") if content else ""


def body_preview(event: StoredEvent) -> str:
    text = html_to_text(event.body_content) if event.body_type == "html" else event.body_content
    return _SPACE.sub(" ", text).strip()[:255]


def _render_body(event: StoredEvent, wanted: str | None) -> dict:
    target = wanted or "html"
    if target == event.body_type:
        return {"contentType": target, "content": event.body_content}
    if target == "text":
        return {"contentType": "text", "content": html_to_text(event.body_content)}
    return {"contentType": "html", "content": text_to_html(event.body_content)}


def _render_location(location: dict) -> dict:
    if not location.get("displayName") and not location.get("locationEmailAddress"):
        return {"displayName": location.get("displayName", ""), "locationType": "default",
                "uniqueIdType": "unknown", "address": {}, "coordinates": {}}
    rendered = {"displayName": location.get("displayName", ""),
                "locationType": location.get("locationType") or "default",
                "uniqueId": location.get("uniqueId") or location.get("displayName", ""),
                "uniqueIdType": location.get("uniqueIdType") or "private"}
    for key in ("locationEmailAddress", "locationUri"):
        if location.get(key):
            rendered[key] = location[key]
    rendered["address"] = location.get("address") or {}
    rendered["coordinates"] = location.get("coordinates") or {}
    return rendered


def web_link(event_id: str) -> str:
    return f"https://outlook.office365.com/owa/?itemid={quote(event_id, safe='')}&exvsurl=1&path=/calendar/item"


def render(event: StoredEvent, options: RenderOptions) -> dict:
    """The full Graph representation of an event, occurrence or exception."""
    zone_name, zone = options.zone_name, options.zone
    out: dict[str, Any] = {
        "@odata.etag": event_ids.etag(event.change_key),
        "id": event.id,
        "createdDateTime": graph_datetime(event.created),
        "lastModifiedDateTime": graph_datetime(event.last_modified),
        "changeKey": event.change_key,
        "categories": list(event.categories),
    }
    if event.transaction_id:
        out["transactionId"] = event.transaction_id
    out.update({
        "originalStartTimeZone": event.start_zone,
        "originalEndTimeZone": event.end_zone,
        "iCalUId": event.ical_uid,
        "reminderMinutesBeforeStart": event.options.get("reminderMinutesBeforeStart", 15),
        "isReminderOn": event.options.get("isReminderOn", True),
        "hasAttachments": False,
        "subject": event.subject,
        "bodyPreview": body_preview(event),
        "importance": event.importance,
        "sensitivity": event.sensitivity,
        "isAllDay": event.is_all_day,
        "isCancelled": event.is_cancelled,
        "isOrganizer": event.is_organizer,
        "responseRequested": event.options.get("responseRequested", True),
        "seriesMasterId": event.series_master_id,
        "showAs": event.show_as,
        "type": event.kind,
        "webLink": web_link(event.id),
        "onlineMeetingUrl": None,
        "isOnlineMeeting": event.options.get("isOnlineMeeting", False),
        "onlineMeetingProvider": event.options.get("onlineMeetingProvider", "unknown"),
        "allowNewTimeProposals": event.options.get("allowNewTimeProposals", True),
        "isDraft": event.options.get("isDraft", False),
        "hideAttendees": event.options.get("hideAttendees", False),
    })
    if event.original_start is not None:
        out["originalStart"] = format_offset(event.original_start)
    out["responseStatus"] = {"response": event.response,
                             "time": format_offset(event.response_time) if event.response_time else NO_TIME}
    out["body"] = _render_body(event, options.body_type)
    out["start"] = {"dateTime": format_local(event.start, zone), "timeZone": zone_name}
    out["end"] = {"dateTime": format_local(event.end, zone), "timeZone": zone_name}
    out["location"] = _render_location(event.location)
    out["locations"] = [_render_location(loc) for loc in event.locations]
    out["recurrence"] = event.recurrence.to_graph() if event.recurrence else None
    out["attendees"] = [{"type": a["type"], "status": dict(a["status"]), "emailAddress": dict(a["emailAddress"])}
                        for a in event.attendees]
    out["organizer"] = {"emailAddress": dict(event.organizer)}
    out["onlineMeeting"] = None
    if options.expand_property_ids is not None:
        wanted = set(options.expand_property_ids)
        found = [{"id": original, "value": value} for key, (original, value) in event.extended.items()
                 if key in wanted]
        if found:
            out["singleValueExtendedProperties"] = found
    return out


def select(rendered: dict, names: list[str] | None) -> dict:
    """`$select`: always keeps `@odata.etag` and `id`; names match case-insensitively."""
    if not names:
        return rendered
    lookup = {key.lower(): key for key in rendered}
    kept = {"@odata.etag": rendered["@odata.etag"], "id": rendered["id"]}
    for name in names:
        key = lookup.get(name.lower())
        if key is not None:
            kept[key] = rendered[key]
    if "singleValueExtendedProperties" in rendered:
        kept["singleValueExtendedProperties"] = rendered["singleValueExtendedProperties"]
    return kept


SELECTABLE = {
    "categories", "changekey", "createddatetime", "lastmodifieddatetime", "transactionid",
    "originalstarttimezone", "originalendtimezone", "icaluid", "reminderminutesbeforestart",
    "isreminderon", "hasattachments", "subject", "bodypreview", "importance", "sensitivity", "isallday",
    "iscancelled", "isorganizer", "responserequested", "seriesmasterid", "showas", "type", "weblink",
    "onlinemeetingurl", "isonlinemeeting", "onlinemeetingprovider", "allownewtimeproposals", "isdraft",
    "hideattendees", "originalstart", "responsestatus", "body", "start", "end", "location", "locations",
    "recurrence", "attendees", "organizer", "onlinemeeting", "id", "occurrenceid",
    "cancelledoccurrences", "exceptionoccurrences",
}
