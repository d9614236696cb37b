"""Subscriptions as the emulator stores them: what they watch, where notifications go, and how
they render as Graph's `subscription` resource.

Kept per tenant in `Tenant.areas["subscriptions"]`. Expired subscriptions are removed the next
time anyone looks (Graph deletes them; a later GET/PATCH answers 404).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from devtools.graph_emulator.clock import graph_datetime
from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.state import Change, Tenant, World

AREA = "subscriptions"
EVENTS = "events"
USERS = "users"
CHANGE_TYPES = ("created", "updated", "deleted")
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")
# change-notifications-lifecycle-events: reauthorizationRequired is sent for every resource, but
# subscriptionRemoved and missed only for Outlook resources (message, event, contact): a users
# subscription never receives them.
LIFECYCLE_EVENTS_BY_KIND = {EVENTS: LIFECYCLE_EVENTS, USERS: ("reauthorizationRequired",)}


@dataclass(frozen=True)
class Target:
    """What a subscription watches: one mailbox's events, one user, or every user (user_id None)."""
    kind: str
    user_id: str | None


@dataclass
class Subscription:
    id: str
    tenant_id: str
    application_id: str
    creator_id: str
    resource: str  # as the client sent it; Graph echoes it back
    target: Target
    change_type: str  # normalized comma-separated text, e.g. "created,updated"
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expires_at: datetime
    created_at: datetime
    tls_version: str = "v1_2"
    immutable_ids: bool = False
    reauthorized_at: datetime | None = None
    # Expiry for which the automatic reauthorizationRequired event was already queued.
    reauthorization_notice_for: datetime | None = None
    # How event notifications spell `resource` ("path", "tenant" or "key"; see payloads).
    resource_form: str = "path"

    @property
    def change_types(self) -> frozenset[str]:
        return frozenset(self.change_type.split(","))

    def is_active(self, now: datetime) -> bool:
        return self.expires_at > now

    def receives_lifecycle_event(self, event: str) -> bool:
        return event in LIFECYCLE_EVENTS_BY_KIND.get(self.target.kind, LIFECYCLE_EVENTS)

    def watches(self, change: Change, user_id: str | None) -> bool:
        """Same kind, same mailbox/user (or all users), and the change type was asked for.
        Directory creations arrive as `updated` (users accept only updated/deleted)."""
        if change.kind != self.target.kind:
            return False
        change_type = change.change_type
        if self.target.kind == USERS and change_type == "created":
            change_type = "updated"
        if change_type not in self.change_types:
            return False
        return self.target.user_id is None or self.target.user_id == user_id

    def to_graph(self, base_url: str, with_context: bool = True) -> dict:
        body = {
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.application_id,
            "changeType": self.change_type,
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": graph_datetime(self.expires_at),
            "creatorId": self.creator_id,
            "includeResourceData": False,
            "latestSupportedTlsVersion": self.tls_version,
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
            "notificationContentType": "application/json",
        }
        if with_context:
            body = {"@odata.context": f"{base_url}/v1.0/$metadata#subscriptions/$entity", **body}
        return body

    def to_control(self) -> dict:
        """Everything the emulator knows, for tests and operators."""
        body = self.to_graph("", with_context=False)
        body.update({
            "tenantId": self.tenant_id,
            "targetKind": self.target.kind,
            "targetUserId": self.target.user_id,
            "createdDateTime": graph_datetime(self.created_at),
            "immutableIds": self.immutable_ids,
            "reauthorizedDateTime": graph_datetime(self.reauthorized_at) if self.reauthorized_at else None,
            "resourceForm": self.resource_form,
        })
        return body


@dataclass
class SubscriptionStore:
    by_id: dict[str, Subscription] = field(default_factory=dict)

    def purge_expired(self, now: datetime) -> list[Subscription]:
        gone = [s for s in self.by_id.values() if not s.is_active(now)]
        for sub in gone:
            del self.by_id[sub.id]
        return gone

    def active(self, now: datetime) -> list[Subscription]:
        self.purge_expired(now)
        return list(self.by_id.values())

    def get(self, subscription_id: str, now: datetime) -> Subscription | None:
        self.purge_expired(now)
        return self.by_id.get(subscription_id)


def store_of(tenant: Tenant) -> SubscriptionStore:
    return tenant.area(AREA, SubscriptionStore)


def locate(world: World, subscription_id: str) -> tuple[Tenant, Subscription] | None:
    """Finds a live subscription in any tenant (control routes address them by id only)."""
    now = world.clock.now()
    with world.lock:
        for tenant in world.tenants.values():
            store = tenant.areas.get(AREA)
            if store is None:
                continue
            sub = store.get(subscription_id, now)
            if sub is not None:
                return tenant, sub
    return None


def new_subscription_id() -> str:
    return str(uuid.uuid4())


def creator_id_for(tenant: Tenant, client_id: str) -> str:
    """The app's service-principal object id, as carried in its tokens' `oid` claim."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant.id}/{client_id}"))


# ---- resource parsing -----------------------------------------------------------------------------

def parse_resource(tenant: Tenant, resource: str) -> Target:
    """Resolves the documented resources: `users/{id|upn}/events`, `users`, `users/{id}`
    (leading slash optional, case-insensitive). `me/...` needs a signed-in user, which app-only
    tokens lack. Calendar-scoped paths are not in Graph's supported-resources table, so they
    are refused rather than guessed at."""
    text = resource.strip()
    if "?" in text:
        raise GraphError(400, "InvalidRequest", f"Query options are not supported on resource '{resource}'.")
    parts = [p for p in text.strip("/").split("/")]
    lowered = [p.lower() for p in parts]
    if lowered and lowered[0] == "me":
        raise GraphError(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
    if lowered == ["users"]:
        return Target(USERS, None)
    if len(parts) == 2 and lowered[0] == "users" and parts[1]:
        user = tenant.find_user(parts[1])
        if user is None:
            raise GraphError(404, "Request_ResourceNotFound",
                             f"Resource '{parts[1]}' does not exist or one of its queried reference-property "
                             "objects are not present.")
        return Target(USERS, user.id)
    if len(parts) == 3 and lowered[0] == "users" and lowered[2] == "events" and parts[1]:
        user = tenant.find_user(parts[1])
        if user is None:
            raise GraphError(404, "ExtensionError",
                             f"Operation: Create; Exception: [Status Code: NotFound; Reason: The requested user "
                             f"'{parts[1]}' is invalid.]")
        if not user.has_mailbox:
            raise GraphError(404, "ExtensionError",
                             "Operation: Create; Exception: [Status Code: NotFound; Reason: REST API is not yet "
                             "supported for this mailbox.]")
        return Target(EVENTS, user.id)
    raise GraphError(400, "InvalidRequest",
                     f"Resource '{resource}' is not supported. Supported resources: users/{{id}}/events, "
                     "users, users/{id}.")


def parse_change_types(text: object, target: Target) -> str:
    """Comma-separated created/updated/deleted; users refuse `created` (observed 400)."""
    if not isinstance(text, str) or not text.strip():
        raise GraphError(400, "InvalidRequest", "Invalid 'changeType' attribute: ''.")
    wanted: list[str] = []
    for raw in text.split(","):
        value = raw.strip()
        if value.lower() not in CHANGE_TYPES or (target.kind == USERS and value.lower() == "created"):
            raise GraphError(400, "InvalidRequest", f"Invalid 'changeType' attribute: '{value}'.")
        if value.lower() not in wanted:
            wanted.append(value.lower())
    return ",".join(wanted)
