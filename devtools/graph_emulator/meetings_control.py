"""Control API for calendars: act as an Outlook user (organizer or attendee) and inspect
mailboxes. JSON, no auth, under `/_control/tenants/<tenant>/mailboxes/<user>` (`<tenant>` id
or domain, `<user>` id, UPN or mail, rooms included). Everything goes through the same calendar
service as Graph requests, so room processing, change notifications and delta all follow.

Times are ISO 8601: with an offset or `Z` they are instants; without, they are wall-clock times
in `timeZone` (default UTC). `recurrence` is Graph's patternedRecurrence object.

| Method | Path (after the mailbox prefix) | Body -> answer |
|---|---|---|
| POST | /meetings | `{"subject", "start", "end", "timeZone"?, "rooms"?: [email], "roomPlacement"?: "location"/"attendee", "attendees"?: [email], "optionalAttendees"?: [email], "body"?, "sensitivity"?, "showAs"?, "isAllDay"?, "location"?, "recurrence"?, "transactionId"?, "categories"?}` -> 201 `{"event": organizer's event, "copies": [{"mailbox", "event"}]}` (after the rooms answered). Rooms are resource attendees; with roomPlacement "location" (default) each is also a `conferenceRoom` location with `uniqueId` = its address and `uniqueIdType` "directory"; with "attendee" the location is free text (the first room's name) |
| PATCH | /meetings/<event_id> | any of the create fields except rooms/attendees (e.g. move: `{"start", "end"}`, rename: `{"subject"}`); an occurrence id edits just that occurrence -> `{"event", "copies"}` |
| POST | /meetings/<event_id>/rooms | `{"email"}` invites one more room -> `{"event", "copies"}` |
| DELETE | /meetings/<event_id>/rooms/<email> | takes the room off the invitation -> `{"event", "copies"}` |
| POST | /meetings/<event_id>/cancel | `{"comment"?}` organizer cancels (meeting or occurrence id) -> 204 |
| POST | /meetings/<event_id>/cancel-occurrence | `{"originalStart"}` (ISO instant) or `{"occurrenceId"}` -> 204 |
| DELETE | /meetings/<event_id> | organizer deletes (sends cancellations) -> 204 |
| POST | /events/<event_id>/respond | `{"action": "accept"/"tentativelyAccept"/"decline", "sendResponse"?: true}` as the attendee -> 204 |
| GET | /events | -> `{"value": [raw event...]}`: every stored item in UTC, cancelled ones included, each with `"_internal": {"source", "copies", "cancelledOccurrences", "declinedOccurrences", "exceptions", "extendedProperties"}` |
| POST | /calendar/delta-tokens/expire | -> `{"expired": n}`; every calendarView delta/skip token of the mailbox then answers 410 |
"""
from __future__ import annotations

from datetime import timezone
from typing import Any

from werkzeug.wrappers import Response

from devtools.graph_emulator import calendar_delta, event_ids
from devtools.graph_emulator.app import Ctx, EmulatorApp, json_response, no_content
from devtools.graph_emulator.calendar_service import CalendarService, Mailbox, calendar_service
from devtools.graph_emulator.calendar_store import calendars
from devtools.graph_emulator.control import PREFIX, bad, body, tenant_or_404
from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.event_model import RenderOptions, StoredEvent, render
from devtools.graph_emulator.state import Tenant
from devtools.graph_emulator.time_zones import format_local, format_offset, parse_local, require_zone

_PASS_THROUGH = ("subject", "sensitivity", "showAs", "importance", "isAllDay", "recurrence", "transactionId",
                 "categories", "singleValueExtendedProperties")
_SIMPLE_FIELDS = set(_PASS_THROUGH) | {"start", "end", "timeZone", "body", "location"}


def _service(ctx: Ctx) -> CalendarService:
    return calendar_service(ctx.world)


def _mailbox(ctx: Ctx) -> tuple[Tenant, Mailbox]:
    tenant = tenant_or_404(ctx)
    with ctx.world.lock:
        return tenant, _service(ctx).resolve_mailbox(tenant, ctx.params["user"])


