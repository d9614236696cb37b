"""Control API (directory part): JSON over HTTP under `/_control/`, no auth (the emulator only
listens on loopback). Tests and the demo use it to act as the tenant's operator. Errors are
`{"error": {"code", "message"}}` with 400 (bad input) or 404 (unknown tenant, app, user, room).
`<tenant>` is a tenant id or domain; `<user>` an id, UPN or mail; `<room>` an email or place id.
Other areas add their own `/_control/...` routes in their modules (`tenant_or_404`,
`find_tenant_or_404`, `bad`, `body` and `iso` here are shared by them).

| Method | Path | Body -> answer |
|---|---|---|
| GET | /_control/tenants | -> `{"value": [summary...]}` |
| POST | /_control/tenants | `{"domain", "display_name"?, "tenant_id"?}` -> 201 summary |
| GET | /_control/tenants/<tenant> | -> summary: id, display_name, domains, apps (roles, secrets, certificates), user counts, rooms |
| POST | /_control/tenants/<tenant>/apps | `{"client_id"?, "display_name"?, "roles"?: [...], "secret"?, "secret_expires_at"?, "secret_expires_in_seconds"?, "with_secret"?: true}` -> 201 `{"client_id", "display_name", "roles", "secret": {"key_id", "value", "expires_at"} or null}` |
| DELETE | /_control/tenants/<tenant>/apps/<client_id> | -> 204 |
| PUT | /_control/tenants/<tenant>/apps/<client_id>/roles | `{"roles": [...]}` -> app |
| POST | /_control/tenants/<tenant>/apps/<client_id>/secrets | `{"value"?, "expires_at"?, "expires_in_seconds"?}` -> 201 `{"key_id", "value", "expires_at"}` |
| POST | /_control/tenants/<tenant>/apps/<client_id>/secrets/<key_id>/expire | -> secret (expires now) |
| DELETE | /_control/tenants/<tenant>/apps/<client_id>/secrets/<key_id> | -> 204 |
| POST | /_control/tenants/<tenant>/apps/<client_id>/certificates | `{"certificate_pem"}` -> 201 `{"thumbprint"}` |
| DELETE | /_control/tenants/<tenant>/apps/<client_id>/certificates/<thumbprint> | -> 204 |
| GET | /_control/tenants/<tenant>/users | -> `{"value": [user...]}` (soft-deleted included, `deleted: true`) |
| POST | /_control/tenants/<tenant>/users | `{"count": N, "seed"?}` or `{"users": [{"alias"?, "displayName"?, "givenName"?, "surname"?, "department"?, "jobTitle"?, "accountEnabled"?, "timeZone"?...}]}` -> 201 `{"value": [user...]}` |
| GET | /_control/tenants/<tenant>/users/<user> | -> user |
| PATCH | /_control/tenants/<tenant>/users/<user> | Graph properties, e.g. `{"displayName", "mail", "userPrincipalName", "department", "accountEnabled"}` -> user |
| POST | /_control/tenants/<tenant>/users/<user>/<action> | action = disable, enable, soft-delete, restore, hard-delete -> user (204 for hard-delete) |
| POST | /_control/tenants/<tenant>/rooms | `{"alias" or "email", "displayName"?, "capacity"?, "building"?, "floorNumber"?, "timeZone"?, "hiddenFromGal"?, "bookingType"?, "settings"?: {...}, plus place extras such as "tags", "isWheelChairAccessible"}` -> 201 room |
| GET | /_control/tenants/<tenant>/rooms/<room> | -> room (place properties, timeZone, hiddenFromGal, settings, userId) |
| PATCH | /_control/tenants/<tenant>/rooms/<room> | same fields as create (no alias/email), `"rotateId": true` gives the place a new id -> room |
| POST | /_control/tenants/<tenant>/room-lists | `{"email", "displayName"?, "rooms": [room email]}` -> 201 room list (+ `rooms`); the same email again replaces the list |
| PATCH | /_control/tenants/<tenant>/rooms/<room>/settings | calendar processing, any of snake_case, camelCase or Exchange names (`AutomateProcessing`, `AddOrganizerToSubject`, `DeleteSubject`, `DeleteComments`, `RemovePrivateProperty`, `AllowConflicts`, `AllowRecurringMeetings`, `BookingWindowInDays`, `MaximumDurationInMinutes`, `RemoveCanceledMeetings`), plus the emulator's own `answer_delay_seconds` (how long the room's answer takes to reach the organizer) -> settings |
| POST | /_control/tenants/<tenant>/delta/expire | -> 204; every users delta/skip token issued so far answers 410 |
| GET | /_control/clock | -> `{"now"}` |
| POST | /_control/clock | `{"advance_seconds": N}` or `{"set": "<ISO 8601>"}` -> `{"now"}` |
| GET | /_control/requests | -> `{"counts": {endpoint name: n}, "total"}` |
| POST | /_control/requests/reset | -> 204 |
"""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from werkzeug.wrappers import Response

