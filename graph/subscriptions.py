"""Change-notification subscriptions: create, renew, reauthorize, delete, list.

https://learn.microsoft.com/en-us/graph/api/resources/subscription
Lifetimes: Outlook events/messages/contacts up to 10,080 minutes, users and other directory
resources up to 41,760. Enforcement has moved over time (live tenants have answered
"can only be 10070 minutes in the future"), so we ask for the documented maximum less a margin and,
when Graph names a lower maximum, ask once more just under it.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterator

from graph.errors import BadRequest, NotFound
from graph.paths import segment

if TYPE_CHECKING:
    from graph.client import GraphClient

log = logging.getLogger("roomsync.graph.subscriptions")

OUTLOOK_MAX_MINUTES = 10_080
DIRECTORY_MAX_MINUTES = 41_760
# Stay this far below a maximum: clocks differ and the request takes time to arrive.
SAFETY_MARGIN_MINUTES = 5
# How far our clock may run ahead of Graph's before a renewal is refused outright.
CLOCK_AHEAD_ALLOWANCE_MINUTES = 60
# Graph raises shorter expiries to 45 minutes anyway.
MIN_MINUTES = 45

_MINUTES = re.compile(r"can only be\s+(\d+)\s+minutes", re.IGNORECASE)
# Teams-style "... beyond allowed max '3.00:00:00'" (d.hh:mm:ss).
_TIMESPAN = re.compile(r"max(?:imum)?\s*'(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})'", re.IGNORECASE)


def documented_max_minutes(resource: str) -> int:
    """Longest documented lifetime for a resource path."""
    path = resource.strip("/").lower()
    if path.startswith(("users", "me")) and any(part in path for part in (
            "/events", "/messages", "/contacts", "/calendar", "/mailfolders")):
        return OUTLOOK_MAX_MINUTES
    if path.startswith(("users", "groups", "directory")):
        return DIRECTORY_MAX_MINUTES
    return OUTLOOK_MAX_MINUTES


def max_minutes_from_error(message: str) -> int | None:
    """The maximum Graph names when it rejects an expiry, in minutes."""
    found = _MINUTES.search(message)
    if found:
        return int(found.group(1))
    span = _TIMESPAN.search(message)
    if span:
        days, hours, minutes, _ = (int(g) if g else 0 for g in span.groups())
        return days * 1440 + hours * 60 + minutes
    return None


def _expiry(now: datetime, minutes: int) -> str:
    moment = (now + timedelta(minutes=max(minutes, MIN_MINUTES))).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def _with_clamp(client: "GraphClient", resource: str, lifetime_minutes: int | None,
                send: Callable[[str], dict]) -> dict:
    """Sends with the given lifetime (by default the documented maximum less the margin); on
    "can only be N minutes" retries with N - margin, and once more an hour shorter when Graph
    refuses even that (our clock runs ahead of Graph's)."""
    minutes = lifetime_minutes or documented_max_minutes(resource) - SAFETY_MARGIN_MINUTES
    try:
        return send(_expiry(client.clock(), minutes))
    except BadRequest as error:
        allowed = max_minutes_from_error(error.message)
        if allowed is None:
            raise
    clamped = max(MIN_MINUTES, allowed - SAFETY_MARGIN_MINUTES)
    if clamped < minutes:
        log.info("subscription lifetime %d min refused; Graph allows %d, retrying with %d",
                 minutes, allowed, clamped)
        try:
            return send(_expiry(client.clock(), clamped))
        except BadRequest as error:
            if max_minutes_from_error(error.message) is None:
                raise
    # Refused although within Graph's maximum by our clock: ours runs ahead of Graph's.
    behind = max(MIN_MINUTES, min(clamped, minutes) - CLOCK_AHEAD_ALLOWANCE_MINUTES)
    log.warning("subscription lifetime refused within Graph's maximum of %d min (our clock runs ahead?); "
                "retrying with %d", allowed, behind)
    return send(_expiry(client.clock(), behind))


def _is_outlook(resource: str) -> bool:
    return documented_max_minutes(resource) == OUTLOOK_MAX_MINUTES


def create_subscription(client: "GraphClient", *, resource: str, change_type: str,
                        notification_url: str, client_state: str,
                        lifecycle_notification_url: str | None = None,
                        lifetime_minutes: int | None = None) -> dict:
    """Creates a subscription with the longest lifetime Graph accepts (201 + subscription).

    Graph validates the notification URL(s) before answering (a 400 ValidationError/
    InvalidRequest when the endpoint does not echo the token within 10 s).

    Not retry-safe: subscriptions have no transactionId, so a second POST after a timeout or a
    5xx could leave two subscriptions. Such a failure raises OutcomeUnknown; resolve it with
    `list_subscriptions` (match resource and notificationUrl) before creating again."""
    if len(client_state) > 128:
        raise ValueError("clientState is limited to 128 characters")
    body: dict[str, Any] = {
        "changeType": change_type,
        "notificationUrl": notification_url,
        "resource": resource,
        "clientState": client_state,
    }
    if lifecycle_notification_url:
        body["lifecycleNotificationUrl"] = lifecycle_notification_url
    # Immutable ids in notifications, matching what our event calls read.
    headers = {"Prefer": 'IdType="ImmutableId"'} if _is_outlook(resource) else None

    def send(expiry: str) -> dict:
        return client.post("/subscriptions", {**body, "expirationDateTime": expiry}, headers=headers).json()

    return _with_clamp(client, resource, lifetime_minutes, send)


def renew_subscription(client: "GraphClient", subscription_id: str, *, resource: str,
                       lifetime_minutes: int | None = None) -> dict:
    """Extends the expiry (PATCH, 200 + subscription); this also reauthorizes it.

    NotFound means the subscription is gone (expired or removed): create a new one and resync.
    Declared retry-safe: the PATCH sets one absolute value that only this app writes, so a second
    copy leaves the same state as one."""

    def send(expiry: str) -> dict:
        return client.patch(f"/subscriptions/{segment(subscription_id)}",
                            {"expirationDateTime": expiry}, retry_safe=True).json()

    return _with_clamp(client, resource, lifetime_minutes, send)


def reauthorize_subscription(client: "GraphClient", subscription_id: str) -> None:
    """Answers a reauthorizationRequired lifecycle event (204). Do not also renew the same
    subscription within 10 minutes; a renewal reauthorizes by itself.
    Declared retry-safe: reauthorizing twice leaves the same state as once."""
    client.post(f"/subscriptions/{segment(subscription_id)}/reauthorize", retry_safe=True)


def delete_subscription(client: "GraphClient", subscription_id: str) -> bool:
    """True if deleted now, False if it was already gone."""
    try:
        client.delete(f"/subscriptions/{segment(subscription_id)}")
    except NotFound:
        return False
    return True


def get_subscription(client: "GraphClient", subscription_id: str) -> dict:
    return client.get(f"/subscriptions/{segment(subscription_id)}")


def list_subscriptions(client: "GraphClient") -> Iterator[dict]:
    """Subscriptions this app created (paged)."""
    return client.items("/subscriptions")

