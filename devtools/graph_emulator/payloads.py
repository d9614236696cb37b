"""The JSON items Graph POSTs to notification endpoints (GRAPH.md §2.3 and §2.7).

Change notifications are basic ones (ids only, no resource data): `resource` and `@odata.id`
use Graph's PascalCase form `Users/{user-id}/Events/{event-id}`, with the user's object id
whatever alias the subscription was created with. Lifecycle notifications come in the
documented shape (`tenantId`) or the shape observed in 2026 (`organizationId` plus `resource`,
`resourceData`, `encryptedContent`, `resourceChangeType`).
"""
from __future__ import annotations

from typing import Any

from devtools.graph_emulator.clock import graph_datetime
from devtools.graph_emulator.state import Change
from devtools.graph_emulator.subscription_model import EVENTS, Subscription


def change_notification(sub: Subscription, change: Change, user_id: str) -> dict[str, Any]:
    if change.kind == EVENTS:
        resource = f"Users/{user_id}/Events/{change.item_id}"
        resource_data: dict[str, Any] = {"@odata.type": "#Microsoft.Graph.Event", "@odata.id": resource}
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

