"""Rooms as Graph places: `GET /places/microsoft.graph.room`, its `/$count`, the room lists
(`/places/microsoft.graph.roomlist`, `/places/{list email}/microsoft.graph.roomlist/rooms`) and
`GET /places/{id | emailAddress}`.

Documented behaviour (place-list, room resource): Place.Read.All; default page 100 with `$top`,
`$skip`, `$select`, `$filter`, `$count`; rooms hidden from the address list are not listed; the
`id` is mutable (clients should key on `emailAddress` or the stable `placeId`). The type segment
may be written with the `graph` alias (`/places/graph.room`, `graph.roomList`), the form
Microsoft's SDKs send; next links keep the spelling the client used.
Room properties the tenant model does not hold (tags, accessibility, devices, Teams state...)
live in the "places" area and can be set through the control API.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from werkzeug.wrappers import Response

from devtools.graph_emulator import room_lists
from devtools.graph_emulator.app import Ctx, EmulatorApp, json_response
from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.identity import PLACES_READ, authorize
from devtools.graph_emulator.state import Room, Tenant, World, new_guid
from devtools.graph_emulator.users_query import parse_select, query_option, query_string

ROOM_TYPE = "#microsoft.graph.room"
DEFAULT_PAGE = 100
# Extra room properties (Graph names) with their value when nothing was set.
EXTRA_DEFAULTS: dict[str, Any] = {
    "address": None, "geoCoordinates": None, "phone": None, "label": None, "floorLabel": None,
    "isWheelChairAccessible": False, "tags": [], "audioDeviceName": None, "videoDeviceName": None,
    "displayDeviceName": None, "parentId": None,
    # placeFeatureEnablement: unknown, enabled or disabled (room resource).
    "teamsEnabledState": "unknown",
}
ROOM_PROPERTIES = ("id", "placeId", "emailAddress", "displayName", "nickname", "capacity", "building",
                   "floorNumber", "bookingType", *EXTRA_DEFAULTS)
_CANONICAL = {name.lower(): name for name in ROOM_PROPERTIES}


def extras(tenant: Tenant, room: Room) -> dict[str, Any]:
    """The settable extra properties of one room (kept per place id, which survives id changes)."""
    return tenant.area("places", dict).setdefault(room.place_id, {})


def set_extras(world: World, tenant: Tenant, room: Room, values: dict[str, Any]) -> None:
    unknown = set(values) - set(EXTRA_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown room properties {sorted(unknown)}; settable: {sorted(EXTRA_DEFAULTS)}")
    with world.lock:
        extras(tenant, room).update(values)


def rotate_room_id(world: World, room: Room) -> str:
    """Gives the room a new place `id`, as mailbox or tenant changes do (placeId stays)."""
    with world.lock:
        room.id = new_guid()
    return room.id


def room_properties(tenant: Tenant, room: Room) -> dict[str, Any]:
    values = {
        "id": room.id, "placeId": room.place_id, "emailAddress": room.email, "displayName": room.display_name,
        "nickname": room.display_name, "capacity": room.capacity, "building": room.building,
        "floorNumber": room.floor_number, "bookingType": room.booking_type,
    }
    own = extras(tenant, room)
    for name, default in EXTRA_DEFAULTS.items():
        values[name] = own.get(name, list(default) if isinstance(default, list) else default)
    if values["floorLabel"] is None and room.floor_number is not None:
        values["floorLabel"] = str(room.floor_number)
    return values


def render_room(tenant: Tenant, room: Room, select: tuple[str, ...] | None) -> dict[str, Any]:
    values = room_properties(tenant, room)
    body: dict[str, Any] = {"@odata.type": ROOM_TYPE}
    names = select or ROOM_PROPERTIES
    body.update({name: values[name] for name in names})
    return body


_EQ = re.compile(r"^\(?\s*(\w+)\s+eq\s+(?:'((?:[^']|'')*)'|(-?\d+))\s*\)?$", re.I)


def compile_room_filter(tenant: Tenant, text: str | None) -> Callable[[Room], bool] | None:
    """`eq` clauses joined by `and` on emailAddress, building, displayName, floorNumber,
    capacity or bookingType; other filters are refused with a 400 that names them."""
    if text is None or not text.strip():
        return None
    tests = []
    for clause in re.split(r"\s+and\s+", text.strip(), flags=re.I):
        match = _EQ.match(clause)
        name = _CANONICAL.get(match.group(1).lower()) if match else None
        if name not in {"emailAddress", "building", "displayName", "floorNumber", "capacity", "bookingType"}:
            raise GraphError(400, "ErrorInvalidUrlQueryFilter",
                             f"The query filter clause '{clause}' is not supported.")
        text_value, number = match.group(2), match.group(3)
        wanted: Any = text_value.replace("''", "'").lower() if text_value is not None else int(number)
        tests.append((name, wanted))

    def matches(room: Room) -> bool:
        values = room_properties(tenant, room)
        for name, wanted in tests:
            value = values[name]
            if isinstance(wanted, str):
                if (value if isinstance(value, str) else str(value or "")).lower() != wanted:
                    return False
            elif value != wanted:
                return False
        return True
    return matches


def _int_arg(ctx: Ctx, name: str, default: int, minimum: int) -> int:
    raw = query_option(ctx, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise GraphError(400, "ErrorInvalidUrlQuery", f"The value '{raw}' of ${name} is invalid.")
    return value


def _room_select(ctx: Ctx) -> tuple[str, ...] | None:
    """The room properties `$select` asks for; None renders them all."""
    return parse_select(query_option(ctx, "select"), _CANONICAL, (), "microsoft.graph.room") or None


def _visible_rooms(ctx: Ctx, tenant: Tenant, among: list[str] | None = None) -> list[Room]:
    """Listed rooms (not hidden from the address list), `$filter` applied, in a stable order."""
    matches = compile_room_filter(tenant, query_option(ctx, "filter"))
    rooms = (r for r in tenant.rooms.values() if not r.hidden_from_gal)
    if among is not None:
        wanted = {email.lower() for email in among}
        rooms = (r for r in rooms if r.email.lower() in wanted)
    visible = sorted(rooms, key=lambda r: r.email.lower())
    return [r for r in visible if matches(r)] if matches else visible


def _page(ctx: Ctx, items: list, render: Callable[[Any], dict], context: str) -> Response:
    """One page of a places collection: `$top` (100 by default), `$skip`, `$count=true`."""
    args = ctx.request.args
    top = _int_arg(ctx, "top", DEFAULT_PAGE, 1)
    skip = _int_arg(ctx, "skip", 0, 0)
    body: dict[str, Any] = {"@odata.context": f"{ctx.world.base_url}/v1.0/$metadata#{context}"}
    if (query_option(ctx, "count") or "").lower() == "true":
        body["@odata.count"] = len(items)
    body["value"] = [render(item) for item in items[skip:skip + top]]
    if skip + top < len(items):
        pairs = [(k, v) for k, v in args.items(multi=True) if k.lstrip("$").lower() not in ("skip", "top")]
        pairs += [("$top", str(top)), ("$skip", str(skip + top))]
        body["@odata.nextLink"] = f"{ctx.world.base_url}{ctx.request.path}?{query_string(pairs)}"
    return json_response(body)


def list_rooms(ctx: Ctx) -> Response:
    authorize(ctx, PLACES_READ)
    tenant = ctx.caller.tenant
    select = _room_select(ctx)
    with ctx.world.lock:
        visible = _visible_rooms(ctx, tenant)
        return _page(ctx, visible, lambda r: render_room(tenant, r, select), "places/microsoft.graph.room")


def count_rooms(ctx: Ctx) -> Response:
    """`/places/microsoft.graph.room/$count`: the number alone, as text (OData `/$count`)."""
    authorize(ctx, PLACES_READ)
    with ctx.world.lock:
        count = len(_visible_rooms(ctx, ctx.caller.tenant))
    return Response(str(count), mimetype="text/plain")


def list_room_lists(ctx: Ctx) -> Response:
    authorize(ctx, PLACES_READ)
    tenant = ctx.caller.tenant
    with ctx.world.lock:
        lists = sorted(room_lists.room_lists(tenant).values(), key=lambda r: r.email.lower())
        return _page(ctx, lists, room_lists.render_room_list, "places/microsoft.graph.roomList")


def rooms_in_list(ctx: Ctx) -> Response:
    """The rooms of one room list, which must be addressed by its email address."""
    authorize(ctx, PLACES_READ)
    tenant = ctx.caller.tenant
    select = _room_select(ctx)
    key = ctx.params["place"]
    with ctx.world.lock:
        room_list = room_lists.find_room_list(tenant, key)
        if room_list is None:
            raise GraphError(404, "ErrorItemNotFound", f"The room list '{key}' was not found.")
        members = _visible_rooms(ctx, tenant, among=room_list.room_emails)
        return _page(ctx, members, lambda r: render_room(tenant, r, select),
                     f"places('{key}')/microsoft.graph.roomList/rooms")


def find_place(tenant: Tenant, key: str) -> Room | None:
    room = tenant.find_room(key)
    if room is None:
        room = next((r for r in tenant.rooms.values() if key in (r.id, r.place_id)), None)
    return room


def get_place(ctx: Ctx) -> Response:
    authorize(ctx, PLACES_READ)
    tenant = ctx.caller.tenant
    select = _room_select(ctx)
    key = ctx.params["place"]
    with ctx.world.lock:
        room = find_place(tenant, key)
        if room is None:
            raise GraphError(404, "ErrorItemNotFound", f"The place '{key}' was not found.")
        body = {"@odata.context": f"{ctx.world.base_url}/v1.0/$metadata#places/$entity",
                **render_room(tenant, room, select)}
    return json_response(body)


# OData type segments as clients write them: full namespace or the `graph` alias, and the
# roomList type name in the docs' lower case or its own camel case.
ROOM_SEGMENTS = ("microsoft.graph.room", "graph.room")
ROOM_LIST_SEGMENTS = ("microsoft.graph.roomlist", "microsoft.graph.roomList", "graph.roomList", "graph.roomlist")


def register(app: EmulatorApp) -> None:
    for segment in ROOM_SEGMENTS:
        app.route(f"/v1.0/places/{segment}", ["GET"], list_rooms, name="places.rooms")
        for count in ("$count", "%24count"):  # routes match the raw path; some clients encode the `$`
            app.route(f"/v1.0/places/{segment}/{count}", ["GET"], count_rooms, name="places.rooms.count")
    for segment in ROOM_LIST_SEGMENTS:
        app.route(f"/v1.0/places/{segment}", ["GET"], list_room_lists, name="places.roomLists")
        app.route(f"/v1.0/places/<place>/{segment}/rooms", ["GET"], rooms_in_list, name="places.roomLists.rooms")
    app.route("/v1.0/places/<place>", ["GET"], get_place, name="places.get")