from devtools.graph_emulator import certificates, places, room_lists, seed, users
from devtools.graph_emulator.app import Ctx, EmulatorApp, json_response, no_content
from devtools.graph_emulator.clock import graph_datetime, parse_graph_datetime
from devtools.graph_emulator.errors import GraphError, bad_request
from devtools.graph_emulator.state import AppRegistration, ClientSecret, Room, RoomSettings, Tenant, User, World

PREFIX = "/_control"


# ---- shared by all control routes --------------------------------------------------------------------------------

bad = bad_request


def missing(message: str) -> GraphError:
    return GraphError(404, "NotFound", message)


def body(ctx: Ctx) -> dict[str, Any]:
    """The JSON object body; an empty body counts as {}."""
    if not ctx.request.get_data(cache=True):
        return {}
    data = ctx.json()
    if not isinstance(data, dict):
        raise bad("the body must be a JSON object")
    return data


def iso(moment: datetime | None) -> str | None:
    return graph_datetime(moment) if moment else None


def find_tenant_or_404(world: World, name: str) -> Tenant:
    """The tenant with this id or domain, or a 404."""
    with world.lock:
        tenant = world.find_tenant(name)
    if tenant is None:
        raise missing(f"no tenant '{name}'")
    return tenant


def tenant_or_404(ctx: Ctx) -> Tenant:
    return find_tenant_or_404(ctx.world, ctx.params["tenant"])


def _app_or_404(ctx: Ctx, tenant: Tenant) -> AppRegistration:
    app = tenant.apps.get(ctx.params["client_id"])
    if app is None:
        raise missing(f"no app '{ctx.params['client_id']}' in tenant {tenant.id}")
    return app


def _user_or_404(ctx: Ctx, tenant: Tenant) -> User:
    user = tenant.find_user(ctx.params["user"], include_deleted=True)
    if user is None:
        raise missing(f"no user '{ctx.params['user']}' in tenant {tenant.id}")
    return user


def _room_or_404(ctx: Ctx, tenant: Tenant) -> Room:
    room = places.find_place(tenant, ctx.params["room"])
    if room is None:
        raise missing(f"no room '{ctx.params['room']}' in tenant {tenant.id}")
    return room


def _expiry(ctx: Ctx, data: dict[str, Any], at_key: str, in_key: str) -> datetime | None:
    try:
        if data.get(at_key):
            return parse_graph_datetime(str(data[at_key]))
        if data.get(in_key) is not None:
            return ctx.world.clock.now() + timedelta(seconds=float(data[in_key]))
    except (TypeError, ValueError) as exc:
        raise bad(f"bad expiry: {exc}") from None
    return None


def _string_list(data: dict[str, Any], key: str) -> list[str] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad(f"'{key}' must be a list of strings")
    return value


