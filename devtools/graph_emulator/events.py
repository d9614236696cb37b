"""Graph calendar endpoints under `/v1.0/users/{id | userPrincipalName | mail}/` (GRAPH.md §4).

| endpoint name            | method and path (also under `calendar/`, named `calendar.*`)        |
|--------------------------|---------------------------------------------------------------------|
| events.list / .create    | GET, POST `events` (list: single instances and series masters)     |
| events.get/.update/.delete | GET, PATCH, DELETE `events/{id}` (occurrence ids work too)       |
| events.instances         | GET `events/{id}/instances?startDateTime&endDateTime`               |
| events.accept / .tentativelyAccept / .decline / .cancel | POST `events/{id}/<action>` -> 202  |
| calendarView.list        | GET `calendarView?startDateTime&endDateTime` (recurrences expanded) |
| calendarView.delta       | GET `calendarView/delta` (see calendar_delta)                       |
| calendar.get             | GET `calendar` (the primary calendar)                               |

Reads need Calendars.Read (or ReadWrite/ReadBasic), writes Calendars.ReadWrite
(403 ErrorAccessDenied otherwise). `GET events/{seriesMasterId}?$select=cancelledOccurrences`
lists the cancelled occurrences as `OID.{seriesMasterId}.{local date}`; `proposedNewTime` is
taken by decline and tentativelyAccept only, with sendResponse true and an event that allows new
time proposals (400 otherwise). Calendar behaviour lives in `calendar_service`, `booking`
and `calendar_delta`; the control routes acting as Outlook users are in `meetings_control`.
"""
from __future__ import annotations

import uuid
from urllib.parse import quote

from werkzeug.wrappers import Response

from devtools.graph_emulator import calendar_delta, meetings_control
from devtools.graph_emulator.app import Ctx, EmulatorApp, json_response, no_content
from devtools.graph_emulator.calendar_service import CalendarService, Mailbox, calendar_service
from devtools.graph_emulator.calendar_store import expand
from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.event_model import StoredEvent, render, select
from devtools.graph_emulator.event_query import collection, parse_query, render_options, window
from devtools.graph_emulator.identity import CALENDAR_READ, CALENDAR_WRITE, authorize
from devtools.graph_emulator.state import Tenant


def service(ctx: Ctx) -> CalendarService:
    return calendar_service(ctx.world)


def _mailbox(ctx: Ctx, write: bool = False) -> tuple[Tenant, Mailbox]:
    caller = authorize(ctx, CALENDAR_WRITE if write else CALENDAR_READ)
    with ctx.world.lock:
        return caller.tenant, service(ctx).resolve_mailbox(caller.tenant, ctx.params["user"])


def _context_url(ctx: Ctx, suffix: str) -> str:
    return f"https://graph.microsoft.com/v1.0/$metadata#users('{quote(ctx.params['user'], safe='@')}')/{suffix}"


def _event_id(ctx: Ctx) -> str:
    return ctx.params["event_id"]


# ---- collections -------------------------------------------------------------------------------

def list_events(ctx: Ctx) -> Response:
    tenant, mailbox = _mailbox(ctx)
    query = parse_query(ctx)
    with ctx.world.lock:
        events = list(service(ctx).box(tenant, mailbox).events.values())
        body, headers = collection(ctx, events, query, _context_url(ctx, "events"))
    return json_response(body, headers=headers)


def calendar_view(ctx: Ctx) -> Response:
    tenant, mailbox = _mailbox(ctx)
    start, end = window(ctx)
    query = parse_query(ctx)
    with ctx.world.lock:
        instances = service(ctx).box(tenant, mailbox).instances_between(start, end)
        body, headers = collection(ctx, instances, query, _context_url(ctx, "calendarView"))
    return json_response(body, headers=headers)


def list_instances(ctx: Ctx) -> Response:
    tenant, mailbox = _mailbox(ctx)
    start, end = window(ctx)
    query = parse_query(ctx)
    with ctx.world.lock:
        svc = service(ctx)
        found = svc.find(svc.box(tenant, mailbox), _event_id(ctx))
        master = found.event
        instances = []
        if found.master is None and master.kind == "seriesMaster":
            instances = sorted(expand(master, start, end), key=lambda e: (e.start, e.id))
        body, headers = collection(ctx, instances, query, _context_url(ctx, f"events('{master.id}')/instances"))
    return json_response(body, headers=headers)


