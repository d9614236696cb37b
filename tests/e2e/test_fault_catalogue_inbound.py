"""Fault catalogue (docs/fault-catalogue.md), Outlook -> platform through the local host, Azurite
and the Graph emulator: throttled re-reads, repeated and shuffled notifications, forged and
crossed subscription ids, the validation handshake, a post mixing tenants, and repeated
lifecycle events."""
from __future__ import annotations

import json
import logging
import re
import threading
import time
from datetime import datetime, timedelta, timezone

import azure.functions as func
import pytest
import requests

from functions import room_context, room_workers, webhooks
from tests.support.calendar_client import q
from tests.support.emulator_fixture import new_tenant
from tests.support.polling import wait_for
from tests.support.room_host import connect, connect_new_tenant


@pytest.fixture
def world(host, graph_emulator):
    return connect_new_tenant(host, graph_emulator, users=2, rooms=2)


def _control(server, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{server.base_url}/_control/{path}", verify=server.ca_path, timeout=30,
                            **kwargs)


def _switches(world, **switches) -> None:
    answer = _control(world.tenant.server, "PATCH", "deliveries/switches",
                      json={"tenant": world.tenant.tenant_id, **switches})
    assert answer.status_code == 200, answer.text


def _slot(days: int, hour: int) -> tuple[str, str]:
    day = datetime.now(timezone.utc).replace(hour=hour, minute=0, second=0, microsecond=0) + timedelta(days=days)
    return day.isoformat().replace("+00:00", "Z"), (day + timedelta(hours=1)).isoformat().replace("+00:00", "Z")


def _room_event(world, room: str, ical_uid: str) -> dict:
    return wait_for(lambda: next((e for e in world.calendar.raw_events(room) if e.get("iCalUId") == ical_uid), None),
                    timeout=10, what="the room's copy")


def _client_state(world, room: str) -> str:
    sub_id = world.assets[room]["subscription"]["id"]
    return _control(world.tenant.server, "GET", f"subscriptions/{sub_id}").json()["clientState"]


def _change(world, room: str, event_id: str, client_state: str | None = None, **override) -> dict:
    return {"subscriptionId": world.assets[room]["subscription"]["id"], "changeType": "updated",
            "clientState": client_state if client_state is not None else _client_state(world, room),
            "tenantId": world.tenant.tenant_id, "resource": f"Users/{room}/Events/{event_id}",
            "resourceData": {"id": event_id}, **override}


def _post(world, items: list[dict], path: str = "notification_url") -> requests.Response:
    return requests.post(f"{world.host.base_url}/api/microsoft_graph/notifications/{path}",
                         json={"value": items}, timeout=10)


def _synclog(world, room: str) -> list[dict]:
    return world.get("synclog", integration_id=world.integration_id,
                     asset_id=world.assets[room]["id"]).json()["value"]


def _queue_sizes(name: str) -> tuple[int, int]:
    """(messages in the queue, visible ones among them)."""
    client = room_context.publisher(name)._client
    return (client.get_queue_properties().approximate_message_count,
            len(client.peek_messages(max_messages=32)))


# §6 item 1 (§7 rank 4) ------------------------------------------------------------------------------------

def test_fault_429_retry_after_past_the_budget_on_event_get_defers_without_spending_dequeue_count(world):
    """A throttled re-read is put back hidden for Graph's Retry-After and the message completes:
    no busy loop, no attempt spent, no poison."""
    room, person = world.tenant.rooms[0].email, world.tenant.users[0].user_principal_name
    _switches(world, drop=1.0)  # only our own message reaches the worker
    start, end = _slot(2, 9)
    made = world.meeting(person, subject="Throttled", start=start, end=end, rooms=[room])
    event_id = _room_event(world, room, made["event"]["iCalUId"])["id"]
    # Graph's client honours Retry-After in-process within its 30 s budget (GraphConfig.max_retry_wait);
    # a longer wait must go back to the queue instead of holding the worker.
    rule = _control(world.tenant.server, "POST", "faults", json={
        "method": "GET", "path": rf"/users/{re.escape(room)}/events/", "status": 429, "retry_after": 45,
        "count": 1, "tenant": world.tenant.tenant_id}).json()
    queued_before, _ = _queue_sizes(room_context.NOTIFICATIONS_QUEUE)
    message = func.QueueMessage(id="fault-429", body=json.dumps({"items": [{
        "integration_id": world.integration_id, "asset_id": world.assets[room]["id"], "event_id": event_id}],
        "deferrals": 0}).encode())

    room_workers.room_change_worker(message)  # returns: the host deletes the message, count unspent

    assert _control(world.tenant.server, "GET", f"faults/{rule['id']}").json()["hits"] == 1  # one read, no loop
    queued, visible = _queue_sizes(room_context.NOTIFICATIONS_QUEUE)
    assert queued == queued_before + 1 and visible == 0  # the deferral waits, hidden
    assert world.reservations(room) == []
    assert world.get("deadletters", integration_id=world.integration_id).json()["value"] == []


