"""Graph's `/subscriptions` API: create (with the validation handshake), list, get, renew
(PATCH), delete and reauthorize, following the documented rules in GRAPH.md §2.1-2.6.

Rules worth knowing when reading the code:
- Required: changeType, notificationUrl, resource, expirationDateTime (400 naming the one missing).
- Expiry under 45 min is silently raised to now + 45 min; beyond the resource's maximum is a 400
  naming the maximum (events: the observed live limit, 10,070 min; users: 41,760 min).
- Same app + same changeType + same resource again: 409. Quotas: 1,000 per mailbox (all apps),
  100 user subscriptions per app and tenant, 1,000 per tenant: 403.
- The handshake runs before anything is stored; if it fails, nothing is created.
- Only the calling app's subscriptions are visible; expired or deleted ones answer 404.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from werkzeug.wrappers import Response

from devtools.graph_emulator import handshake, outbound
from devtools.graph_emulator.app import Ctx, EmulatorApp, json_response, no_content
from devtools.graph_emulator.clock import parse_graph_datetime
from devtools.graph_emulator.delivery import delivery_service
from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.identity import CALENDAR_READ, DIRECTORY_READ, Caller, authorize, b64url, b64url_decode
from devtools.graph_emulator.notification_settings import NotificationSettings, notification_settings
from devtools.graph_emulator.payloads import choose_resource_form
from devtools.graph_emulator.state import Tenant
from devtools.graph_emulator.subscription_model import (
    EVENTS, USERS, Subscription, Target, creator_id_for, new_subscription_id, parse_change_types, parse_resource,
    store_of,
)

REQUIRED = ("changeType", "notificationUrl", "resource", "expirationDateTime")
TLS_VERSIONS = ("v1_0", "v1_1", "v1_2", "v1_3")
CLIENT_STATE_MAX = 128
# Properties a PATCH may not change (only expirationDateTime and notificationUrl are updatable).
FIXED_ON_PATCH = {"resource": "resource", "changeType": "change_type", "clientState": "client_state",
                  "includeResourceData": None}


def _required_message(name: str) -> str:
    return f"'{name}' is a required property for subscription creation."


# ---- shared checks ----------------------------------------------------------------------------------

def _require_permission(caller: Caller, target: Target, operation: str = "Create") -> None:
    """Events need Calendars.Read(Write); users need User.Read.All (or a directory role).
    Outlook's refusal comes wrapped the way Graph wraps Outlook errors on subscriptions."""
    if target.kind == EVENTS and not caller.roles & CALENDAR_READ:
        raise GraphError(403, "ExtensionError",
                         f"Operation: {operation}; Exception: [Status Code: Forbidden; Reason: Access is denied. "
                         "Check credentials and try again.]")
    if target.kind == USERS and not caller.roles & DIRECTORY_READ:
        raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def _expiry(value: Any, target: Target, now: datetime, settings: NotificationSettings) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise GraphError(400, "InvalidRequest", _required_message("expirationDateTime"))
    try:
        requested = parse_graph_datetime(value)
    except ValueError:
        raise GraphError(400, "InvalidRequest", f"Invalid 'expirationDateTime' value: '{value}'.") from None
    maximum = (settings.max_lifetime_minutes_events if target.kind == EVENTS
               else settings.max_lifetime_minutes_users)
    if requested > now + timedelta(minutes=maximum):
        raise GraphError(400, "ExtensionError", f"Subscription expiration can only be {maximum} minutes in the future.")
    return max(requested, now + timedelta(minutes=settings.min_lifetime_minutes))


def _check_conflicts(tenant: Tenant, caller: Caller, target: Target, change_type: str, now: datetime,
                     settings: NotificationSettings) -> None:
    """409 for a duplicate of the caller's own subscription; 403 when a quota is used up."""
    live = store_of(tenant).active(now)
    wanted = frozenset(change_type.split(","))
    for sub in live:
        if sub.application_id == caller.app.client_id and sub.target == target and sub.change_types == wanted:
            raise GraphError(409, "Conflict", f"Subscription Id {sub.id} already exists for the requested combination")
    if target.kind == EVENTS:
        same_mailbox = sum(1 for s in live if s.target.kind == EVENTS and s.target.user_id == target.user_id)
        if same_mailbox >= settings.mailbox_subscription_quota:
            raise GraphError(403, "ExtensionError",
                             "Operation: Create; Exception: [Status Code: Forbidden; Reason: The mailbox has reached "
                             f"its limit of {settings.mailbox_subscription_quota} active subscriptions.]")
        return
    user_subs = [s for s in live if s.target.kind == USERS]
    if sum(1 for s in user_subs if s.application_id == caller.app.client_id) >= settings.user_subscriptions_per_app:
        raise GraphError(403, "Forbidden", "Subscription quota exceeded: an application can have at most "
                         f"{settings.user_subscriptions_per_app} user subscriptions in a tenant.")
    if len(user_subs) >= settings.user_subscriptions_per_tenant:
        raise GraphError(403, "Forbidden", "Subscription quota exceeded: a tenant can have at most "
                         f"{settings.user_subscriptions_per_tenant} user subscriptions.")


