"""Notification delivery and lifecycle events (GRAPH.md §2.3-2.4, §2.7, §7 items 15-18):
batched documented payloads, created+updated pairs, retries with back-off and the 4-hour window,
duplicate/reorder/delay/drop/slow/pause switches, the automatic slow state, and lifecycle
events in both payload variants."""
from __future__ import annotations

from tests.support.notification_fixtures import (  # noqa: F401 - fixtures
    control, error_of, graph, notification_emulator, paths, receiver, tenant,
)

ITEM_FIELDS = {"id", "subscriptionId", "subscriptionExpirationDateTime", "changeType", "resource", "resourceData",
               "clientState", "tenantId"}


def subscribe_room(graph, tenant, receiver, paths, lifecycle: bool = False, **kwargs) -> dict:
    extra = {"lifecycleNotificationUrl": receiver.url(paths["lifecycle"])} if lifecycle else {}
    return graph.subscribe(f"users/{tenant.rooms[0].email}/events", receiver.url(paths["notify"], code="k3y"),
                           **extra, **kwargs)


def outcomes(control, tenant, kind="notification") -> list[str]:
    return [entry["outcome"] for entry in control.deliveries(tenant.tenant_id, kind=kind)]


# ---- payloads and batching -------------------------------------------------------------------------

def test_created_and_updated_arrive_batched_in_the_documented_shape(graph, tenant, receiver, paths, control):
    control.settings(resource_form="path")  # the other forms: test_documented_behaviour.py
    sub = subscribe_room(graph, tenant, receiver, paths)
    room = tenant.rooms[0]

    control.publish(tenant.tenant_id, room.email, "created,updated", item_id="AAMkAD/x+y=", etag='W/"DwAAABYAAAB"')
    control.flush(tenant.tenant_id)

    [post] = receiver.wait_for(lambda: receiver.notifications(paths["notify"]))
    assert post.headers["Content-Type"].startswith("application/json")
    assert post.query == {"code": "k3y"}
    created, updated = post.json()["value"]
    assert [created["changeType"], updated["changeType"]] == ["created", "updated"]
    for item in (created, updated):
        assert set(item) == ITEM_FIELDS
        assert item["subscriptionId"] == sub["id"]
        assert item["subscriptionExpirationDateTime"] == sub["expirationDateTime"]
        assert item["clientState"] == sub["clientState"]
        assert item["tenantId"] == tenant.tenant_id
        assert item["id"] and item["resource"] == f"Users/{room.user_id}/Events/AAMkAD/x+y="
        assert item["resourceData"] == {"@odata.type": "#Microsoft.Graph.Event",
                                        "@odata.id": f"Users/{room.user_id}/Events/AAMkAD/x+y=",
                                        "@odata.etag": 'W/"DwAAABYAAAB"', "id": "AAMkAD/x+y="}
    [entry] = control.deliveries(tenant.tenant_id, kind="notification")
    assert entry["outcome"] == "delivered" and entry["status"] == 202
    assert "code=REDACTED" in entry["url"] and "k3y" not in entry["url"]
    assert [i["changeType"] for i in entry["items"]] == ["created", "updated"]


def test_only_matching_subscriptions_hear_a_change(graph, tenant, receiver, paths, control):
    control.settings(resource_form="path")
    person = tenant.users[0]
    graph.subscribe(f"users/{person.user_principal_name}/events", receiver.url(paths["notify"]),
                    change_type="deleted")
    subscribe_room(graph, tenant, receiver, paths, change_type="updated")

    control.publish(tenant.tenant_id, person.id, "created,updated")
    control.publish(tenant.tenant_id, person.id, "deleted", item_id="gone-1")
    control.flush(tenant.tenant_id)

    items = receiver.wait_for(lambda: receiver.items(paths["notify"]))
    assert [(i["changeType"], i["resource"]) for i in items] == [("deleted", f"Users/{person.id}/Events/gone-1")]