# §6 item 12 (§7 rank 1) -----------------------------------------------------------------------------------

def test_fault_duplicated_and_shuffled_notifications_converge_with_one_write_per_version(world):
    """Each change delivered three times, reordered, interleaved with a newer change: the
    reservation ends as Graph's latest version, written at most once per version."""
    room, person = world.tenant.rooms[0].email, world.tenant.users[1].user_principal_name
    _switches(world, duplicate=3, reorder="within", pause=True)
    start, end = _slot(3, 10)
    made = world.meeting(person, subject="Shuffled", start=start, end=end, rooms=[room])
    new_start, new_end = _slot(3, 15)
    moved = world.calendar.control_call("PATCH", person, "meetings", q(made["event"]["id"]),
                                        body={"start": new_start, "end": new_end})
    assert moved.status_code == 200, moved.text
    # Our own post of the first version's notification three times, before Graph's arrive.
    event_id = _room_event(world, room, made["event"]["iCalUId"])["id"]
    assert _post(world, [_change(world, room, event_id, changeType="created")] * 3).status_code == 202
    _switches(world, pause=None)
    world.settle()

    found = world.wait_reservations(room, lambda rs: len(rs) == 1 and (rs[0]["start"], rs[0]["end"]) ==
                                    (new_start, new_end))
    assert found[0]["status"] == "confirmed"
    wait_for(lambda: len(_synclog(world, room)) >= 2, timeout=20, interval=0.2, what="the worker's log rows")
    world.settle()
    writes = [e for e in _synclog(world, room) if e["outcome"] == "applied"]
    assert 1 <= len(writes) <= 2  # versions: created, moved
    assert [e["decision"] for e in writes][0] == "create"


# §6 item 9 (§7 rank 6) ------------------------------------------------------------------------------------

def test_fault_client_state_of_one_subscription_sent_with_anothers_id_enqueues_nothing(world, caplog):
    """The clientState of room A's subscription with room B's subscription id, an unknown id,
    another tenant's id: each 202, each counted as refused, nothing queued."""
    room_a, room_b = (room.email for room in world.tenant.rooms)
    person = world.tenant.users[0].user_principal_name
    _switches(world, drop=1.0)
    start, end = _slot(4, 9)
    made = world.meeting(person, subject="Crossed", start=start, end=end, rooms=[room_b])
    event_id = _room_event(world, room_b, made["event"]["iCalUId"])["id"]
    a_state = _client_state(world, room_a)
    crossed = _change(world, room_b, event_id, client_state=a_state)
    unknown = {**crossed, "subscriptionId": "0b9f2c1e-3d4a-4b5c-8d6e-7f8091a2b3c4"}
    wrong_tenant = {**_change(world, room_b, event_id), "tenantId": "0d3c5e2a-7b1f-4c8e-9a6d-2f4b8c1e5a70"}
    caplog.set_level(logging.INFO, logger="functions.webhooks")

    def post(items: list[dict]) -> list[str]:
        """Runs the webhook function in this thread; its own log lines."""
        caplog.clear()
        answer = webhooks.notifications(func.HttpRequest(
            "POST", f"{world.host.base_url}/api/microsoft_graph/notifications/notification_url",
            body=json.dumps({"value": items}).encode(), headers={"content-type": "application/json"}))
        assert answer.status_code == 202
        return [r.getMessage() for r in caplog.records
                if r.name == "functions.webhooks" and r.thread == threading.get_ident()]

    for item, reason in ((crossed, "client_state_mismatch"), (unknown, "unknown_subscription"),
                         (wrong_tenant, "tenant_mismatch")):
        said = post([item])
        assert len(said) == 1 and "1 item(s) rejected" in said[0] and reason in said[0]
    # The genuine item is queued and applied: the refusals were about the crossing, not the item.
    assert post([_change(world, room_b, event_id)]) == ["change notifications: 1 item(s) queued"]
    world.wait_reservations(room_b, lambda rs: len(rs) == 1)
    assert world.reservations(room_a) == []