def _own_subscription(ctx: Ctx, caller: Caller) -> Subscription:
    """The caller's live subscription, else Graph's 404 (also for another app's id)."""
    with ctx.world.lock:
        sub = store_of(caller.tenant).get(ctx.params["subscription_id"], ctx.world.clock.now())
        if sub is None or sub.application_id != caller.app.client_id:
            raise GraphError(404, "ResourceNotFound", "The object was not found.")
        return sub


def _body_object(ctx: Ctx) -> dict[str, Any]:
    body = ctx.json()
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "The request body must be a JSON object.")
    return body


# ---- create -------------------------------------------------------------------------------------------

def create_subscription(ctx: Ctx) -> Response:
    caller = authorize(ctx, [])
    world, tenant = ctx.world, caller.tenant
    settings = notification_settings(world)
    body = _body_object(ctx)
    for name in REQUIRED:
        if body.get(name) in (None, ""):
            raise GraphError(400, "InvalidRequest", _required_message(name))
    if not isinstance(body["resource"], str):
        raise GraphError(400, "InvalidRequest", "Invalid 'resource' value.")
    notification_url = outbound.check_endpoint_url(body["notificationUrl"], "notificationUrl", settings)
    lifecycle_url = None
    if body.get("lifecycleNotificationUrl") not in (None, ""):
        lifecycle_url = outbound.check_endpoint_url(body["lifecycleNotificationUrl"], "lifecycleNotificationUrl", settings)
    client_state = body.get("clientState")
    if client_state is not None and (not isinstance(client_state, str) or len(client_state) > CLIENT_STATE_MAX):
        raise GraphError(400, "InvalidRequest",
                         f"The 'clientState' value must be a string of at most {CLIENT_STATE_MAX} characters.")
    tls_version = body.get("latestSupportedTlsVersion") or "v1_2"
    if tls_version not in TLS_VERSIONS:
        raise GraphError(400, "InvalidRequest", f"Invalid 'latestSupportedTlsVersion' value: '{tls_version}'.")
    if body.get("includeResourceData"):
        raise GraphError(400, "InvalidRequest", "includeResourceData requires encryptionCertificate and "
                         "encryptionCertificateId; rich notifications are not emulated.")
    if body.get("notificationContentType") not in (None, "application/json"):
        raise GraphError(400, "InvalidRequest", "Only 'application/json' is supported for notificationContentType.")

    with world.lock:
        now = world.clock.now()
        target = parse_resource(tenant, body["resource"])
        change_type = parse_change_types(body["changeType"], target)
        _require_permission(caller, target)
        _expiry(body["expirationDateTime"], target, now, settings)
        _check_conflicts(tenant, caller, target, change_type, now, settings)

    handshake.validate_endpoint(world, notification_url, tenant.id, ctx.request_id)
    if lifecycle_url:
        handshake.validate_endpoint(world, lifecycle_url, tenant.id, ctx.request_id)

    with world.lock:
        now = world.clock.now()
        _check_conflicts(tenant, caller, target, change_type, now, settings)
        sub = Subscription(
            id=new_subscription_id(), tenant_id=tenant.id, application_id=caller.app.client_id,
            creator_id=creator_id_for(tenant, caller.app.client_id), resource=body["resource"], target=target,
            change_type=change_type, notification_url=notification_url, lifecycle_url=lifecycle_url,
            client_state=client_state, expires_at=_expiry(body["expirationDateTime"], target, now, settings),
            created_at=now, tls_version=tls_version,
            immutable_ids=(ctx.prefer("IdType") or "").lower() == "immutableid",
            resource_form=choose_resource_form(settings.resource_form, settings.form_draw),
        )
        store_of(tenant).by_id[sub.id] = sub
        rendered = sub.to_graph(world.base_url)
    delivery_service(world).ensure_running()
    # OData answers a create with the new entity's address (subscription-post-subscriptions).
    return json_response(rendered, status=201, headers={"Location": f"{world.base_url}/v1.0/subscriptions/{sub.id}"})


# ---- read ---------------------------------------------------------------------------------------------

def _encode_skip(position: int) -> str:
    return b64url(f"subscriptions:{position}".encode())


def _decode_skip(token: str) -> int:
    try:
        text = b64url_decode(token).decode()
        label, _, number = text.partition(":")
        if label != "subscriptions":
            raise ValueError(token)
        return int(number)
    except ValueError:
        raise GraphError(400, "BadRequest", "Invalid skip token.") from None