def test_user_subscriptions_hear_directory_changes(graph, tenant, receiver, paths, control):
    person = tenant.users[1]
    sub = graph.subscribe("users", receiver.url(paths["notify"]), change_type="updated,deleted")

    control.call("PATCH", f"/tenants/{tenant.tenant_id}/users/{person.id}", json={"department": "Facilities"})
    control.flush(tenant.tenant_id)

    items = receiver.wait_for(lambda: receiver.items(paths["notify"]))
    assert items[0]["subscriptionId"] == sub["id"]
    assert items[0]["changeType"] == "updated"
    assert items[0]["resource"] == f"Users/{person.id}"
    assert items[0]["resourceData"]["@odata.type"] == "#Microsoft.Graph.User"
    assert items[0]["resourceData"]["id"] == person.id


def test_user_creation_is_reported_as_an_update(graph, tenant, receiver, paths, control):
    person = tenant.users[0]
    graph.subscribe(f"users/{person.id}", receiver.url(paths["notify"]), change_type="updated")

    control.publish(tenant.tenant_id, person.id, "created", kind="users")
    control.flush(tenant.tenant_id)

    items = receiver.wait_for(lambda: receiver.items(paths["notify"]))
    assert [(i["changeType"], i["resource"]) for i in items] == [("updated", f"Users/{person.id}")]


def test_deleted_or_expired_subscriptions_stop_delivering(graph, tenant, receiver, paths, control):
    sub = subscribe_room(graph, tenant, receiver, paths)
    control.call("POST", f"/subscriptions/{sub['id']}/expire", expect=204)

    control.publish(tenant.tenant_id, tenant.rooms[0].email, "updated")
    control.flush(tenant.tenant_id)

    assert receiver.notifications(paths["notify"]) == []
    assert graph.get(sub["id"]).status_code == 404


def test_real_calendar_changes_produce_created_and_updated(graph, tenant, receiver, paths, control):
    organizer = tenant.users[0]
    graph.subscribe(f"users/{organizer.id}/events", receiver.url(paths["notify"]))

    response = graph.http.post(f"{tenant.api_base}/users/{organizer.id}/events", json={
        "subject": "Planning", "start": {"dateTime": "2031-03-03T10:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2031-03-03T11:00:00", "timeZone": "UTC"}})
    assert response.status_code == 201, response.text
    control.flush(tenant.tenant_id)

    items = receiver.wait_for(lambda: len(receiver.items(paths["notify"])) >= 2 and receiver.items(paths["notify"]))
    event_id = response.json()["id"]
    mine = [i for i in items if i["resourceData"]["id"] == event_id]
    assert {i["changeType"] for i in mine} >= {"created", "updated"}


# ---- retries -----------------------------------------------------------------------------------------

def test_failed_answer_is_retried_and_both_attempts_are_logged(graph, tenant, receiver, paths, control):
    subscribe_room(graph, tenant, receiver, paths)
    receiver.answer_notifications(paths["notify"], status=500, times=1)

    control.publish(tenant.tenant_id, tenant.rooms[0].email, "updated", item_id="evt-1")

    receiver.wait_for(lambda: len(receiver.notifications(paths["notify"])) >= 2)
    control.flush(tenant.tenant_id)
    first, second = receiver.notifications(paths["notify"])[:2]
    assert first.json() == second.json()
    log = control.deliveries(tenant.tenant_id, kind="notification")
    assert [(e["outcome"], e["status"], e["attempt"]) for e in log] == [("failed", 500, 1), ("delivered", 202, 2)]
    assert log[0]["nextAttemptDateTime"] is not None


def test_answer_slower_than_three_seconds_counts_as_failed(graph, tenant, receiver, paths, control):
    control.settings(ack_timeout_seconds=0.2, retry_timeout_seconds=2.0)
    subscribe_room(graph, tenant, receiver, paths)
    receiver.answer_notifications(paths["notify"], delay=0.6, times=1)

    control.publish(tenant.tenant_id, tenant.rooms[0].email, "updated")

    receiver.wait_for(lambda: outcomes(control, tenant) == ["timeout", "delivered"])
    # The slow answer still reached the endpoint: the retry is a duplicate it must tolerate.
    assert len(receiver.notifications(paths["notify"])) == 2


