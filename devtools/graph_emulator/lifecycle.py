"""Lifecycle events an operator (or a test) triggers: `reauthorizationRequired`,
`subscriptionRemoved` (which also removes the subscription, as Graph does) and `missed`.

They go to the subscription's lifecycleNotificationUrl through the delivery outbox. The
automatic ones (`missed` for lost notifications, `reauthorizationRequired` near expiry) are
raised by `delivery` itself. As documented, users subscriptions only ever get
`reauthorizationRequired`; asking for `missed` or `subscriptionRemoved` on one is a 400 here.
"""
from __future__ import annotations

from devtools.graph_emulator.delivery import delivery_service
from devtools.graph_emulator.errors import bad_request
from devtools.graph_emulator.state import Tenant, World
from devtools.graph_emulator.subscription_model import LIFECYCLE_EVENTS, Subscription, store_of

VARIANTS = ("tenantId", "organizationId")


def check_variant(variant: str | None) -> str | None:
    if variant is not None and variant not in VARIANTS:
        raise bad_request(f"variant must be one of {', '.join(VARIANTS)}")
    return variant


def send_lifecycle_event(world: World, tenant: Tenant, sub: Subscription, event: str,
                         variant: str | None = None) -> None:
    if event not in LIFECYCLE_EVENTS:
        raise bad_request(f"lifecycle_event must be one of {', '.join(LIFECYCLE_EVENTS)}")
    check_variant(variant)
    if not sub.lifecycle_url:
        raise bad_request(f"subscription {sub.id} has no lifecycleNotificationUrl; Graph would not send "
                          "lifecycle events for it")
    if not sub.receives_lifecycle_event(event):
        raise bad_request(f"Graph does not send {event} for {sub.target.kind} subscriptions (only for Outlook "
                          "resources)")
    delivery_service(world).queue_lifecycle(sub, event, variant)
    if event == "subscriptionRemoved":
        with world.lock:
            store_of(tenant).by_id.pop(sub.id, None)


def remove_subscription(world: World, tenant: Tenant, sub: Subscription, notify: bool,
                        variant: str | None = None) -> bool:
    """Removes a subscription as if Graph dropped it; with `notify` (and a lifecycle URL) the
    subscriber hears `subscriptionRemoved`. Returns whether an event was queued."""
    check_variant(variant)
    queued = False
    if notify and sub.lifecycle_url:
        queued = delivery_service(world).queue_lifecycle(sub, "subscriptionRemoved", variant)
    with world.lock:
        store_of(tenant).by_id.pop(sub.id, None)
    return queued