def list_subscriptions(ctx: Ctx) -> Response:
    """With application permissions Graph lists only the subscriptions the calling app created."""
    caller = authorize(ctx, [])
    world = ctx.world
    settings = notification_settings(world)
    skip_token = ctx.request.args.get("$skiptoken")
    start = _decode_skip(skip_token) if skip_token else 0
    with world.lock:
        mine = [s for s in store_of(caller.tenant).active(world.clock.now())
                if s.application_id == caller.app.client_id]
        page = mine[start:start + settings.list_page_size]
        body: dict[str, Any] = {
            "@odata.context": f"{world.base_url}/v1.0/$metadata#subscriptions",
            "value": [s.to_graph(world.base_url, with_context=False) for s in page],
        }
        if start + len(page) < len(mine):
            body["@odata.nextLink"] = f"{world.base_url}/v1.0/subscriptions?$skiptoken={_encode_skip(start + len(page))}"
    return json_response(body)


def get_subscription(ctx: Ctx) -> Response:
    caller = authorize(ctx, [])
    sub = _own_subscription(ctx, caller)
    with ctx.world.lock:
        return json_response(sub.to_graph(ctx.world.base_url))


# ---- change -------------------------------------------------------------------------------------------

def update_subscription(ctx: Ctx) -> Response:
    """Renew (expirationDateTime) and/or move (notificationUrl, validated first); renewing also
    reauthorizes. lifecycleNotificationUrl can only be set at creation."""
    caller = authorize(ctx, [])
    world = ctx.world
    settings = notification_settings(world)
    body = _body_object(ctx)
    sub = _own_subscription(ctx, caller)
    if "lifecycleNotificationUrl" in body and body["lifecycleNotificationUrl"] != sub.lifecycle_url:
        raise GraphError(400, "InvalidRequest",
                         "lifecycleNotificationUrl can only be set when the subscription is created.")
    for name, attribute in FIXED_ON_PATCH.items():
        if name in body and (attribute is None and body[name] or attribute and body[name] != getattr(sub, attribute)):
            raise GraphError(400, "InvalidRequest", f"'{name}' cannot be updated; only expirationDateTime and "
                             "notificationUrl can be changed.")
    if body.get("expirationDateTime") is None and body.get("notificationUrl") is None:
        raise GraphError(400, "InvalidRequest", "The request must include expirationDateTime or notificationUrl.")
    _require_permission(caller, sub.target, "Update")
    new_url = None
    if body.get("notificationUrl") is not None:
        new_url = outbound.check_endpoint_url(body["notificationUrl"], "notificationUrl", settings)
    with world.lock:
        if body.get("expirationDateTime") is not None:
            _expiry(body["expirationDateTime"], sub.target, world.clock.now(), settings)
    if new_url and new_url != sub.notification_url:
        handshake.validate_endpoint(world, new_url, caller.tenant.id, ctx.request_id)
    with world.lock:
        sub = _own_subscription(ctx, caller)
        now = world.clock.now()
        if body.get("expirationDateTime") is not None:
            sub.expires_at = _expiry(body["expirationDateTime"], sub.target, now, settings)
            sub.reauthorized_at = now
        if new_url:
            sub.notification_url = new_url
        rendered = sub.to_graph(world.base_url)
    return json_response(rendered)


def delete_subscription(ctx: Ctx) -> Response:
    caller = authorize(ctx, [])
    sub = _own_subscription(ctx, caller)
    with ctx.world.lock:
        store_of(caller.tenant).by_id.pop(sub.id, None)
    return no_content()


def reauthorize_subscription(ctx: Ctx) -> Response:
    """204, expiry unchanged; the app must still hold the permission the resource needs."""
    caller = authorize(ctx, [])
    sub = _own_subscription(ctx, caller)
    _require_permission(caller, sub.target, "Reauthorize")
    with ctx.world.lock:
        sub.reauthorized_at = ctx.world.clock.now()
    return no_content()


def register(app: EmulatorApp) -> None:
    app.route("/v1.0/subscriptions", ["POST"], create_subscription, name="subscriptions.create")
    app.route("/v1.0/subscriptions", ["GET"], list_subscriptions, name="subscriptions.list")
    app.route("/v1.0/subscriptions/<subscription_id>", ["GET"], get_subscription, name="subscriptions.get")
    app.route("/v1.0/subscriptions/<subscription_id>", ["PATCH"], update_subscription, name="subscriptions.update")
    app.route("/v1.0/subscriptions/<subscription_id>", ["DELETE"], delete_subscription, name="subscriptions.delete")
    app.route("/v1.0/subscriptions/<subscription_id>/reauthorize", ["POST"], reauthorize_subscription,
              name="subscriptions.reauthorize")