def test_retries_stop_after_four_hours_and_a_missed_event_follows(graph, tenant, receiver, paths, control):
    control.settings(backoff_factor=1.0)  # first retry 10 s away, so only the clock move reaches it
    sub = subscribe_room(graph, tenant, receiver, paths, lifecycle=True, minutes=600)
    receiver.answer_notifications(paths["notify"], status=503)

    control.publish(tenant.tenant_id, tenant.rooms[0].email, "updated")
    receiver.wait_for(lambda: outcomes(control, tenant) == ["failed"])
    control.advance(4 * 3600 + 60)
    graph.refresh()

    receiver.wait_for(lambda: outcomes(control, tenant) == ["failed", "expired"])
    lifecycle = receiver.wait_for(lambda: receiver.items(paths["lifecycle"]))
    assert [(i["lifecycleEvent"], i["subscriptionId"]) for i in lifecycle] == [("missed", sub["id"])]
    assert len(receiver.notifications(paths["notify"])) == 1


# ---- switches -----------------------------------------------------------------------------------------

def test_duplicate_switch_sends_copies(graph, tenant, receiver, paths, control):
    subscribe_room(graph, tenant, receiver, paths)
    control.switches(tenant=tenant.tenant_id, duplicate=3)

    control.publish(tenant.tenant_id, tenant.rooms[0].email, "updated", item_id="dup-1")
    control.flush(tenant.tenant_id)

    items = receiver.wait_for(lambda: len(receiver.items(paths["notify"])) >= 3 and receiver.items(paths["notify"]))
    assert [i["resourceData"]["id"] for i in items] == ["dup-1"] * 3


def test_reorder_within_a_batch(graph, tenant, receiver, paths, control):
    subscribe_room(graph, tenant, receiver, paths)
    control.switches(tenant=tenant.tenant_id, reorder="within")

    control.publish(tenant.tenant_id, tenant.rooms[0].email, "created,updated")
    control.flush(tenant.tenant_id)

    [post] = receiver.wait_for(lambda: receiver.notifications(paths["notify"]))
    assert [i["changeType"] for i in post.json()["value"]] == ["updated", "created"]


def test_reorder_across_batches(graph, tenant, receiver, paths, control):
    subscribe_room(graph, tenant, receiver, paths)
    control.switches(tenant=tenant.tenant_id, reorder="across")

    control.publish(tenant.tenant_id, tenant.rooms[0].email, "created,updated,deleted")
    control.flush(tenant.tenant_id)

    posts = receiver.wait_for(lambda: len(receiver.notifications(paths["notify"])) >= 3
                              and receiver.notifications(paths["notify"]))
    assert [[i["changeType"] for i in p.json()["value"]] for p in posts] == [["deleted"], ["updated"], ["created"]]


def test_drop_switch_loses_notifications_and_reports_missed(graph, tenant, receiver, paths, control):
    sub = subscribe_room(graph, tenant, receiver, paths, lifecycle=True)
    control.switches(tenant=tenant.tenant_id, drop=1.0)

    control.publish(tenant.tenant_id, tenant.rooms[0].email, "created,updated")
    control.flush(tenant.tenant_id)

    lifecycle = receiver.wait_for(lambda: receiver.items(paths["lifecycle"]))
    assert [i["lifecycleEvent"] for i in lifecycle] == ["missed"] and lifecycle[0]["subscriptionId"] == sub["id"]
    assert receiver.notifications(paths["notify"]) == []
    assert outcomes(control, tenant) == ["dropped", "dropped"]


def test_delay_switch_holds_notifications_on_the_emulator_clock(graph, tenant, receiver, paths, control):
    subscribe_room(graph, tenant, receiver, paths)
    control.switches(tenant=tenant.tenant_id, delay_seconds=300)

    control.publish(tenant.tenant_id, tenant.rooms[0].email, "updated")
    control.flush(tenant.tenant_id)
    assert receiver.notifications(paths["notify"]) == []
    assert len(control.outbox(tenant.tenant_id)) == 1

    control.advance(301)
    receiver.wait_for(lambda: receiver.notifications(paths["notify"]))


