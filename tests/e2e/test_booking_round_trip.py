"""A platform booking's round trip through the local host with subscribed rooms: the booking goes
out to the booker's and the room's calendars, the room copy's change notification comes back
through the webhook and the inbound worker, and it links to the booking instead of making a
second reservation. Moving and cancelling through the API do the same."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote

import pytest
import requests
from azure.core.exceptions import ResourceNotFoundError

from sync.reservation_events import RESERVATION_EVENTS_QUEUE
from sync.store import StorageLocation, queue_service
from sync.store.connection import queue_client
from tests.support.emulator_fixture import new_tenant
from tests.support.polling import wait_for
from tests.support.room_host import KEY, RoomWorld, connect

NOTIFICATIONS_QUEUE = "graph-notifications"


@pytest.fixture
def world(host, graph_emulator) -> RoomWorld:
    tenant = new_tenant(graph_emulator, users=2, rooms=1)
    return connect(host, tenant, [tenant.rooms[0].email])


@pytest.fixture
def queues(storage_connection_string):
    return queue_service(StorageLocation(connection_string=storage_connection_string))


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _mine(items: list[dict], uid: str) -> list[dict]:
    return [e for e in items if e.get("iCalUId") == uid and not e.get("isCancelled")]


def _delivered_for(world: RoomWorld, room_event_id: str) -> int:
    """Notification items for the room copy that the emulator delivered (a 2xx from our webhook)."""
    answer = requests.get(f"{world.tenant.server.base_url}/_control/deliveries",
                          params={"tenant": world.tenant.tenant_id, "kind": "notification"},
                          verify=world.tenant.ca_path, timeout=30)
    answer.raise_for_status()
    return sum(1 for entry in answer.json()["value"] if entry["outcome"] == "delivered"
               for item in entry["items"] if room_event_id in unquote(item.get("resource") or ""))


def _handled_for(world: RoomWorld, asset_id: str, room_event_id: str) -> list[dict]:
    """Sync log entries the inbound worker wrote for the room copy."""
    entries = world.get("synclog", integration_id=world.integration_id, asset_id=asset_id).json()["value"]
    return [e for e in entries if (e.get("input") or {}).get("room_event_id") == room_event_id]


def _nothing_queued_for(queues, asset_id: str) -> bool:
    """No visible graph-notifications message names this asset. The queue is shared by every
    module of the session (some leave messages there on purpose), so its count says nothing."""
    try:
        waiting = queue_client(queues, NOTIFICATIONS_QUEUE).peek_messages(max_messages=32)
    except ResourceNotFoundError:
        return True
    return not any(asset_id in base64.b64decode(m.content).decode("utf-8", "replace") for m in waiting)


def _events_of(queues, asset_id: str) -> list[dict]:
    """Reservation events of one asset; every message read is made visible again at once, so
    the queue is left as it was found."""
    client = queues.get_queue_client(RESERVATION_EVENTS_QUEUE)
    found, seen = [], []
    try:
        while True:
            page = list(client.receive_messages(messages_per_page=32, visibility_timeout=30))
            if not page:
                break
            for message in page:
                seen.append(message)
                event = json.loads(base64.b64decode(message.content, validate=True))
                if event["reservation"]["asset_id"] == asset_id:
                    found.append(event)
    except ResourceNotFoundError:
        return []
    finally:
        for message in seen:
            client.update_message(message, visibility_timeout=0)
    return sorted(found, key=lambda e: e["at"])


def _round_trip(world: RoomWorld, queues, asset_id: str, room_event_id: str, handled_before: int) -> None:
    """Waits until the room copy's notification came back, was taken from the queue and handled."""
    wait_for(lambda: _delivered_for(world, room_event_id) > 0, timeout=20, interval=0.2,
             what="the room copy's notification delivered")
    world.settle()
    wait_for(lambda: len(_handled_for(world, asset_id, room_event_id)) > handled_before, timeout=20, interval=0.2,
             what="the room copy's notification handled")
    wait_for(lambda: _nothing_queued_for(queues, asset_id), timeout=20, interval=0.2,
             what="no notification of the room left on the queue")


