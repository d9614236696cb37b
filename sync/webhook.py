"""Checking Graph's change and lifecycle notifications before anything is queued.

Anyone can POST to the webhook URL, so nothing in a notification is believed until it matches a
subscription we made: a known subscription id, its clientState (compared in constant time with
the sha256 we stored; the plaintext is never kept), the tenant of that subscription's
integration, and a resource naming an item of that subscription's mailbox in one of Graph's
documented forms. Accepted items carry only ids: the worker re-reads the event from Graph.

Subscription look-ups go through a small in-memory cache (positive and negative), so a post of
100 notifications reads each distinct subscription at most once and a flood of forged ids costs
one read per id per minute at most.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from sync.room_events import valid_graph_id
from sync.store.assets_repo import SubscriptionLink

MAX_BODY_BYTES = 1024 * 1024
MAX_ITEMS_PER_MESSAGE = 50
CHANGE_TYPES = frozenset({"created", "updated", "deleted"})
LIFECYCLE_EVENTS = frozenset({"reauthorizationRequired", "subscriptionRemoved", "missed"})

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Users/{id}/Events/{id}, users/{id}@{tenant}/events/{id}, Users('{id}')/Events('{id}')
_RESOURCE = re.compile(r"^/?users(?:\('(?P<q_user>[^'/]+)'\)|/(?P<user>[^/]+))"
                       r"/events(?:\('(?P<q_event>[^']+)'\)|/(?P<event>.+))$", re.IGNORECASE)


class BadNotificationPost(ValueError):
    """The post as a whole is malformed (answered 400, nothing queued)."""


def client_state_hash(client_state: str) -> str:
    return hashlib.sha256(client_state.encode("utf-8")).hexdigest()


def is_guid(value: object) -> bool:
    return isinstance(value, str) and bool(_GUID.match(value))


def event_id_of(resource: object) -> str | None:
    """The event id named by a notification's `resource`, in any documented spelling."""
    if not isinstance(resource, str) or len(resource) > 2048:
        return None
    match = _RESOURCE.match(resource)
    if match is None:
        return None
    event_id = match.group("q_event") or match.group("event")
    # Outlook ids may hold `/`, so the id is the rest of the path; it may never climb out of it.
    return event_id if valid_graph_id(event_id) and ".." not in event_id else None


@dataclass
class Checked:
    accepted: list[dict[str, str]] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
    links: dict[str, SubscriptionLink] = field(default_factory=dict)

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1


def parse_post(body: bytes) -> list[Any]:
    if len(body) > MAX_BODY_BYTES:
        raise BadNotificationPost(f"the body is over {MAX_BODY_BYTES} bytes")
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadNotificationPost("the body is not JSON") from None
    if not isinstance(document, dict):
        raise BadNotificationPost("the body is not a JSON object")
    items = document.get("value")
    if not isinstance(items, list):
        raise BadNotificationPost("`value` is not a list")
    return items


def _trusted(item: Any, lookup: Callable[[str], SubscriptionLink | None], checked: Checked) -> SubscriptionLink | None:
    if not isinstance(item, dict):
        checked.reject("not_an_object")
        return None
    subscription_id = item.get("subscriptionId")
    if not is_guid(subscription_id):
        checked.reject("bad_subscription_id")
        return None
    link = lookup(subscription_id.lower())
    if link is None:
        checked.reject("unknown_subscription")
        return None
    client_state = item.get("clientState")
    if not isinstance(client_state, str) or len(client_state) > 256 or not hmac.compare_digest(
            client_state_hash(client_state), link.client_state_hash):
        checked.reject("client_state_mismatch")
        return None
    tenant = item.get("tenantId") or item.get("organizationId")
    if not isinstance(tenant, str) or tenant.lower() != link.tenant_id.lower():
        checked.reject("tenant_mismatch")
        return None
    return link


def check_changes(items: list[Any], lookup: Callable[[str], SubscriptionLink | None]) -> Checked:
    checked = Checked()
    seen: set[tuple[str, str]] = set()
    for item in items:
        link = _trusted(item, lookup, checked)
        if link is None:
            continue
        change = item.get("changeType")
        if not isinstance(change, str) or not set(change.split(",")) <= CHANGE_TYPES:
            checked.reject("bad_change_type")
            continue
        event_id = event_id_of(item.get("resource"))
        data = item.get("resourceData")
        data_id = data.get("id") if isinstance(data, dict) else None
        # resourceData.id obeys the resource's rule: it may never climb out of the mailbox's events.
        if data_id is not None and (not valid_graph_id(data_id) or ".." in data_id
                                    or (event_id and data_id != event_id)):
            checked.reject("bad_resource")
            continue
        event_id = event_id or data_id
        if event_id is None:
            checked.reject("bad_resource")
            continue
        checked.links[link.subscription_id] = link
        if (link.subscription_id, event_id) in seen:
            continue  # Graph's created+updated pair for one item: one re-read is enough
        seen.add((link.subscription_id, event_id))
        checked.accepted.append({"integration_id": link.integration_id, "asset_id": link.asset_id,
                                 "subscription_id": link.subscription_id, "event_id": event_id,
                                 "change_type": change})
    return checked


def check_lifecycle(items: list[Any], lookup: Callable[[str], SubscriptionLink | None]) -> Checked:
    checked = Checked()
    for item in items:
        link = _trusted(item, lookup, checked)
        if link is None:
            continue
        kind = item.get("lifecycleEvent")
        if not isinstance(kind, str) or kind not in LIFECYCLE_EVENTS:  # a list or object is unhashable
            checked.reject("unknown_lifecycle_event")
            continue
        checked.links[link.subscription_id] = link
        checked.accepted.append({"integration_id": link.integration_id, "asset_id": link.asset_id,
                                 "subscription_id": link.subscription_id, "lifecycle_event": kind})
    return checked


def messages_of(accepted: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Queue messages of at most MAX_ITEMS_PER_MESSAGE items each."""
    return [{"items": accepted[start:start + MAX_ITEMS_PER_MESSAGE], "deferrals": 0}
            for start in range(0, len(accepted), MAX_ITEMS_PER_MESSAGE)]


class SubscriptionCache:
    """Subscription links by id, kept for `ttl` seconds (unknown ids for `negative_ttl`)."""

    def __init__(self, load: Callable[[str], SubscriptionLink | None], *, ttl: float = 60.0,
                 negative_ttl: float = 15.0, max_entries: int = 20_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._load = load
        self._ttl, self._negative_ttl = ttl, negative_ttl
        self._max = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[float, SubscriptionLink | None]] = {}
        self._lock = threading.Lock()

    def get(self, subscription_id: str) -> SubscriptionLink | None:
        now = self._clock()
        with self._lock:
            entry = self._entries.get(subscription_id)
            if entry is not None and entry[0] > now:
                return entry[1]
        link = self._load(subscription_id)
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[subscription_id] = (now + (self._ttl if link else self._negative_ttl), link)
        return link

    def forget(self, subscription_id: str) -> None:
        with self._lock:
            self._entries.pop(subscription_id, None)

    def remember(self, link: SubscriptionLink) -> None:
        with self._lock:
            self._entries[link.subscription_id] = (self._clock() + self._ttl, link)


def summary(checked: Checked) -> Mapping[str, Any]:
    return {"accepted": len(checked.accepted), "rejected": dict(checked.rejected)}