def calendar_view_delta(ctx: Ctx) -> Response:
    tenant, mailbox = _mailbox(ctx)
    options, headers = render_options(ctx)
    _, size_preference = calendar_delta.page_size(ctx)
    applied = [p for p in (headers.get("Preference-Applied"), "odata.track-changes", size_preference) if p]
    suffix = "calendar/calendarView/delta" if "/calendar/calendarView" in ctx.request.path else "calendarView/delta"
    link_base = f"{ctx.world.base_url}/v1.0/users/{quote(ctx.params['user'], safe='@')}/{suffix}"
    with ctx.world.lock:
        box = service(ctx).box(tenant, mailbox)
        body = calendar_delta.delta_page(ctx, box, link_base, options, ctx.world.next_seq())
    return json_response(body, headers={"Preference-Applied": ", ".join(applied)})


def get_calendar(ctx: Ctx) -> Response:
    tenant, mailbox = _mailbox(ctx)
    calendar_id = "AAMkAG" + uuid.uuid5(uuid.NAMESPACE_URL, f"calendar/{mailbox.id}").hex + "AAA="
    return json_response({
        "@odata.context": _context_url(ctx, "calendar/$entity"),
        "id": calendar_id, "name": "Calendar", "color": "auto", "hexColor": "", "isDefaultCalendar": True,
        "changeKey": "fJKVL07sbkmIfHqjbDnRgQAAAAACOA==", "canShare": True, "canViewPrivateItems": True,
        "canEdit": True, "allowedOnlineMeetingProviders": ["teamsForBusiness"],
        "defaultOnlineMeetingProvider": "teamsForBusiness", "isTallyingResponses": True,
        "isRemovable": False, "owner": {"name": mailbox.name, "address": mailbox.address},
    })


# ---- single items -------------------------------------------------------------------------------

def _respond_with(ctx: Ctx, status: int):
    """Renders the item as stored, before invitees process it (like Graph's own response)."""
    captured: dict = {}
    options, headers = render_options(ctx)

    def after_store(event) -> None:
        captured["body"] = {"@odata.context": _context_url(ctx, "events/$entity"), **render(event, options)}

    def finish() -> Response:
        return json_response(captured["body"], status=status, headers=headers)

    return after_store, finish


def create_event(ctx: Ctx) -> Response:
    tenant, mailbox = _mailbox(ctx, write=True)
    body = ctx.json()
    after_store, finish = _respond_with(ctx, 201)
    event, _ = service(ctx).create_event(tenant, mailbox, body, after_store)
    response = finish()
    # OData answers a create with the new item's address; this one is a URL the emulator serves.
    collection = "calendar/events" if "/calendar/events" in ctx.request.path else "events"
    response.headers["Location"] = (f"{ctx.world.base_url}/v1.0/users/{quote(ctx.params['user'], safe='@')}/"
                                    f"{collection}/{quote(event.id, safe='')}")
    return response


def _cancelled_occurrences(master: StoredEvent) -> list[str]:
    """`OID.{seriesMasterId}.{occurrence start date}`, the date read in the series' zone (event
    resource: occurrenceId / cancelledOccurrences)."""
    zone = master.series_zone
    days = sorted({start.astimezone(zone).date() for start in master.cancelled_starts})
    return [f"OID.{master.id}.{day.isoformat()}" for day in days]


def get_event(ctx: Ctx) -> Response:
    tenant, mailbox = _mailbox(ctx)
    query = parse_query(ctx)
    options, headers = render_options(ctx, query.expand_property_ids)
    with ctx.world.lock:
        svc = service(ctx)
        found = svc.find(svc.box(tenant, mailbox), _event_id(ctx))
        body = select(render(found.event, options), query.select)
        # Graph returns cancelledOccurrences "only on $select in a Get operation which specifies
        # the ID of a series master event" (event resource), never in lists or full reads.
        wanted = {name.lower() for name in query.select or ()}
        if "cancelledoccurrences" in wanted and found.master is None and found.event.kind == "seriesMaster":
            body["cancelledOccurrences"] = _cancelled_occurrences(found.event)
    return json_response({"@odata.context": _context_url(ctx, "events/$entity"), **body}, headers=headers)


