"""`POST /api/assets/{id}/import` through the local host: meetings made before the room was
subscribed are left alone by the live sync; the dry run sorts them into created / linked /
conflicts and writes nothing; applying creates exactly the reported ones, once.

The emulator here is this module's own: its clock is set back while the older meetings are
made, so their createdDateTime is before the subscription (our side keeps real time)."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest
import requests
from azure.core.exceptions import ResourceNotFoundError

from sync.store import StorageLocation, queue_service
from tests.support.emulator_fixture import new_tenant, start_emulator
from tests.support.room_host import connect, start_room_host

EVENTS_QUEUE = "reservation-events"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    with start_emulator(cert_dir=str(tmp_path_factory.mktemp("import-emulator-tls"))) as server:
        yield server


@pytest.fixture(scope="module")
def host(emulator, storage_connection_string):
    yield from start_room_host(emulator, storage_connection_string)


def z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def set_clock(emulator, moment: datetime) -> None:
    answer = requests.post(f"{emulator.base_url}/_control/clock", json={"set": z(moment)}, verify=emulator.ca_path,
                           timeout=10)
    assert answer.status_code == 200, answer.text


def events_published(storage_connection_string: str, asset_id: str) -> int:
    """How many reservation events of the asset wait on the queue; every message read is made
    visible again at once, so the queue is left as it was found."""
    queue = queue_service(StorageLocation(connection_string=storage_connection_string)).get_queue_client(EVENTS_QUEUE)
    count, seen = 0, []
    try:
        while True:
            page = list(queue.receive_messages(messages_per_page=32, visibility_timeout=30))
            if not page:
                return count
            seen.extend(page)
            count += sum(json.loads(base64.b64decode(m.content))["reservation"]["asset_id"] == asset_id for m in page)
    except ResourceNotFoundError:
        return 0
    finally:
        for message in seen:
            queue.update_message(message, visibility_timeout=0)


def test_a_dry_run_sorts_older_meetings_and_writes_nothing_and_applying_creates_them_once(
        host, emulator, storage_connection_string):
    tenant = new_tenant(emulator, users=2, rooms=1)
    world = connect(host, tenant, [])
    room = tenant.rooms[0].email
    asset = world.post("assets", {"integration_id": world.integration_id, "room": room}).json()
    world.assets[room] = asset
    world.calendar.room_settings(room, AllowConflicts=True)  # the clash must reach the room's calendar
    first, second = (user.user_principal_name for user in tenant.users)
    day = (datetime.now(timezone.utc) + timedelta(days=3)).replace(hour=9, minute=0, second=0, microsecond=0)
    now = datetime.now(timezone.utc)
    set_clock(emulator, now - timedelta(hours=3))
    try:
        older = world.meeting(first, subject="Made before", start=z(day), end=z(day + timedelta(hours=1)),
                              rooms=[room])
        clash = world.meeting(first, subject="Clashes", start=z(day + timedelta(hours=3)),
                              end=z(day + timedelta(hours=4)), rooms=[room])
    finally:
        set_clock(emulator, now)
    subscribed = world.post(f"assets/{asset['id']}/subscription")
    assert subscribed.status_code == 201, subscribed.text
    world.meeting(second, subject="Live", start=z(day + timedelta(hours=3)), end=z(day + timedelta(hours=4)),
                  rooms=[room])
    live = world.wait_reservations(room, lambda rs: len(rs) == 1)
    world.settle()
    assert [r["subject"] for r in world.reservations(room)] == ["Live"]  # the older two were left alone
    published = events_published(storage_connection_string, asset["id"])

    window = {"from": z(day - timedelta(days=1)), "to": z(day + timedelta(days=1))}
    dry = world.post(f"assets/{asset['id']}/import", {**window, "dry_run": True})
    assert dry.status_code == 200, dry.text
    report = dry.json()
    assert report["dry_run"] is True
    # Items are told apart by their times: the room's copies carry Exchange's organizer-name subject.
    assert [i["start"] for i in report["created"]] == [z(day)]
    assert [i["start"] for i in report["linked"]] == [z(day + timedelta(hours=3))]
    assert report["linked"][0]["reservation_id"] == live[0]["id"]
    assert [i["start"] for i in report["conflicts"]] == [z(day + timedelta(hours=3))]
    assert report["conflicts"][0]["organizer"] == first.lower()
    assert report["counts"] == {"created": 1, "linked": 1, "conflicts": 1, "skipped": 0}
    assert [r["id"] for r in world.reservations(room)] == [live[0]["id"]]
    assert events_published(storage_connection_string, asset["id"]) == published

    applied = world.post(f"assets/{asset['id']}/import", {**window, "dry_run": False}).json()
    assert (applied["counts"]["created"], applied["counts"]["linked"]) == (1, 1), applied
    assert [i["organizer"] for i in applied["conflicts"]] == [first.lower()]
    made = [r for r in world.reservations(room) if r["subject"] == "Made before"]
    assert len(made) == 1 and made[0]["id"] == applied["created"][0]["reservation_id"]
    assert {r["subject"] for r in world.reservations(room)} == {"Made before", "Live"}
    clash_copy = world.calendar.fetch(first, clash["event"]["id"])
    assert all(a["status"]["response"] != "declined" for a in clash_copy.get("attendees", []))  # import never declines

    again = world.post(f"assets/{asset['id']}/import", {**window, "dry_run": False}).json()
    assert again["counts"]["created"] == 0 and again["counts"]["linked"] == 2, again
    assert len(world.reservations(room)) == 2
    assert older["event"]["id"]