def _moment(value: Any, zone_name: str) -> dict:
    """A control-API time as Graph's dateTimeTimeZone in `zone_name`."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        raise bad("start and end must be ISO 8601 strings")
    zone = require_zone(zone_name)
    try:
        parsed = parse_local(value, zone)
    except ValueError:
        raise bad(f"'{value}' is not an ISO 8601 date and time") from None
    return {"dateTime": format_local(parsed, zone), "timeZone": zone_name}


def _room_attendee(tenant: Tenant, email: str) -> dict:
    room = tenant.find_room(email)
    if room is None:
        raise GraphError(404, "NotFound", f"no room '{email}' in tenant {tenant.id}")
    return {"type": "resource", "emailAddress": {"address": room.email, "name": room.display_name}}


def graph_body(tenant: Tenant, spec: dict, creating: bool) -> dict:
    """Turns the control API's short form into a Graph event body."""
    allowed = _SIMPLE_FIELDS | ({"rooms", "attendees", "optionalAttendees", "roomPlacement"} if creating else set())
    unknown = set(spec) - allowed
    if unknown:
        raise bad(f"unknown meeting fields {sorted(unknown)}; known: {sorted(allowed)}")
    zone_name = spec.get("timeZone") or "UTC"
    out: dict[str, Any] = {key: spec[key] for key in _PASS_THROUGH if key in spec}
    for key in ("start", "end"):
        if key in spec:
            out[key] = _moment(spec[key], zone_name)
    if "body" in spec:
        out["body"] = spec["body"] if isinstance(spec["body"], dict) else {"contentType": "text", "content": str(spec["body"])}
    if "location" in spec:
        out["location"] = spec["location"] if isinstance(spec["location"], dict) else {"displayName": str(spec["location"])}
    if creating:
        rooms = [_room_attendee(tenant, email) for email in spec.get("rooms") or []]
        people = [{"type": "required", "emailAddress": {"address": a}} for a in spec.get("attendees") or []]
        people += [{"type": "optional", "emailAddress": {"address": a}} for a in spec.get("optionalAttendees") or []]
        out["attendees"] = people + rooms
        if rooms and "location" not in out:
            out.update(_room_locations(spec, [r["emailAddress"] for r in rooms]))
    return out


def _room_locations(spec: dict, rooms: list[dict]) -> dict:
    """Where Outlook puts rooms picked for a meeting (outlook-calendar-online-meetings, "Conf
    Room Baker"): each room a `conferenceRoom` location whose uniqueId is its address, type
    "directory", and no locationEmailAddress. With `"roomPlacement": "attendee"` the rooms stay
    resource attendees only and the location is what the organizer typed (free text, so
    `uniqueIdType` "private"), here the first room's name."""
    placement = spec.get("roomPlacement", "location")
    if placement == "attendee":
        return {"location": {"displayName": rooms[0]["name"]}}
    if placement != "location":
        raise bad("'roomPlacement' must be 'location' or 'attendee'")
    places = [{"displayName": room["name"], "locationType": "conferenceRoom", "uniqueId": room["address"],
               "uniqueIdType": "directory"} for room in rooms]
    if len(places) == 1:
        return {"location": places[0], "locations": places}
    names = "; ".join(place["displayName"] for place in places)
    return {"location": {"displayName": names, "locationType": "default", "uniqueIdType": "unknown"},
            "locations": places}


def _outcome(ctx: Ctx, tenant: Tenant, event: StoredEvent) -> dict:
    """The organizer's item and every invitee copy, as they are now."""
    options = RenderOptions()
    master = event
    if event.series_master_id:
        master = calendars(tenant).mailbox(event.mailbox_id).events.get(event.series_master_id) or event
    copies = []
    for mailbox_id, copy_id in master.copies.items():
        copy = calendars(tenant).mailbox(mailbox_id).events.get(copy_id)
        user = tenant.users.get(mailbox_id)
        if copy is not None:
            copies.append({"mailbox": user.mail if user else mailbox_id, "event": render(copy, options)})
    return {"event": render(event, options), "copies": copies}


def create_meeting(ctx: Ctx) -> Response:
    tenant, mailbox = _mailbox(ctx)
    spec = body(ctx)
    for key in ("start", "end"):
        if key not in spec:
            raise bad(f"'{key}' is required")
    with ctx.world.lock:
        event, _ = _service(ctx).create_event(tenant, mailbox, graph_body(tenant, spec, creating=True))
        return json_response(_outcome(ctx, tenant, event), status=201)


def update_meeting(ctx: Ctx) -> Response:
    tenant, mailbox = _mailbox(ctx)
    changes = graph_body(tenant, body(ctx), creating=False)
    with ctx.world.lock:
        event = _service(ctx).update_event(tenant, mailbox, ctx.params["event_id"], changes)
        return json_response(_outcome(ctx, tenant, event))


def _attendee_patch(ctx: Ctx, tenant: Tenant, mailbox: Mailbox, add: dict | None, remove: str | None) -> Response:
    svc = _service(ctx)
    with ctx.world.lock:
        found = svc.find(svc.box(tenant, mailbox), ctx.params["event_id"])
        attendees = [a for a in found.event.attendees
                     if remove is None or a["emailAddress"]["address"].lower() != remove.lower()]
        if add is not None and all(a["emailAddress"]["address"].lower() != add["emailAddress"]["address"].lower()
                                   for a in attendees):
            attendees.append(add)
        event = svc.update_event(tenant, mailbox, ctx.params["event_id"], {"attendees": attendees})
        return json_response(_outcome(ctx, tenant, event))