# §6 item 8 (§7 rank 7) ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["notification_url", "lifecycle_url"])
def test_fault_validation_token_with_url_encoded_characters_and_a_code_parameter_is_echoed_decoded(host, path):
    token = "Validation: Testing client application reachability for subscription Request-Id: a+b/c=d&e%f é"
    encoded = requests.utils.quote(token, safe="")
    url = f"{host.base_url}/api/microsoft_graph/notifications/{path}?code=not-a-key&validationToken={encoded}"
    started = time.monotonic()
    answer = requests.post(url, timeout=10)
    took = time.monotonic() - started
    assert answer.status_code == 200
    assert answer.headers["content-type"].split(";")[0] == "text/plain"
    assert answer.content.decode("utf-8") == token
    assert took < 1.0


# §6 item 13 -----------------------------------------------------------------------------------------------

def test_fault_one_post_mixing_two_tenants_and_a_lifecycle_item_routes_each_to_its_own(host, graph_emulator):
    """Graph batches notifications of many subscriptions in one post: each item goes to its own
    tenant's asset; a lifecycle item on the change URL is refused, on the lifecycle URL routed."""
    tenants = [new_tenant(graph_emulator, users=1, rooms=1) for _ in range(2)]
    worlds = [connect(host, tenant, [tenant.rooms[0].email]) for tenant in tenants]
    items, icals = [], []
    for number, w in enumerate(worlds):
        room, person = w.tenant.rooms[0].email, w.tenant.users[0].user_principal_name
        _switches(w, drop=1.0)
        start, end = _slot(5, 9 + number)
        made = w.meeting(person, subject=f"Tenant {number}", start=start, end=end, rooms=[room])
        icals.append(made["event"]["iCalUId"])
        items.append(_change(w, room, _room_event(w, room, made["event"]["iCalUId"])["id"]))
    lifecycle = {key: items[1][key] for key in ("subscriptionId", "clientState", "tenantId")}
    lifecycle["lifecycleEvent"] = "reauthorizationRequired"

    assert _post(worlds[0], [items[0], lifecycle, items[1]]).status_code == 202
    for number, w in enumerate(worlds):
        found = w.wait_reservations(w.tenant.rooms[0].email, lambda rs: len(rs) == 1)
        assert found[0]["subject"] == f"Tenant {number}"
        assert found[0]["organizer"]["email"] == w.tenant.users[0].user_principal_name.lower()

    def reauthorized(w) -> str | None:
        sub_id = w.assets[w.tenant.rooms[0].email]["subscription"]["id"]
        return _control(graph_emulator, "GET", f"subscriptions/{sub_id}").json().get("reauthorizedDateTime")

    assert reauthorized(worlds[1]) is None  # refused on the change URL
    assert _post(worlds[0], [lifecycle], "lifecycle_url").status_code == 202
    wait_for(lambda: reauthorized(worlds[1]), timeout=20, interval=0.2, what="tenant B's reauthorization")
    assert reauthorized(worlds[0]) is None


# §6 item 27 (§7 rank 9) -----------------------------------------------------------------------------------

def test_fault_subscription_removed_delivered_three_times_recreates_the_subscription_once(world, graph_emulator):
    room = world.tenant.rooms[0].email
    old = world.assets[room]["subscription"]["id"]
    removed = {"subscriptionId": old, "clientState": _client_state(world, room),
               "tenantId": world.tenant.tenant_id, "lifecycleEvent": "subscriptionRemoved"}

    # Graph has removed it (and says so three times, as at-least-once delivery may).
    assert _control(graph_emulator, "DELETE", f"subscriptions/{old}").status_code == 204
    assert _post(world, [removed, removed, removed], "lifecycle_url").status_code == 202

    def recreated():
        asset = world.get(f"assets/{world.assets[room]['id']}").json()
        return asset["subscription"]["id"] if asset["subscription"]["id"] not in (None, old) else None

    new = wait_for(recreated, timeout=20, interval=0.2, what="the new subscription")
    assert _post(world, [removed], "lifecycle_url").status_code == 202  # a late copy of the same event
    # Every lifecycle message handled: the queue is empty (the host deletes what it finished).
    wait_for(lambda: _queue_sizes(room_context.LIFECYCLE_QUEUE) == (0, 0), timeout=20, interval=0.2,
             what="the lifecycle queue to drain")
    at_graph = _control(graph_emulator, "GET", "subscriptions", params={"tenant": world.tenant.tenant_id}).json()
    ours = [s for s in at_graph["value"] if s["resource"].lower().endswith(f"users/{room}/events".lower())]
    assert [s["id"] for s in ours] == [new]
    assert world.get(f"assets/{world.assets[room]['id']}").json()["subscription"]["id"] == new