def test_slow_switch_holds_new_notifications_ten_minutes(graph, tenant, receiver, paths, control):
    subscribe_room(graph, tenant, receiver, paths)
    control.switches(tenant=tenant.tenant_id, slow=True)

    control.publish(tenant.tenant_id, tenant.rooms[0].email, "updated")
    control.advance(9 * 60)
    control.flush(tenant.tenant_id)
    assert receiver.notifications(paths["notify"]) == []

    control.advance(61)
    receiver.wait_for(lambda: receiver.notifications(paths["notify"]))


def test_pause_keeps_everything_queued_until_resumed(graph, tenant, receiver, paths, control):
    subscribe_room(graph, tenant, receiver, paths)
    control.switches(tenant=tenant.tenant_id, pause=True)

    control.publish(tenant.tenant_id, tenant.rooms[0].email, "created,updated")
    state = control.flush(tenant.tenant_id)
    assert state["pending"] == 2 and receiver.notifications(paths["notify"]) == []

    control.switches(tenant=tenant.tenant_id, pause=None)
    items = receiver.wait_for(lambda: receiver.items(paths["notify"]))
    assert [i["changeType"] for i in items] == ["created", "updated"]


def test_switches_for_one_tenant_leave_others_alone(notification_emulator, graph, tenant, receiver, paths, control):
    from tests.support.emulator_fixture import new_tenant
    from tests.support.notification_fixtures import SubscriptionClient
    other = new_tenant(notification_emulator, rooms=1)
    other_path = paths["notify"] + "-other"
    SubscriptionClient(other).subscribe(f"users/{other.rooms[0].email}/events", receiver.url(other_path))
    subscribe_room(graph, tenant, receiver, paths)
    control.switches(tenant=tenant.tenant_id, drop=1.0)

    control.publish(tenant.tenant_id, tenant.rooms[0].email, "updated")
    control.publish(other.tenant_id, other.rooms[0].email, "updated")

    receiver.wait_for(lambda: receiver.notifications(other_path))
    control.flush(tenant.tenant_id)
    assert receiver.notifications(paths["notify"]) == []


def test_bad_switch_values_are_refused(control):
    for body in ({"reorder": "sideways"}, {"drop": 2}, {"duplicate": 0}, {"teleport": True}):
        response = control.call("PATCH", "/deliveries/switches", json=body, expect=400)
        assert error_of(response)["code"] == "BadRequest"


# ---- the automatic slow state -------------------------------------------------------------------------------

def test_endpoint_that_answers_slowly_enters_the_slow_state(graph, tenant, receiver, paths, control):
    control.settings(ack_timeout_seconds=0.15, retry_timeout_seconds=2.0, health_min_sample=2)
    subscribe_room(graph, tenant, receiver, paths)
    receiver.answer_notifications(paths["notify"], delay=0.3)

    control.publish(tenant.tenant_id, tenant.rooms[0].email, "updated", item_id="slow-1")
    # Both answers exceed the 3 s (here 0.15 s) mark; the retry's longer timeout still accepts it.
    receiver.wait_for(lambda: outcomes(control, tenant) == ["timeout", "delivered"])
    receiver.answer_notifications(paths["notify"], delay=0)
    deliveries = control.call("GET", "/deliveries", params={"tenant": tenant.tenant_id}).json()
    assert "slow" in deliveries["health"].values()

    control.publish(tenant.tenant_id, tenant.rooms[0].email, "updated", item_id="later-1")
    control.flush(tenant.tenant_id)
    held = [o for o in control.outbox(tenant.tenant_id) if o["item"]["resource"].endswith("later-1")]
    assert len(held) == 1
    control.advance(601)
    receiver.wait_for(lambda: any(i["resourceData"]["id"] == "later-1" for i in receiver.items(paths["notify"])))


# ---- lifecycle events -----------------------------------------------------------------------------------

def test_lifecycle_event_documented_variant(graph, tenant, receiver, paths, control):
    sub = subscribe_room(graph, tenant, receiver, paths, lifecycle=True)

    control.lifecycle(sub["id"], "reauthorizationRequired")

    [item] = receiver.wait_for(lambda: receiver.items(paths["lifecycle"]))
    assert item == {"subscriptionId": sub["id"], "subscriptionExpirationDateTime": sub["expirationDateTime"],
                    "tenantId": tenant.tenant_id, "clientState": sub["clientState"],
                    "lifecycleEvent": "reauthorizationRequired"}
    assert "changeType" not in item