# ---- views -------------------------------------------------------------------------------------

def _secret_view(secret: ClientSecret, now: datetime, with_value: bool = False) -> dict[str, Any]:
    view = {"key_id": secret.key_id, "hint": secret.hint, "expires_at": iso(secret.expires_at),
            "expired": secret.expires_at is not None and secret.expires_at <= now}
    if with_value:
        view["value"] = secret.value
    return view


def _app_view(app: AppRegistration, now: datetime) -> dict[str, Any]:
    return {"client_id": app.client_id, "display_name": app.display_name, "roles": sorted(app.roles),
            "secrets": [_secret_view(s, now) for s in app.secrets], "certificates": sorted(app.certificates)}


def tenant_summary(ctx: Ctx, tenant: Tenant) -> dict[str, Any]:
    now = ctx.world.clock.now()
    people = list(tenant.users.values())
    return {
        "id": tenant.id, "display_name": tenant.display_name, "domains": list(tenant.domains),
        "apps": [_app_view(a, now) for a in tenant.apps.values()],
        "users": sum(1 for u in people if u.deleted_at is None),
        "deleted_users": sum(1 for u in people if u.deleted_at is not None),
        "rooms": sorted(r.email for r in tenant.rooms.values()),
    }


def user_view(user: User) -> dict[str, Any]:
    view = users.render_user(user, tuple(users.USER_PROPERTIES))
    view.update({"isRoom": user.is_room, "timeZone": user.time_zone, "deleted": user.deleted_at is not None,
                 "deletedDateTime": iso(user.deleted_at)})
    return view


def room_view(tenant: Tenant, room: Room) -> dict[str, Any]:
    view = places.room_properties(tenant, room)
    view.update({"userId": room.user_id, "timeZone": room.time_zone, "hiddenFromGal": room.hidden_from_gal,
                 "settings": dataclasses.asdict(room.settings)})
    return view


# ---- tenants and apps ------------------------------------------------------------------------------

def list_tenants(ctx: Ctx) -> Response:
    with ctx.world.lock:
        return json_response({"value": [tenant_summary(ctx, t) for t in ctx.world.tenants.values()]})


def create_tenant(ctx: Ctx) -> Response:
    data = body(ctx)
    if not isinstance(data.get("domain"), str) or "." not in data["domain"]:
        raise bad("'domain' (e.g. contoso.example) is required")
    try:
        tenant = seed.create_tenant(ctx.world, data["domain"], data.get("display_name"), data.get("tenant_id"))
    except ValueError as exc:
        raise bad(str(exc)) from None
    with ctx.world.lock:
        return json_response(tenant_summary(ctx, tenant), status=201)


def get_tenant(ctx: Ctx) -> Response:
    with ctx.world.lock:
        return json_response(tenant_summary(ctx, tenant_or_404(ctx)))


def create_app(ctx: Ctx) -> Response:
    tenant = tenant_or_404(ctx)
    data = body(ctx)
    roles = _string_list(data, "roles")
    try:
        app = seed.add_app(ctx.world, tenant, client_id=data.get("client_id"),
                           display_name=data.get("display_name") or "roomsync", roles=roles,
                           secret=data.get("secret"),
                           secret_expires_at=_expiry(ctx, data, "secret_expires_at", "secret_expires_in_seconds"),
                           with_secret=data.get("with_secret", True))
    except ValueError as exc:
        raise bad(str(exc)) from None
    now = ctx.world.clock.now()
    secret = _secret_view(app.secrets[0], now, with_value=True) if app.secrets else None
    return json_response({"client_id": app.client_id, "display_name": app.display_name,
                          "roles": sorted(app.roles), "secret": secret}, status=201)


def delete_app(ctx: Ctx) -> Response:
    tenant = tenant_or_404(ctx)
    with ctx.world.lock:
        _app_or_404(ctx, tenant)
        del tenant.apps[ctx.params["client_id"]]
    return no_content()