def test_a_booking_round_trip_links_the_room_copy_and_never_books_twice(world, queues):
    room, person = world.tenant.rooms[0].email, world.tenant.users[0].mail
    asset_id = world.assets[room]["id"]
    start = (datetime.now(timezone.utc) + timedelta(days=3)).replace(hour=10, minute=0, second=0, microsecond=0)
    answer = world.post("reservations", {"asset_id": asset_id, "booker": person, "start": _iso(start),
                                         "end": _iso(start + timedelta(hours=1)), "subject": "Round trip"})
    assert answer.status_code == 201, answer.text
    reservation_id = answer.json()["id"]

    def synced(status: str = "confirmed"):
        found = world.get(f"reservations/{reservation_id}").json()
        return found if found["sync_status"] == "synced" and found["status"] == status else None

    wait_for(synced, timeout=20, interval=0.2, what="the booking in Outlook")
    (meeting,) = [e for e in world.calendar.raw_events(person) if e.get("isOrganizer")]
    uid = meeting["iCalUId"]
    (copy,) = _mine(world.calendar.raw_events(room), uid)

    _round_trip(world, queues, asset_id, copy["id"], 0)
    (only,) = world.reservations(room)
    assert (only["id"], only["origin"], only["status"]) == (reservation_id, "platform", "confirmed")
    assert {e["reservation_id"] for e in _handled_for(world, asset_id, copy["id"])} == {reservation_id}
    created = [e for e in _events_of(queues, asset_id) if e["type"] == "reservation.created"]
    assert [e["reservation"]["id"] for e in created] == [reservation_id]

    # a move through the API follows both calendars, and its notification links again
    handled = len(_handled_for(world, asset_id, copy["id"]))
    delivered = _delivered_for(world, copy["id"])
    moved = start + timedelta(hours=3)
    answer = requests.patch(world.api(f"reservations/{reservation_id}"), json={"start": _iso(moved)}, headers=KEY,
                            timeout=30)
    assert answer.status_code == 200, answer.text
    wanted = moved.strftime("%Y-%m-%dT%H:%M")
    wait_for(lambda: [e["start"]["dateTime"][:16] for e in _mine(world.calendar.raw_events(person), uid)
                      + _mine(world.calendar.raw_events(room), uid)] == [wanted, wanted], timeout=20, interval=0.2,
             what="the move in both calendars")
    wait_for(lambda: _delivered_for(world, copy["id"]) > delivered, timeout=20, interval=0.2,
             what="the moved copy's notification delivered")
    _round_trip(world, queues, asset_id, copy["id"], handled)
    (only,) = world.reservations(room)
    assert (only["id"], only["origin"], only["start"]) == (reservation_id, "platform", _iso(moved))

    # a cancellation through the API empties both calendars and leaves the one reservation cancelled
    handled = len(_handled_for(world, asset_id, copy["id"]))
    delivered = _delivered_for(world, copy["id"])
    answer = requests.delete(world.api(f"reservations/{reservation_id}"), headers=KEY, timeout=30)
    assert answer.status_code == 200, answer.text
    wait_for(lambda: not _mine(world.calendar.raw_events(person), uid) and not _mine(world.calendar.raw_events(room),
                                                                                   uid),
             timeout=20, interval=0.2, what="the cancellation in both calendars")
    wait_for(lambda: synced("cancelled"), timeout=20, interval=0.2, what="the cancellation synced")
    wait_for(lambda: _delivered_for(world, copy["id"]) > delivered, timeout=20, interval=0.2,
             what="the cancelled copy's notification delivered")
    _round_trip(world, queues, asset_id, copy["id"], handled)
    (only,) = world.reservations(room)
    assert (only["id"], only["origin"], only["status"]) == (reservation_id, "platform", "cancelled")
    kinds = [e["type"] for e in _events_of(queues, asset_id)]
    assert kinds.count("reservation.created") == 1 and kinds.count("reservation.cancelled") == 1
    assert {e["reservation"]["id"] for e in _events_of(queues, asset_id)} == {reservation_id}
