"""Fault catalogue (docs/fault-catalogue.md), Graph and queue faults against the emulator and
Azurite: a read timeout on an event POST that Graph did apply, renewal with our clock ahead of
Graph's, and a queue message too large for Storage."""
from __future__ import annotations

import base64
import dataclasses
import json
import secrets
from datetime import timedelta

import pytest
import requests

from graph import subscriptions
from graph.timestamps import parse_graph_time
from sync.booking_model import SYNCED
from sync.events_out import MAX_MESSAGE_TEXT, QueuePublisher
from sync.outbound import transaction_id
from sync.store import StorageLocation, queue_service
from tests.integration.graph.support import graph_env, webhook_receiver  # noqa: F401  (module fixtures)
from tests.support.booking_world import make_booking_world

STORAGE_MESSAGE_LIMIT = 64 * 1024  # Azure Storage's limit on an encoded queue message


def _fault(server, **rule) -> dict:
    answer = requests.post(f"{server.base_url}/_control/faults", json=rule, verify=server.ca_path, timeout=30)
    assert answer.status_code == 201, answer.text
    return answer.json()


def _hits(server, rule: dict) -> int:
    return requests.get(f"{server.base_url}/_control/faults/{rule['id']}", verify=server.ca_path,
                        timeout=30).json()["hits"]


# §6 items 3 and 24 (§7 rank 2) ------------------------------------------------------------------------------

def test_fault_read_timeout_on_create_event_that_graph_applied_leaves_exactly_one_event(
        graph_emulator, storage_connection_string, unique_name):
    """The emulator creates the event but answers after our read timeout: the retry must carry
    the same transactionId, so Graph hands back the first event instead of making a second."""
    world = make_booking_world(graph_emulator, storage_connection_string, unique_name, rooms=1)
    # The app's own worker and access, with a read timeout shorter than the emulator's delay.
    world.access.config = dataclasses.replace(world.access.config, timeout=(5.0, 0.4))
    booker = world.people[0].mail
    rule = _fault(graph_emulator, method="POST", path=rf"/users/{booker}/events$", delay_ms=1500, count=1,
                  tenant=world.tenant.tenant_id)
    counts = graph_emulator.world.request_counts
    before = counts["events.create"]
    try:
        view = world.service.create(world.body())
        world.drain(timeout=60)
    finally:
        world.worker.close()

    assert _hits(graph_emulator, rule) == 1
    assert counts["events.create"] - before >= 2  # the timed-out POST was sent again
    meetings = [e for e in world.booker_events() if not e.get("isCancelled")]
    assert len(meetings) == 1
    stored = world.reservation(view["id"])
    assert stored.organizer_event_id == meetings[0]["id"] and stored.sync_status == SYNCED
    assert meetings[0].get("transactionId") in {transaction_id(view["id"], seq) for seq in range(4)}
    assert len([e for e in world.room_events() if not e.get("isCancelled")]) == 1


# §6 item 26 (§7 rank 9) -----------------------------------------------------------------------------------

SETTINGS = "/_control/notifications/settings"


@pytest.mark.parametrize("ahead_minutes", [10, 45])
def test_fault_our_clock_ahead_of_graphs_still_renews_within_graphs_maximum(graph_env, webhook_receiver,
                                                                           ahead_minutes):
    """Graph judges the expiry by its own clock; ours running ahead must not make every renewal
    ask for more than Graph allows (live tenants name 10,070 minutes)."""
    graph_env.control.call("PATCH", SETTINGS, {"max_lifetime_minutes_events": 10070})
    tenant = graph_env.tenant(users=1, rooms=1)
    resource = f"users/{tenant.rooms[0].email}/events"
    client = graph_env.client(tenant)
    made = subscriptions.create_subscription(client, resource=resource, change_type="created,updated,deleted",
                                             notification_url=webhook_receiver.url,
                                             lifecycle_notification_url=webhook_receiver.url,
                                             client_state=secrets.token_urlsafe(32))
    graph_now = graph_env.server.world.clock.now
    client.clock = lambda: graph_now() + timedelta(minutes=ahead_minutes)

    renewed = subscriptions.renew_subscription(client, made["id"], resource=resource)

    left = (parse_graph_time(renewed["expirationDateTime"]) - graph_now()) / timedelta(minutes=1)
    assert 10_070 - 24 * 60 <= left <= 10_070 - subscriptions.SAFETY_MARGIN_MINUTES


# §6 item 17 -----------------------------------------------------------------------------------------------

def test_fault_message_over_64_kib_encoded_is_refused_at_enqueue(storage_connection_string, unique_name):
    """Storage refuses a message over 64 KiB once base64 encoded; the producer refuses first,
    naming the queue, and the largest message it lets through is one Storage accepts."""
    queues = queue_service(StorageLocation(connection_string=storage_connection_string))
    name = unique_name("big")
    publisher = QueuePublisher(queues, name)

    def message_of(size: int) -> dict:
        frame = len(json.dumps({"pad": ""}, separators=(",", ":")).encode())
        return {"pad": "x" * (size - frame)}

    publisher.send(message_of(MAX_MESSAGE_TEXT))
    (kept,) = list(queues.get_queue_client(name).receive_messages())
    assert len(kept.content) <= STORAGE_MESSAGE_LIMIT
    assert json.loads(base64.b64decode(kept.content)) == message_of(MAX_MESSAGE_TEXT)

    with pytest.raises(ValueError, match=name):
        publisher.send(message_of(MAX_MESSAGE_TEXT + 1))
    # What the guard refuses is what Storage would have refused (base64 of 48 KiB + 1 > 64 KiB).
    assert len(base64.b64encode(b"x" * (MAX_MESSAGE_TEXT + 1))) > STORAGE_MESSAGE_LIMIT
    assert list(queues.get_queue_client(name).peek_messages(max_messages=32)) == []