def test_lifecycle_event_observed_variant_and_removal(graph, tenant, receiver, paths, control):
    sub = subscribe_room(graph, tenant, receiver, paths, lifecycle=True)

    control.lifecycle(sub["id"], "subscriptionRemoved", variant="organizationId")

    [item] = receiver.wait_for(lambda: receiver.items(paths["lifecycle"]))
    assert item["organizationId"] == tenant.tenant_id and "tenantId" not in item
    assert item["lifecycleEvent"] == "subscriptionRemoved"
    assert item["resource"] == f"Subscriptions/{sub['id']}"
    assert item["resourceData"] == {"@odata.id": f"subscriptions/{sub['id']}",
                                    "@odata.type": "#microsoft.graph.subscription", "id": sub["id"]}
    assert item["encryptedContent"] is None and item["resourceChangeType"] is None
    assert graph.get(sub["id"]).status_code == 404


def test_remove_with_and_without_notice(graph, tenant, receiver, paths, control):
    quiet = subscribe_room(graph, tenant, receiver, paths, lifecycle=True, change_type="created")
    loud = subscribe_room(graph, tenant, receiver, paths, lifecycle=True, change_type="updated")

    control.call("DELETE", f"/subscriptions/{quiet['id']}", expect=204)
    control.call("DELETE", f"/subscriptions/{loud['id']}", params={"notify": "true"}, expect=204)
    control.flush(tenant.tenant_id)

    items = receiver.wait_for(lambda: receiver.items(paths["lifecycle"]))
    assert [(i["subscriptionId"], i["lifecycleEvent"]) for i in items] == [(loud["id"], "subscriptionRemoved")]
    assert graph.get(quiet["id"]).status_code == 404 and graph.get(loud["id"]).status_code == 404


def test_lifecycle_needs_a_lifecycle_url(graph, tenant, receiver, paths, control):
    sub = subscribe_room(graph, tenant, receiver, paths)

    response = control.call("POST", f"/subscriptions/{sub['id']}/lifecycle",
                            json={"lifecycle_event": "missed"}, expect=400)
    assert "lifecycleNotificationUrl" in error_of(response)["message"]


def test_reauthorization_required_is_sent_once_near_expiry_and_again_after_renewal(graph, tenant, receiver, paths,
                                                                                    control):
    control.settings(reauthorization_notice_minutes=60)
    sub = subscribe_room(graph, tenant, receiver, paths, lifecycle=True, minutes=180)
    control.flush(tenant.tenant_id)
    assert receiver.items(paths["lifecycle"]) == []

    control.advance(125 * 60)
    graph.refresh()
    [first] = receiver.wait_for(lambda: receiver.items(paths["lifecycle"]))
    assert first["lifecycleEvent"] == "reauthorizationRequired" and first["subscriptionId"] == sub["id"]

    renewed = graph.patch(sub["id"], {"expirationDateTime": graph.expiry_in(180)})
    assert renewed.status_code == 200
    control.flush(tenant.tenant_id)
    assert len(receiver.items(paths["lifecycle"])) == 1

    control.advance(125 * 60)
    graph.refresh()
    receiver.wait_for(lambda: len(receiver.items(paths["lifecycle"])) == 2)


# ---- control API odds and ends -----------------------------------------------------------------------------

def test_synthetic_change_needs_a_known_user(control, tenant):
    response = control.call("POST", "/changes", json={"tenant": tenant.tenant_id, "user": "ghost@nowhere",
                                                      "change_type": "updated"}, expect=404)
    assert error_of(response)["code"] == "NotFound"


def test_settings_reject_unknown_or_badly_typed_values(control):
    for body in ({"no_such_setting": 1}, {"backoff_factor": "fast"}, {"allow_insecure_loopback": "yes"},
                 {"lifecycle_variant": "orgId"}):
        control.call("PATCH", "/notifications/settings", json=body, expect=400)
    assert control.settings(maxLifetimeMinutesEvents=10080)["max_lifetime_minutes_events"] == 10080
