"""The JSON items Graph POSTs to notification endpoints (GRAPH.md §2.3 and §2.7).

Change notifications are basic ones (ids only, no resource data), each with its own `id`. For
events, `resource` and `@odata.id` come in one of the forms Graph's pages print, fixed per
subscription (`Subscription.resource_form`), always with the user's object id whatever alias
the subscription was created with:
- "path":   `Users/{user-id}/Events/{event-id}` for both;
- "tenant": `users/{user-id}@{tenant-id}/events/{event-id}`, `@odata.id`
  `Users/{user-id}@{tenant-id}/Events/{event-id}` (the webhooks page's sample);
- "key":    `Users('{user-id}')/Events('{event-id}')` for both (the resource-data sample).
Clients must take the event id from `resourceData.id`, never by cutting up `resource`.
Users notifications carry `Users/{user-id}`. Lifecycle notifications come in the documented
shape (`tenantId`) or the shape observed in 2026 (`organizationId` plus `resource`,
`resourceData`, `encryptedContent`, `resourceChangeType`).
"""
from __future__ import annotations

import base64
import os
import random
from typing import Any

from devtools.graph_emulator.clock import graph_datetime
from devtools.graph_emulator.state import Change
from devtools.graph_emulator.subscription_model import EVENTS, Subscription

RESOURCE_FORMS = ("path", "tenant", "key")


def choose_resource_form(setting: str, draw: random.Random) -> str:
    """The form a new subscription's notifications use: the configured one, or ("random") one
    drawn from the world's seeded generator, so a run can be repeated."""
    return draw.choice(RESOURCE_FORMS) if setting == "random" else setting


def event_resource(form: str, tenant_id: str, user_id: str, event_id: str) -> tuple[str, str]:
    """(`resource`, `resourceData.@odata.id`) of an event notification in one documented form."""
    if form == "tenant":
        return (f"users/{user_id}@{tenant_id}/events/{event_id}", f"Users/{user_id}@{tenant_id}/Events/{event_id}")
    if form == "key":
        keyed = f"Users('{user_id}')/Events('{event_id}')"
        return keyed, keyed
    return f"Users/{user_id}/Events/{event_id}", f"Users/{user_id}/Events/{event_id}"


def notification_id() -> str:
    """An opaque id per notification, like the docs' `lsgTZMr9KwAAA`; copies of one notification
    (duplicate deliveries) keep it."""
    return base64.b64encode(os.urandom(9)).decode("ascii").replace("/", "_").replace("+", "-")


def change_notification(sub: Subscription, change: Change, user_id: str) -> dict[str, Any]:
    if change.kind == EVENTS:
        resource, odata_id = event_resource(sub.resource_form, sub.tenant_id, user_id, change.item_id)
        resource_data: dict[str, Any] = {"@odata.type": "#Microsoft.Graph.Event", "@odata.id": odata_id}
        if change.etag:
            resource_data["@odata.etag"] = change.etag if change.etag.startswith("W/") else f'W/"{change.etag}"'
        resource_data["id"] = change.item_id
        change_type = change.change_type
    else:
        resource = f"Users/{user_id}"
        resource_data = {"@odata.type": "#Microsoft.Graph.User", "@odata.id": resource, "id": user_id,
                         "organizationId": sub.tenant_id}
        # Directory creations are reported as updates (users accept only updated/deleted).
        change_type = "updated" if change.change_type == "created" else change.change_type
    return {
        "id": notification_id(),
        "subscriptionId": sub.id,
        "subscriptionExpirationDateTime": graph_datetime(sub.expires_at),
        "changeType": change_type,
        "resource": resource,
        "resourceData": resource_data,
        "clientState": sub.client_state,
        "tenantId": sub.tenant_id,
    }


def lifecycle_notification(sub: Subscription, event: str, variant: str = "tenantId") -> dict[str, Any]:
    item: dict[str, Any] = {
        "subscriptionId": sub.id,
        "subscriptionExpirationDateTime": graph_datetime(sub.expires_at),
    }
    if variant == "organizationId":
        item.update({
            "resource": f"Subscriptions/{sub.id}",
            "resourceData": {"@odata.id": f"subscriptions/{sub.id}", "@odata.type": "#microsoft.graph.subscription",
                             "id": sub.id},
            "encryptedContent": None,
            "resourceChangeType": None,
            "clientState": sub.client_state,
            "organizationId": sub.tenant_id,
            "lifecycleEvent": event,
        })
    else:
        item.update({"tenantId": sub.tenant_id, "clientState": sub.client_state, "lifecycleEvent": event})
    return item


def describe(item: dict[str, Any]) -> dict[str, Any]:
    """The short form of an item kept in the delivery log."""
    summary = {"subscriptionId": item.get("subscriptionId")}
    if "lifecycleEvent" in item:
        summary["lifecycleEvent"] = item["lifecycleEvent"]
    else:
        summary["changeType"] = item.get("changeType")
        summary["resource"] = item.get("resource")
    return summary