def add_room(ctx: Ctx) -> Response:
    tenant, mailbox = _mailbox(ctx)
    email = body(ctx).get("email")
    if not isinstance(email, str):
        raise bad("'email' is required")
    return _attendee_patch(ctx, tenant, mailbox, _room_attendee(tenant, email), None)


def remove_room(ctx: Ctx) -> Response:
    tenant, mailbox = _mailbox(ctx)
    return _attendee_patch(ctx, tenant, mailbox, None, ctx.params["email"])


def cancel_meeting(ctx: Ctx) -> Response:
    tenant, mailbox = _mailbox(ctx)
    body(ctx)
    _service(ctx).cancel_event(tenant, mailbox, ctx.params["event_id"])
    return no_content()


def cancel_occurrence(ctx: Ctx) -> Response:
    tenant, mailbox = _mailbox(ctx)
    data = body(ctx)
    occurrence = data.get("occurrenceId")
    if occurrence is None:
        raw = data.get("originalStart")
        if not isinstance(raw, str):
            raise bad("'originalStart' or 'occurrenceId' is required")
        try:
            moment = parse_local(raw, timezone.utc)
        except ValueError:
            raise bad(f"'{raw}' is not an ISO 8601 instant") from None
        occurrence = event_ids.occurrence_id(ctx.params["event_id"], moment)
    _service(ctx).delete_event(tenant, mailbox, occurrence)
    return no_content()


def delete_meeting(ctx: Ctx) -> Response:
    tenant, mailbox = _mailbox(ctx)
    _service(ctx).delete_event(tenant, mailbox, ctx.params["event_id"])
    return no_content()


def respond(ctx: Ctx) -> Response:
    tenant, mailbox = _mailbox(ctx)
    data = body(ctx)
    action = data.get("action")
    if action not in ("accept", "tentativelyAccept", "decline"):
        raise bad("'action' must be accept, tentativelyAccept or decline")
    _service(ctx).respond(tenant, mailbox, ctx.params["event_id"], action,
                          send_response=bool(data.get("sendResponse", True)))
    return no_content()


def raw_event(event: StoredEvent) -> dict:
    view = render(event, RenderOptions())
    view["_internal"] = {
        "source": {"mailbox": event.source[0], "event": event.source[1]} if event.source else None,
        "copies": dict(event.copies),
        "cancelledOccurrences": sorted(format_offset(s) for s in event.cancelled_starts),
        "declinedOccurrences": sorted(format_offset(s) for s in event.declined_starts),
        "exceptions": [raw_event(e) for _, e in sorted(event.exceptions.items())],
        "extendedProperties": {original: value for original, value in event.extended.values()},
    }
    return view


def list_raw_events(ctx: Ctx) -> Response:
    tenant, mailbox = _mailbox(ctx)
    with ctx.world.lock:
        box = _service(ctx).box(tenant, mailbox)
        return json_response({"value": [raw_event(e) for e in box.events.values()]})


def expire_delta_tokens(ctx: Ctx) -> Response:
    tenant, mailbox = _mailbox(ctx)
    with ctx.world.lock:
        count = calendar_delta.expire_tokens(_service(ctx).box(tenant, mailbox))
    return json_response({"expired": count})


def register(app: EmulatorApp) -> None:
    m = f"{PREFIX}/tenants/<tenant>/mailboxes/<user>"
    routes = [
        (f"{m}/meetings", ["POST"], create_meeting, "control.meetings.create"),
        (f"{m}/meetings/<event_id>", ["PATCH"], update_meeting, "control.meetings.update"),
        (f"{m}/meetings/<event_id>", ["DELETE"], delete_meeting, "control.meetings.delete"),
        (f"{m}/meetings/<event_id>/rooms", ["POST"], add_room, "control.meetings.rooms.add"),
        (f"{m}/meetings/<event_id>/rooms/<email>", ["DELETE"], remove_room, "control.meetings.rooms.remove"),
        (f"{m}/meetings/<event_id>/cancel", ["POST"], cancel_meeting, "control.meetings.cancel"),
        (f"{m}/meetings/<event_id>/cancel-occurrence", ["POST"], cancel_occurrence,
         "control.meetings.cancel-occurrence"),
        (f"{m}/events/<event_id>/respond", ["POST"], respond, "control.events.respond"),
        (f"{m}/events", ["GET"], list_raw_events, "control.events.list"),
        (f"{m}/calendar/delta-tokens/expire", ["POST"], expire_delta_tokens, "control.calendar.delta-expire"),
    ]
    for path, methods, handler, name in routes:
        app.route(path, methods, handler, name=name)