def set_roles(ctx: Ctx) -> Response:
    tenant = tenant_or_404(ctx)
    roles = _string_list(body(ctx), "roles")
    if roles is None:
        raise bad("'roles' (a list of permission names) is required")
    with ctx.world.lock:
        app = _app_or_404(ctx, tenant)
        app.roles = set(roles)
        return json_response(_app_view(app, ctx.world.clock.now()))


def add_secret(ctx: Ctx) -> Response:
    tenant = tenant_or_404(ctx)
    app = _app_or_404(ctx, tenant)
    data = body(ctx)
    secret = seed.add_secret(ctx.world, app, value=data.get("value"),
                             expires_at=_expiry(ctx, data, "expires_at", "expires_in_seconds"))
    return json_response(_secret_view(secret, ctx.world.clock.now(), with_value=True), status=201)


def _secret_or_404(ctx: Ctx, app: AppRegistration) -> ClientSecret:
    secret = next((s for s in app.secrets if s.key_id == ctx.params["key_id"]), None)
    if secret is None:
        raise missing(f"no secret '{ctx.params['key_id']}' on app {app.client_id}")
    return secret


def expire_secret(ctx: Ctx) -> Response:
    tenant = tenant_or_404(ctx)
    with ctx.world.lock:
        app = _app_or_404(ctx, tenant)
        secret = _secret_or_404(ctx, app)
        secret.expires_at = ctx.world.clock.now()
        return json_response(_secret_view(secret, ctx.world.clock.now()))


def remove_secret(ctx: Ctx) -> Response:
    tenant = tenant_or_404(ctx)
    with ctx.world.lock:
        app = _app_or_404(ctx, tenant)
        app.secrets.remove(_secret_or_404(ctx, app))
    return no_content()


def add_certificate(ctx: Ctx) -> Response:
    tenant = tenant_or_404(ctx)
    app = _app_or_404(ctx, tenant)
    pem = body(ctx).get("certificate_pem")
    if not isinstance(pem, str) or "BEGIN CERTIFICATE" not in pem:
        raise bad("'certificate_pem' (a PEM certificate) is required")
    try:
        thumbprint = certificates.register_certificate(ctx.world, app, pem)
    except ValueError as exc:
        raise bad(f"unreadable certificate: {exc}") from None
    return json_response({"thumbprint": thumbprint}, status=201)


def remove_certificate(ctx: Ctx) -> Response:
    tenant = tenant_or_404(ctx)
    app = _app_or_404(ctx, tenant)
    if not certificates.remove_certificate(ctx.world, app, ctx.params["thumbprint"]):
        raise missing(f"no certificate '{ctx.params['thumbprint']}' on app {app.client_id}")
    return no_content()


# ---- users ---------------------------------------------------------------------------------------

# Control field (Graph name) -> seed.make_user keyword, for creating people.
_NEW_USER_FIELDS = {
    "displayName": "display_name", "givenName": "given_name", "surname": "surname", "department": "department",
    "jobTitle": "job_title", "officeLocation": "office_location", "mobilePhone": "mobile_phone",
    "businessPhones": "business_phones", "preferredLanguage": "preferred_language",
    "accountEnabled": "account_enabled", "userType": "user_type", "timeZone": "time_zone", "mail": "mail",
    "userPrincipalName": "user_principal_name", "id": "id",
}


def list_directory_users(ctx: Ctx) -> Response:
    tenant = tenant_or_404(ctx)
    with ctx.world.lock:
        return json_response({"value": [user_view(u) for u in tenant.users.values()]})