def update_event(ctx: Ctx) -> Response:
    tenant, mailbox = _mailbox(ctx, write=True)
    body = ctx.json()
    after_store, finish = _respond_with(ctx, 200)
    service(ctx).update_event(tenant, mailbox, _event_id(ctx), body, after_store,
                              if_match=ctx.request.headers.get("If-Match"))
    return finish()


def delete_event(ctx: Ctx) -> Response:
    tenant, mailbox = _mailbox(ctx, write=True)
    service(ctx).delete_event(tenant, mailbox, _event_id(ctx), if_match=ctx.request.headers.get("If-Match"))
    return no_content()


def _action_body(ctx: Ctx) -> dict:
    if not ctx.request.get_data(cache=True).strip():
        return {}
    body = ctx.json()
    if not isinstance(body, dict):
        raise GraphError(400, "RequestBodyRead", "The request body must be a JSON object.")
    return body


def _respond_action(action: str):
    def handler(ctx: Ctx) -> Response:
        tenant, mailbox = _mailbox(ctx, write=True)
        body = _action_body(ctx)
        send = body.get("sendResponse", True)
        if not isinstance(send, bool):
            raise GraphError(400, "RequestBodyRead", "Cannot convert the literal to the expected type 'Edm.Boolean'.")
        proposing = body.get("proposedNewTime") is not None
        # event-decline / event-tentativelyAccept: 400 when sendResponse is false (or the event's
        # allowNewTimeProposals is false, checked by the service); accept takes no proposedNewTime.
        if proposing and (action == "accept" or not send):
            raise GraphError(400, "ErrorInvalidRequest", "proposedNewTime requires sendResponse to be true.")
        service(ctx).respond(tenant, mailbox, _event_id(ctx), action, send_response=send,
                             proposes_new_time=proposing)
        return no_content(202)
    return handler


def cancel_event(ctx: Ctx) -> Response:
    tenant, mailbox = _mailbox(ctx, write=True)
    _action_body(ctx)
    service(ctx).cancel_event(tenant, mailbox, _event_id(ctx))
    return no_content(202)


# ---- registration -------------------------------------------------------------------------------

def register(app: EmulatorApp) -> None:
    calendar_service(app.world)
    user = "/v1.0/users/<user>"
    for prefix, name in ((f"{user}/events", "events"), (f"{user}/calendar/events", "calendar.events")):
        app.route(prefix, ["GET"], list_events, name=f"{name}.list")
        app.route(prefix, ["POST"], create_event, name=f"{name}.create")
        app.route(f"{prefix}/<event_id>", ["GET"], get_event, name=f"{name}.get")
        app.route(f"{prefix}/<event_id>", ["PATCH"], update_event, name=f"{name}.update")
        app.route(f"{prefix}/<event_id>", ["DELETE"], delete_event, name=f"{name}.delete")
        app.route(f"{prefix}/<event_id>/instances", ["GET"], list_instances, name=f"{name}.instances")
        for action in ("accept", "tentativelyAccept", "decline"):
            app.route(f"{prefix}/<event_id>/{action}", ["POST"], _respond_action(action), name=f"{name}.{action}")
        app.route(f"{prefix}/<event_id>/cancel", ["POST"], cancel_event, name=f"{name}.cancel")
    for prefix, name in ((f"{user}/calendarView", "calendarView"), (f"{user}/calendar/calendarView", "calendar.calendarView")):
        app.route(prefix, ["GET"], calendar_view, name=f"{name}.list")
        for spelling in ("delta", "delta()"):  # Graph accepts both; the SDKs send `delta()`
            app.route(f"{prefix}/{spelling}", ["GET"], calendar_view_delta, name=f"{name}.delta")
    app.route(f"{user}/calendar", ["GET"], get_calendar, name="calendar.get")
    meetings_control.register(app)
