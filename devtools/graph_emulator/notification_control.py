"""Control API for subscriptions and notification delivery (JSON, no auth, snake_case bodies
like the rest of `/_control/`). `<tenant>` values accept a tenant id or domain.

| Method | Path | Body / query -> result |
|---|---|---|
| GET | /_control/subscriptions | `?tenant=` -> `{"value": [subscription + tenantId, targetKind, targetUserId, createdDateTime, immutableIds, reauthorizedDateTime, resourceForm]}` |
| GET | /_control/subscriptions/<id> | -> that view |
| PATCH | /_control/subscriptions/<id> | `{"expires_at": ISO}` or `{"expires_in_seconds": n}`, no lifetime rules, and/or `{"resource_form": "path"/"tenant"/"key"}` -> view (404 afterwards if now past) |
| POST | /_control/subscriptions/<id>/expire | -> 204; gone from then on (Graph answers 404) |
| DELETE | /_control/subscriptions/<id> | `?notify=true&variant=organizationId` -> 204; notify sends subscriptionRemoved |
| POST | /_control/subscriptions/<id>/lifecycle | `{"lifecycle_event": "reauthorizationRequired"/"subscriptionRemoved"/"missed", "variant"?: "tenantId"/"organizationId"}` -> 202 (users subscriptions: reauthorizationRequired only, else 400) |
| GET | /_control/notifications/settings | -> settings (timeouts, backoff, limits, quotas, allow_insecure_loopback, delivery_ca...) |
| PATCH | /_control/notifications/settings | any subset of the settings -> settings |
| GET | /_control/deliveries/switches | `?tenant=` -> `{"overrides": {scope: {...}}, "effective": {...}}` |
| PATCH | /_control/deliveries/switches | `{"tenant"?, "duplicate"?, "reorder"?: none/within/across, "delay_seconds"?, "drop"?, "slow"?, "pause"?}` (null clears one) -> same as GET |
| DELETE | /_control/deliveries/switches | `?tenant=` (none = every scope) -> 204 |
| GET | /_control/deliveries | `?tenant=&subscription=&kind=validation/notification/lifecycle` -> `{"value": [log entries], "pending", "dueSoon", "inFlight", "health"}` |
| DELETE | /_control/deliveries | `?tenant=` -> `{"cleared": n}` (log only) |
| GET | /_control/deliveries/outbox | `?tenant=` -> `{"value": [queued items with due times]}` |
| DELETE | /_control/deliveries/outbox | `?tenant=` -> `{"discarded": n}` |
| POST | /_control/deliveries/flush | `{"tenant"?, "timeout_seconds"?: 10, "horizon_seconds"?}` -> `{"idle", "pending", "dueSoon", "inFlight"}` once nothing is due soon or in flight |
| POST | /_control/changes | `{"tenant", "kind"?: events/users, "user", "item_id"?, "change_type": "created,updated" or list, "etag"?}` -> 202 `{"published": [...]}` |
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from werkzeug.wrappers import Response

from devtools.graph_emulator import lifecycle
from devtools.graph_emulator.app import Ctx, EmulatorApp, json_response, no_content
from devtools.graph_emulator.clock import parse_graph_datetime
from devtools.graph_emulator.control import bad, body, find_tenant_or_404
from devtools.graph_emulator.delivery import delivery_service
from devtools.graph_emulator.delivery_log import delivery_log
from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.notification_settings import GLOBAL_SCOPE, notification_settings, switch_board
from devtools.graph_emulator.payloads import RESOURCE_FORMS
from devtools.graph_emulator.state import Change, Tenant, new_outlook_id
from devtools.graph_emulator.subscription_model import (
    AREA, CHANGE_TYPES, EVENTS, USERS, Subscription, locate, store_of,
)


def _tenant(ctx: Ctx, name: str | None, required: bool = True) -> Tenant | None:
    if not name:
        if required:
            raise bad("'tenant' is required")
        return None
    return find_tenant_or_404(ctx.world, name)


def _subscription(ctx: Ctx) -> tuple[Tenant, Subscription]:
    found = locate(ctx.world, ctx.params["subscription_id"])
    if found is None:
        raise GraphError(404, "NotFound", f"no live subscription '{ctx.params['subscription_id']}'")
    return found


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


# ---- subscriptions ---------------------------------------------------------------------------------

def list_subscriptions(ctx: Ctx) -> Response:
    tenant = _tenant(ctx, ctx.request.args.get("tenant"), required=False)
    world = ctx.world
    with world.lock:
        now = world.clock.now()
        tenants = [tenant] if tenant else list(world.tenants.values())
        subs = [s for t in tenants if AREA in t.areas for s in store_of(t).active(now)]
        return json_response({"value": [s.to_control() for s in subs]})


def get_subscription(ctx: Ctx) -> Response:
    _, sub = _subscription(ctx)
    with ctx.world.lock:
        return json_response(sub.to_control())


def set_expiry(ctx: Ctx) -> Response:
    """New expiry and/or the form its event notifications spell `resource` in."""
    _, sub = _subscription(ctx)
    data = body(ctx)
    form = data.get("resource_form")
    if form is not None and form not in RESOURCE_FORMS:
        raise bad(f"resource_form must be one of {', '.join(RESOURCE_FORMS)}")
    moment = None
    try:
        if data.get("expires_at"):
            moment = parse_graph_datetime(str(data["expires_at"]))
        elif data.get("expires_in_seconds") is not None:
            moment = ctx.world.clock.now() + timedelta(seconds=float(data["expires_in_seconds"]))
        elif form is None:
            raise bad("give 'expires_at', 'expires_in_seconds' or 'resource_form'")
    except (TypeError, ValueError) as exc:
        raise bad(f"bad expiry: {exc}") from None
    with ctx.world.lock:
        if moment is not None:
            sub.expires_at = moment
        if form is not None:
            sub.resource_form = form
        return json_response(sub.to_control())


def expire_subscription(ctx: Ctx) -> Response:
    _, sub = _subscription(ctx)
    with ctx.world.lock:
        sub.expires_at = ctx.world.clock.now()
    return no_content()


def remove_subscription(ctx: Ctx) -> Response:
    tenant, sub = _subscription(ctx)
    lifecycle.remove_subscription(ctx.world, tenant, sub, notify=_flag(ctx.request.args.get("notify")),
                                  variant=ctx.request.args.get("variant"))
    return no_content()


def send_lifecycle(ctx: Ctx) -> Response:
    tenant, sub = _subscription(ctx)
    data = body(ctx)
    event = data.get("lifecycle_event") or data.get("lifecycleEvent")
    lifecycle.send_lifecycle_event(ctx.world, tenant, sub, str(event or ""), data.get("variant"))
    return json_response({"queued": True, "subscription_id": sub.id, "lifecycle_event": event}, status=202)


# ---- settings and switches -------------------------------------------------------------------------

def get_settings(ctx: Ctx) -> Response:
    return json_response(notification_settings(ctx.world).to_json())


def update_settings(ctx: Ctx) -> Response:
    settings = notification_settings(ctx.world)
    with ctx.world.lock:
        settings.update_from_json(body(ctx))
        return json_response(settings.to_json())


def _switches_view(ctx: Ctx, tenant: Tenant | None) -> Response:
    board = switch_board(ctx.world)
    with ctx.world.lock:
        view = {"overrides": {scope: dict(values) for scope, values in board.overrides.items()},
                "effective": board.effective(tenant.id if tenant else GLOBAL_SCOPE).to_json()}
    return json_response(view)


def get_switches(ctx: Ctx) -> Response:
    return _switches_view(ctx, _tenant(ctx, ctx.request.args.get("tenant"), required=False))


def update_switches(ctx: Ctx) -> Response:
    data = body(ctx)
    tenant = _tenant(ctx, data.get("tenant") or ctx.request.args.get("tenant"), required=False)
    with ctx.world.lock:
        switch_board(ctx.world).update(tenant.id if tenant else GLOBAL_SCOPE, data)
    return _switches_view(ctx, tenant)


def reset_switches(ctx: Ctx) -> Response:
    tenant = _tenant(ctx, ctx.request.args.get("tenant"), required=False)
    with ctx.world.lock:
        switch_board(ctx.world).reset(tenant.id if tenant else None)
    return no_content()


# ---- deliveries ---------------------------------------------------------------------------------------

def list_deliveries(ctx: Ctx) -> Response:
    args = ctx.request.args
    tenant = _tenant(ctx, args.get("tenant"), required=False)
    tenant_id = tenant.id if tenant else None
    service = delivery_service(ctx.world)
    entries = delivery_log(ctx.world).entries(tenant_id, args.get("subscription"), args.get("kind"))
    with ctx.world.lock:
        health = service.health.snapshot(ctx.world.clock.now())
    return json_response({"value": [e.to_json() for e in entries], **service.counts(tenant_id), "health": health})


def clear_deliveries(ctx: Ctx) -> Response:
    tenant = _tenant(ctx, ctx.request.args.get("tenant"), required=False)
    return json_response({"cleared": delivery_log(ctx.world).clear(tenant.id if tenant else None)})


def list_outbox(ctx: Ctx) -> Response:
    tenant = _tenant(ctx, ctx.request.args.get("tenant"), required=False)
    return json_response({"value": delivery_service(ctx.world).outbox(tenant.id if tenant else None)})


def clear_outbox(ctx: Ctx) -> Response:
    tenant = _tenant(ctx, ctx.request.args.get("tenant"), required=False)
    return json_response({"discarded": delivery_service(ctx.world).discard(tenant.id if tenant else None)})


def flush(ctx: Ctx) -> Response:
    data = body(ctx)
    tenant = _tenant(ctx, data.get("tenant") or ctx.request.args.get("tenant"), required=False)
    try:
        timeout = min(float(data.get("timeout_seconds", 10)), 120.0)
        horizon = data.get("horizon_seconds")
        horizon = None if horizon is None else float(horizon)
    except (TypeError, ValueError):
        raise bad("timeout_seconds and horizon_seconds must be numbers") from None
    result = delivery_service(ctx.world).wait_idle(tenant.id if tenant else None, timeout, horizon)
    return json_response(result)


# ---- synthetic changes -----------------------------------------------------------------------------

def _change_types(value: Any) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise bad("'change_type' must be a comma-separated string or a list")
    cleaned = [str(v).strip().lower() for v in items]
    unknown = [v for v in cleaned if v not in CHANGE_TYPES]
    if unknown:
        raise bad(f"unknown change types: {', '.join(unknown)}")
    return cleaned


def publish_changes(ctx: Ctx) -> Response:
    """Publishes changes on the bus as if an event or user had changed (tests delivery without
    touching calendars). Other bus listeners see them too."""
    data = body(ctx)
    tenant = _tenant(ctx, data.get("tenant"))
    kind = data.get("kind", EVENTS)
    if kind not in (EVENTS, USERS):
        raise bad("'kind' must be 'events' or 'users'")
    reference = data.get("user") or data.get("mailbox") or data.get("user_id")
    if not reference:
        raise bad("'user' (id, userPrincipalName or mail) is required")
    with ctx.world.lock:
        user = tenant.find_user(str(reference), include_deleted=True)
    if user is None:
        raise GraphError(404, "NotFound", f"no user '{reference}' in tenant {tenant.id}")
    item_id = user.id if kind == USERS else str(data.get("item_id") or data.get("event_id") or new_outlook_id())
    resource = f"Users/{user.id}" if kind == USERS else f"Users/{user.id}/Events/{item_id}"
    published = []
    for change_type in _change_types(data.get("change_type", "updated")):
        change = Change(tenant_id=tenant.id, kind=kind, change_type=change_type, user_id=user.id, item_id=item_id,
                        resource=resource, etag=data.get("etag"),
                        odata_type="#Microsoft.Graph.User" if kind == USERS else "#Microsoft.Graph.Event")
        ctx.world.bus.publish(change)
        published.append({"kind": kind, "change_type": change_type, "user_id": user.id, "item_id": item_id,
                          "resource": resource})
    return json_response({"published": published}, status=202)


ROUTES = (
    ("/_control/subscriptions", ["GET"], list_subscriptions, "control.subscriptions.list"),
    ("/_control/subscriptions/<subscription_id>", ["GET"], get_subscription, "control.subscriptions.get"),
    ("/_control/subscriptions/<subscription_id>", ["PATCH"], set_expiry, "control.subscriptions.expiry"),
    ("/_control/subscriptions/<subscription_id>", ["DELETE"], remove_subscription, "control.subscriptions.remove"),
    ("/_control/subscriptions/<subscription_id>/expire", ["POST"], expire_subscription,
     "control.subscriptions.expire"),
    ("/_control/subscriptions/<subscription_id>/lifecycle", ["POST"], send_lifecycle,
     "control.subscriptions.lifecycle"),
    ("/_control/notifications/settings", ["GET"], get_settings, "control.notifications.settings.get"),
    ("/_control/notifications/settings", ["PATCH"], update_settings, "control.notifications.settings.update"),
    ("/_control/deliveries/switches", ["GET"], get_switches, "control.deliveries.switches.get"),
    ("/_control/deliveries/switches", ["PATCH"], update_switches, "control.deliveries.switches.update"),
    ("/_control/deliveries/switches", ["DELETE"], reset_switches, "control.deliveries.switches.reset"),
    ("/_control/deliveries", ["GET"], list_deliveries, "control.deliveries.list"),
    ("/_control/deliveries", ["DELETE"], clear_deliveries, "control.deliveries.clear"),
    ("/_control/deliveries/outbox", ["GET"], list_outbox, "control.deliveries.outbox"),
    ("/_control/deliveries/outbox", ["DELETE"], clear_outbox, "control.deliveries.outbox.clear"),
    ("/_control/deliveries/flush", ["POST"], flush, "control.deliveries.flush"),
    ("/_control/changes", ["POST"], publish_changes, "control.changes.publish"),
)


def register(app: EmulatorApp) -> None:
    for path, methods, handler, name in ROUTES:
        app.route(path, methods, handler, name=name)
