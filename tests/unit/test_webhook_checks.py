"""Checks of Graph's notifications before anything is queued (sync/webhook.py), pure."""
from __future__ import annotations

import json

import pytest

from sync.store.assets_repo import SubscriptionLink
from sync.webhook import (
    BadNotificationPost, SubscriptionCache, check_changes, check_lifecycle, client_state_hash, event_id_of,
    messages_of, parse_post,
)

SUB = "7f105c7d-2dc5-4530-97cd-4e7ae6534c07"
TENANT = "84bd8158-6d4d-4958-8b9f-9d6445542f95"
LINK = SubscriptionLink(subscription_id=SUB, integration_id="i-1", tenant_id=TENANT, asset_id="a-1",
                        mailbox="room@contoso.example", client_state_hash=client_state_hash("right-state"),
                        expires_at=None)


def lookup(subscription_id: str):
    return LINK if subscription_id == SUB else None


def item(**changes):
    base = {"subscriptionId": SUB, "clientState": "right-state", "changeType": "updated", "tenantId": TENANT,
            "resource": "Users/9c2f/Events/AAMkAbC/1+x=", "resourceData": {"id": "AAMkAbC/1+x="}}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize("resource", [
    "Users/9c2f-1/Events/AAMkAbC=",
    "users/9c2f-1@84bd8158-6d4d-4958-8b9f-9d6445542f95/events/AAMkAbC=",
    "Users('9c2f-1')/Events('AAMkAbC=')",
])
def test_every_documented_resource_form_names_the_event(resource):
    """https://learn.microsoft.com/en-us/graph/outlook-change-notifications-overview (resource forms)."""
    assert event_id_of(resource) == "AAMkAbC="


def test_outlook_ids_with_slashes_are_read_whole():
    assert event_id_of("Users/9c2f/Events/AAMkAbC/1+x=") == "AAMkAbC/1+x="


@pytest.mark.parametrize("resource", ["Users/x/Events/../../admin", "Users/x/Messages/AAMk=", "Users/x/Events/a\x00b",
                                      "Users/x/Events/", 5, None, "Users/x/Events/" + "A" * 600])
def test_hostile_resources_name_nothing(resource):
    assert event_id_of(resource) is None


def test_a_good_notification_is_accepted_once_even_when_graph_pairs_created_and_updated():
    checked = check_changes([item(changeType="created"), item(changeType="updated")], lookup)
    assert [a["event_id"] for a in checked.accepted] == ["AAMkAbC/1+x="]
    assert checked.accepted[0]["integration_id"] == "i-1" and not checked.rejected


@pytest.mark.parametrize("bad, reason", [
    (item(clientState="wrong"), "client_state_mismatch"),
    (item(clientState=None), "client_state_mismatch"),
    (item(subscriptionId="7f105c7d-2dc5-4530-97cd-000000000000"), "unknown_subscription"),
    (item(subscriptionId="../etc"), "bad_subscription_id"),
    (item(tenantId="00000000-0000-0000-0000-000000000000"), "tenant_mismatch"),
    (item(changeType="created,exploded"), "bad_change_type"),
    (item(resource="Users/x/Events/AAMkOther=", resourceData={"id": "AAMkAbC/1+x="}), "bad_resource"),
    (item(resource="nonsense", resourceData=None), "bad_resource"),
    ("a string", "not_an_object"),
])
def test_each_kind_of_bad_item_is_refused_and_counted(bad, reason):
    checked = check_changes([bad, item()], lookup)
    assert checked.rejected == {reason: 1}
    assert len(checked.accepted) == 1


def test_lifecycle_events_are_checked_the_same_way():
    good = item(lifecycleEvent="subscriptionRemoved", changeType=None, resource=None, resourceData=None)
    checked = check_lifecycle([good, {**good, "clientState": "x"}, {**good, "lifecycleEvent": "boom"}], lookup)
    assert [a["lifecycle_event"] for a in checked.accepted] == ["subscriptionRemoved"]
    assert checked.rejected == {"client_state_mismatch": 1, "unknown_lifecycle_event": 1}


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"value": {}}', b"\xff\xfe", b"[" * 100000 + b"]" * 100000,
                                  b'{"value": [' + b" " * (1024 * 1024) + b"]}"])
def test_malformed_posts_are_refused_whole(body):
    with pytest.raises(BadNotificationPost):
        parse_post(body)


def test_posts_are_cut_into_messages_of_at_most_fifty_items():
    accepted = [{"event_id": str(n)} for n in range(120)]
    messages = messages_of(accepted)
    assert [len(m["items"]) for m in messages] == [50, 50, 20]
    assert all(len(json.dumps(m)) < 48 * 1024 for m in messages)


def test_the_cache_reads_each_subscription_once_and_forgets_on_request():
    reads = []
    now = [0.0]
    cache = SubscriptionCache(lambda sid: reads.append(sid) or lookup(sid), ttl=60, negative_ttl=10,
                              clock=lambda: now[0])
    for _ in range(100):
        cache.get(SUB)
        cache.get("unknown")
    assert reads == [SUB, "unknown"]
    now[0] = 11
    cache.get("unknown")
    cache.forget(SUB)
    cache.get(SUB)
    assert reads == [SUB, "unknown", "unknown", SUB]