def create_users(ctx: Ctx) -> Response:
    tenant = tenant_or_404(ctx)
    data = body(ctx)
    try:
        if "count" in data:
            count = data["count"]
            if not isinstance(count, int) or not 0 < count <= 100_000:
                raise bad("'count' must be an integer from 1 to 100000")
            made = seed.add_users(ctx.world, tenant, count, seed=data.get("seed"))
        elif isinstance(data.get("users"), list):
            made = []
            for spec in data["users"]:
                if not isinstance(spec, dict):
                    raise bad("each entry of 'users' must be an object")
                unknown = set(spec) - set(_NEW_USER_FIELDS) - {"alias"}
                if unknown:
                    raise bad(f"unknown user fields {sorted(unknown)}")
                attributes = {_NEW_USER_FIELDS[k]: v for k, v in spec.items() if k != "alias"}
                made.append(seed.add_user(ctx.world, tenant, alias=spec.get("alias"), **attributes))
        else:
            raise bad("send {'count': N} or {'users': [...]}")
    except (users.DirectoryError, TypeError) as exc:
        raise bad(str(exc)) from None
    with ctx.world.lock:
        return json_response({"value": [user_view(u) for u in made]}, status=201)


def get_directory_user(ctx: Ctx) -> Response:
    tenant = tenant_or_404(ctx)
    with ctx.world.lock:
        return json_response(user_view(_user_or_404(ctx, tenant)))


def update_directory_user(ctx: Ctx) -> Response:
    tenant = tenant_or_404(ctx)
    user = _user_or_404(ctx, tenant)
    try:
        updated = users.update_user(ctx.world, tenant, user.id, body(ctx))
    except users.DirectoryError as exc:
        raise bad(str(exc)) from None
    with ctx.world.lock:
        return json_response(user_view(updated))


_USER_ACTIONS = {
    "disable": users.disable_user, "enable": users.enable_user, "soft-delete": users.soft_delete_user,
    "restore": users.restore_user, "hard-delete": users.hard_delete_user,
}


def user_action(ctx: Ctx) -> Response:
    tenant = tenant_or_404(ctx)
    action = _USER_ACTIONS.get(ctx.params["action"])
    if action is None:
        raise missing(f"no user action '{ctx.params['action']}'; one of {sorted(_USER_ACTIONS)}")
    user = _user_or_404(ctx, tenant)
    try:
        result = action(ctx.world, tenant, user.id)
    except users.DirectoryError as exc:
        raise bad(str(exc)) from None
    if ctx.params["action"] == "hard-delete":
        return no_content()
    with ctx.world.lock:
        return json_response(user_view(result))


def expire_delta(ctx: Ctx) -> Response:
    users.expire_delta_tokens(ctx.world, tenant_or_404(ctx))
    return no_content()


# ---- rooms ---------------------------------------------------------------------------------------

_SETTING_NAMES = {f.name.replace("_", ""): f.name for f in dataclasses.fields(RoomSettings)}
_ROOM_FIELDS = {"displayName", "capacity", "building", "floorNumber", "timeZone", "hiddenFromGal", "bookingType"}


def _settings_changes(data: dict[str, Any]) -> dict[str, Any]:
    """Accepts automate_processing, automateProcessing or AutomateProcessing alike."""
    changes = {}
    for key, value in data.items():
        name = _SETTING_NAMES.get(key.replace("_", "").lower())
        if name is None:
            raise bad(f"unknown calendar processing setting '{key}'; known: {sorted(_SETTING_NAMES.values())}")
        expected = type(getattr(RoomSettings(), name))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise bad(f"'{key}' must be a {expected.__name__}")
        changes[name] = value
    if changes.get("answer_delay_seconds", 0.0) < 0:
        raise bad("answer_delay_seconds must not be negative")
    if changes.get("automate_processing", "AutoAccept") not in ("AutoAccept", "AutoUpdate", "None"):
        raise bad("AutomateProcessing must be AutoAccept, AutoUpdate or None")
    return changes


def _split_room_fields(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    own = {k: v for k, v in data.items() if k in _ROOM_FIELDS}
    extra = {k: v for k, v in data.items() if k in places.EXTRA_DEFAULTS}
    unknown = set(data) - _ROOM_FIELDS - set(places.EXTRA_DEFAULTS) - {"alias", "email", "settings", "rotateId"}
    if unknown:
        raise bad(f"unknown room fields {sorted(unknown)}")
    if own.get("bookingType", "standard") not in ("standard", "reserved", "unknown"):
        raise bad("bookingType must be standard, reserved or unknown")
    return own, extra


def create_room(ctx: Ctx) -> Response:
    tenant = tenant_or_404(ctx)
    data = body(ctx)
    alias = data.get("email") or data.get("alias")
    if not isinstance(alias, str) or not alias:
        raise bad("'alias' or 'email' is required")
    own, extra = _split_room_fields(data)
    settings = RoomSettings(**_settings_changes(data.get("settings") or {}))
    try:
        room = seed.add_room(ctx.world, tenant, alias, own.get("displayName"), capacity=own.get("capacity", 8),
                             building=own.get("building"), floor_number=own.get("floorNumber"),
                             time_zone=own.get("timeZone", "UTC"), settings=settings,
                             hidden_from_gal=bool(own.get("hiddenFromGal", False)),
                             booking_type=own.get("bookingType", "standard"))
        places.set_extras(ctx.world, tenant, room, extra)
    except (users.DirectoryError, ValueError) as exc:
        raise bad(str(exc)) from None
    with ctx.world.lock:
        return json_response(room_view(tenant, room), status=201)


def create_room_list(ctx: Ctx) -> Response:
    tenant = tenant_or_404(ctx)
    data = body(ctx)
    email = data.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise bad("'email' (the room list's address) is required")
    members = data.get("rooms") or []
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise bad("'rooms' must be a list of room email addresses")
    with ctx.world.lock:
        try:
            made = room_lists.put_room_list(tenant, email, data.get("displayName"), members)
        except ValueError as exc:
            raise bad(str(exc)) from None
        return json_response({**room_lists.render_room_list(made), "rooms": made.room_emails}, status=201)


def get_room(ctx: Ctx) -> Response:
    tenant = tenant_or_404(ctx)
    with ctx.world.lock:
        return json_response(room_view(tenant, _room_or_404(ctx, tenant)))


def update_room(ctx: Ctx) -> Response:
    tenant = tenant_or_404(ctx)
    data = body(ctx)
    own, extra = _split_room_fields(data)
    if "alias" in data or "email" in data:
        raise bad("change a room's address through its user (PATCH .../users/<id> with mail and userPrincipalName)")
    room = _room_or_404(ctx, tenant)
    if "displayName" in own:
        users.update_user(ctx.world, tenant, room.user_id, {"displayName": own["displayName"]})
    with ctx.world.lock:
        if "capacity" in own:
            room.capacity = own["capacity"]
        if "building" in own:
            room.building = own["building"]
        if "floorNumber" in own:
            room.floor_number = own["floorNumber"]
        if "bookingType" in own:
            room.booking_type = own["bookingType"]
        if "hiddenFromGal" in own:
            room.hidden_from_gal = bool(own["hiddenFromGal"])
        if "timeZone" in own:
            room.time_zone = own["timeZone"]
            if room.user_id in tenant.users:
                tenant.users[room.user_id].time_zone = own["timeZone"]
        places.set_extras(ctx.world, tenant, room, extra)
        if data.get("rotateId"):
            places.rotate_room_id(ctx.world, room)
        return json_response(room_view(tenant, room))


def update_room_settings(ctx: Ctx) -> Response:
    tenant = tenant_or_404(ctx)
    changes = _settings_changes(body(ctx))
    with ctx.world.lock:
        room = _room_or_404(ctx, tenant)
        room.settings = dataclasses.replace(room.settings, **changes)
        return json_response(dataclasses.asdict(room.settings))


# ---- clock and request counts --------------------------------------------------------------------

def get_clock(ctx: Ctx) -> Response:
    return json_response({"now": iso(ctx.world.clock.now())})


def move_clock(ctx: Ctx) -> Response:
    data = body(ctx)
    try:
        if "advance_seconds" in data:
            seconds = float(data["advance_seconds"])
            if seconds < 0:
                raise bad("'advance_seconds' must not be negative; use 'set' to go back")
            now = ctx.world.clock.advance(seconds)
        elif "set" in data:
            now = ctx.world.clock.set(parse_graph_datetime(str(data["set"])))
        else:
            raise bad("send {'advance_seconds': N} or {'set': '<ISO 8601>'}")
    except (TypeError, ValueError) as exc:
        raise bad(f"bad clock value: {exc}") from None
    return json_response({"now": iso(now)})


def get_request_counts(ctx: Ctx) -> Response:
    with ctx.world.lock:
        counts = dict(ctx.world.request_counts)
    return json_response({"counts": counts, "total": sum(counts.values())})


def reset_request_counts(ctx: Ctx) -> Response:
    with ctx.world.lock:
        ctx.world.request_counts.clear()
    return no_content()


def register(app: EmulatorApp) -> None:
    t = f"{PREFIX}/tenants/<tenant>"
    routes = [
        (f"{PREFIX}/tenants", ["GET"], list_tenants, "control.tenants.list"),
        (f"{PREFIX}/tenants", ["POST"], create_tenant, "control.tenants.create"),
        (t, ["GET"], get_tenant, "control.tenants.get"),
        (f"{t}/apps", ["POST"], create_app, "control.apps.create"),
        (f"{t}/apps/<client_id>", ["DELETE"], delete_app, "control.apps.delete"),
        (f"{t}/apps/<client_id>/roles", ["PUT"], set_roles, "control.apps.roles"),
        (f"{t}/apps/<client_id>/secrets", ["POST"], add_secret, "control.secrets.add"),
        (f"{t}/apps/<client_id>/secrets/<key_id>/expire", ["POST"], expire_secret, "control.secrets.expire"),
        (f"{t}/apps/<client_id>/secrets/<key_id>", ["DELETE"], remove_secret, "control.secrets.remove"),
        (f"{t}/apps/<client_id>/certificates", ["POST"], add_certificate, "control.certificates.add"),
        (f"{t}/apps/<client_id>/certificates/<thumbprint>", ["DELETE"], remove_certificate,
         "control.certificates.remove"),
        (f"{t}/users", ["GET"], list_directory_users, "control.users.list"),
        (f"{t}/users", ["POST"], create_users, "control.users.create"),
        (f"{t}/users/<user>", ["GET"], get_directory_user, "control.users.get"),
        (f"{t}/users/<user>", ["PATCH"], update_directory_user, "control.users.update"),
        (f"{t}/users/<user>/<action>", ["POST"], user_action, "control.users.action"),
        (f"{t}/rooms", ["POST"], create_room, "control.rooms.create"),
        (f"{t}/rooms/<room>", ["GET"], get_room, "control.rooms.get"),
        (f"{t}/rooms/<room>", ["PATCH"], update_room, "control.rooms.update"),
        (f"{t}/rooms/<room>/settings", ["PATCH"], update_room_settings, "control.rooms.settings"),
        (f"{t}/room-lists", ["POST"], create_room_list, "control.room-lists.create"),
        (f"{t}/delta/expire", ["POST"], expire_delta, "control.delta.expire"),
        (f"{PREFIX}/clock", ["GET"], get_clock, "control.clock.get"),
        (f"{PREFIX}/clock", ["POST"], move_clock, "control.clock.move"),
        (f"{PREFIX}/requests", ["GET"], get_request_counts, "control.requests.get"),
        (f"{PREFIX}/requests/reset", ["POST"], reset_request_counts, "control.requests.reset"),
    ]
    for path, methods, handler, name in routes:
        app.route(path, methods, handler, name=name)
