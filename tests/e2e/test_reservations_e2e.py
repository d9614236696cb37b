"""Platform bookings through the local Functions host: the REST API with the function key, the
booking-changes queue worker driven from Azurite, and the Graph emulator's calendars.

The seed's Step 9 the other way round: a reservation made through the API appears in the
booker's calendar and in the room's; moving and cancelling follow both."""
from __future__ import annotations

import base64
import importlib
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from azure.core.exceptions import ResourceNotFoundError

from devtools.localhost import LocalHost
from functions import context
from sync.booking_model import Asset, Subscription
from sync.booking_queue import BOOKING_CHANGES_QUEUE, LEAVER_RELEASES_QUEUE
from sync.settings import SETTING_NAMES
from sync.store import Store, StorageLocation, queue_service, table_service
from sync.store.assets_repo import AssetsRepo, new_asset_id
from sync.store.connection import queue_client
from sync.users import USER_SYNC_QUEUE
from tests.support.calendar_client import CalendarClient
from tests.support.emulator_fixture import new_tenant
from tests.support.polling import wait_for

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_KEY = "e2e-reservations-function-key"
KEY = {"x-functions-key": FUNCTION_KEY}


@pytest.fixture(scope="module")
def host(graph_emulator, storage_connection_string):
    settings = {
        "AzureWebJobsStorage": storage_connection_string,
        "PUBLIC_BASE_URL": "http://127.0.0.1:7071",
        "SECRET_ENCRYPTION_KEY": base64.b64encode(b"e2e-reservations-encryption-k32b").decode(),
        "GRAPH_AUTHORITY_HOST": graph_emulator.authority_host,
        "GRAPH_API_BASE": graph_emulator.api_base,
        "GRAPH_CA_BUNDLE": graph_emulator.ca_path,
        "USER_SYNC_SCHEDULE": "0 0 2 * * *",
        "SUBSCRIPTION_RENEWAL_SCHEDULE": "0 */30 * * * *",
        "RECURRENCE_SCHEDULE": "0 30 1 * * *",
    }
    queues = queue_service(StorageLocation(connection_string=storage_connection_string))
    for name in (USER_SYNC_QUEUE, BOOKING_CHANGES_QUEUE, LEAVER_RELEASES_QUEUE):
        try:
            queue_client(queues, name).clear_messages()  # other modules' leftovers are not ours
        except ResourceNotFoundError:
            pass
    with pytest.MonkeyPatch.context() as patch:
        for name in SETTING_NAMES:
            patch.delenv(name, raising=False)
        for name, value in settings.items():
            patch.setenv(name, value)
        context.reset()
        module = sys.modules.get("function_app")
        module = importlib.reload(module) if module else importlib.import_module("function_app")
        local = LocalHost(module.app, 0, host_config=ROOT / "host.json",
                          settings={**settings, "LOCAL_FUNCTION_KEY": FUNCTION_KEY}, queue_poll_seconds=0.2)
        with local:
            yield local
        context.reset()


def api(host, path: str) -> str:
    return f"{host.base_url}/api/{path}"


@pytest.fixture(scope="module")
def booking(host, graph_emulator, storage_connection_string):
    """A connected tenant whose people are synced, and one asset per room."""
    tenant = new_tenant(graph_emulator, users=3, rooms=2)
    created = requests.post(api(host, "integrations"), headers=KEY, timeout=30, json={
        "domain": tenant.domain, "tenant_id": tenant.tenant_id, "client_id": tenant.client_id,
        "client_secret": tenant.client_secret})
    assert created.status_code == 201, created.text
    integration_id = created.json()["id"]

    def synced():
        page = requests.get(api(host, "users"), params={"integration_id": integration_id}, headers=KEY, timeout=30)
        return len(page.json()["value"]) >= 3

    wait_for(synced, timeout=30, interval=0.1, what="the first user sync")
    store = Store(table_service(StorageLocation(connection_string=storage_connection_string)))
    now = datetime.now(timezone.utc)
    assets = [AssetsRepo(store).insert(Asset(
        id=new_asset_id(), integration_id=integration_id, name=room.display_name, category="room",
        mailbox=room.email.lower(), time_zone=room.time_zone, capacity=room.capacity, max_duration_minutes=240,
        subscription=Subscription(), created_at=now, updated_at=now)) for room in tenant.rooms]
    return {"tenant": tenant, "integration_id": integration_id, "assets": assets, "cal": CalendarClient(tenant),
            "store": store}


def slot(days: int, hour: int = 10) -> datetime:
    return (datetime.now(timezone.utc) + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)


def post(host, body: dict) -> requests.Response:
    return requests.post(api(host, "reservations"), json=body, headers=KEY, timeout=30)


def organised(cal: CalendarClient, mail: str) -> list[dict]:
    return [e for e in cal.raw_events(mail) if e.get("isOrganizer") and not e.get("isCancelled")]


def room_items(cal: CalendarClient, mailbox: str) -> list[dict]:
    return [e for e in cal.raw_events(mailbox) if not e.get("isCancelled")]


def stored(booking, reservation_id: str):
    from sync.store.reservations_repo import ReservationsRepo

    return ReservationsRepo(booking["store"]).get(booking["integration_id"], reservation_id[:32], reservation_id)


def test_a_booking_made_through_the_api_appears_in_both_calendars_and_follows_moves_and_cancels(host, booking):
    tenant, cal, room = booking["tenant"], booking["cal"], booking["assets"][0]
    person = tenant.users[0].mail
    start = slot(6)
    body = {"asset_id": room.id, "booker": person, "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(), "subject": "Design review"}
    assert requests.post(api(host, "reservations"), json=body, timeout=30).status_code == 401

    answer = post(host, body)
    assert answer.status_code == 201, answer.text
    view = answer.json()
    assert view["sync_status"] == "pending" and answer.headers["Location"] == f"/api/reservations/{view['id']}"

    def synced():
        current = stored(booking, view["id"])
        return current if current.sync_status == "synced" and current.ical_uid else None

    reservation = wait_for(synced, timeout=20, interval=0.1, what="the meeting in Outlook")
    uid = reservation.ical_uid

    def mine(items: list[dict]) -> list[dict]:
        return [e for e in items if e.get("iCalUId") == uid]

    (meeting,) = mine(organised(cal, person))
    # Other tests of this module book the same room (in any order): take this meeting's copy.
    (copy,) = mine(room_items(cal, room.mailbox))
    assert meeting["id"] == reservation.organizer_event_id
    assert meeting["subject"] == "Design review"

    moved = start + timedelta(hours=2)
    answer = requests.patch(api(host, f"reservations/{view['id']}"), json={"start": moved.isoformat()},
                            headers=KEY, timeout=30)
    assert answer.status_code == 200 and answer.json()["sync_status"] == "pending", answer.text

    def moved_in_both():
        items = mine(organised(cal, person)) + mine(room_items(cal, room.mailbox))
        wanted = moved.strftime("%Y-%m-%dT%H:%M")
        return len(items) == 2 and all(i["start"]["dateTime"].startswith(wanted) for i in items)

    wait_for(moved_in_both, timeout=20, interval=0.1, what="the move in both calendars")

    answer = requests.delete(api(host, f"reservations/{view['id']}"), headers=KEY, timeout=30)
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    wait_for(lambda: not mine(organised(cal, person)) and not mine(room_items(cal, room.mailbox)), timeout=20,
             interval=0.1, what="the cancellation in both calendars")
    wait_for(lambda: stored(booking, view["id"]).sync_status == "synced", timeout=20, interval=0.1,
             what="the cancellation synced")


@pytest.mark.parametrize("change, status, field", [
    ({"end": "not a time"}, 422, "end"),
    ({"booker": "stranger@example.com"}, 422, "booker"),
    ({"asset_id": None}, 400, "asset_id"),
    ({"extra": 1}, 400, "extra"),
])
def test_api_refusals_name_the_field(host, booking, change, status, field):
    start = slot(9)
    body = {"asset_id": booking["assets"][1].id, "booker": booking["tenant"].users[1].mail,
            "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat(), "subject": "x", **change}
    answer = post(host, {k: v for k, v in body.items() if v is not None})
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["field"] == field


def test_fifty_concurrent_overlapping_posts_give_exactly_one_201(host, booking):
    start = slot(12, hour=14)
    room = booking["assets"][1]
    people = [u.mail for u in booking["tenant"].users[:2]]  # users[2] leaves in another test of this module
    statuses, barrier = [], threading.Barrier(50)

    def attempt(n: int) -> None:
        barrier.wait()
        begin = start + timedelta(minutes=n % 20)
        answer = post(host, {"asset_id": room.id, "booker": people[n % 2], "start": begin.isoformat(),
                             "end": (begin + timedelta(minutes=45)).isoformat(), "subject": f"Race {n}"})
        statuses.append((answer.status_code, answer.json()))

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(code for code, _ in statuses)
    assert codes.count(201) == 1 and set(codes) == {201, 409}, codes
    winner = next(body["id"] for code, body in statuses if code == 201)
    assert {body["error"]["reservation_id"] for code, body in statuses if code == 409} == {winner}
    assert all(body["error"]["code"] == "overlap" and winner in body["error"]["message"]
               for code, body in statuses if code == 409)
    wait_for(lambda: len(room_items(booking["cal"], room.mailbox)) >= 1, timeout=20, interval=0.1,
             what="the winner in the room's calendar")
    assert len([e for e in room_items(booking["cal"], room.mailbox)
                if e["start"]["dateTime"][:10] == start.strftime("%Y-%m-%d")]) == 1


def test_a_weekly_series_lands_as_one_meeting_per_occurrence(host, booking):
    person, room = booking["tenant"].users[1].mail, booking["assets"][0]
    start = slot(15, hour=7)
    day = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")[start.weekday()]
    answer = post(host, {"asset_id": room.id, "booker": person, "start": start.isoformat(),
                         "end": (start + timedelta(minutes=30)).isoformat(), "subject": "Weekly sync",
                         "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [day]},
                                        "range": {"type": "numbered", "numberOfOccurrences": 4}}})
    assert answer.status_code == 201, answer.text
    assert answer.json()["series"]["recurrence"]["range"]["numberOfOccurrences"] == 4

    def weekly_meetings():
        found = [e for e in organised(booking["cal"], person) if e["subject"] == "Weekly sync"]
        return found if len(found) == 4 else None

    meetings = wait_for(weekly_meetings, timeout=30, interval=0.2, what="four weekly meetings")
    assert len({m["iCalUId"] for m in meetings}) == 4 and all(m["type"] == "singleInstance" for m in meetings)


def test_a_leavers_future_booking_is_released_on_the_next_user_sync(host, booking, graph_emulator):
    tenant, cal, room = booking["tenant"], booking["cal"], booking["assets"][1]
    leaver = tenant.users[2]
    start = slot(20, hour=16)
    answer = post(host, {"asset_id": room.id, "booker": leaver.mail, "start": start.isoformat(),
                         "end": (start + timedelta(hours=1)).isoformat(), "subject": "Handover"})
    assert answer.status_code == 201, answer.text
    reservation_id = answer.json()["id"]
    wait_for(lambda: stored(booking, reservation_id).sync_status == "synced", timeout=20, interval=0.1,
             what="the booking in Outlook")
    assert organised(cal, leaver.mail)

    requests.post(f"{graph_emulator.base_url}/_control/tenants/{tenant.tenant_id}/users/{leaver.id}/soft-delete",
                  verify=graph_emulator.ca_path, timeout=30).raise_for_status()
    accepted = requests.post(api(host, f"integrations/{booking['integration_id']}/sync-users"), headers=KEY, timeout=30)
    assert accepted.status_code == 202, accepted.text

    wait_for(lambda: stored(booking, reservation_id).status == "cancelled", timeout=30, interval=0.1,
             what="the leaver's booking released")
    # the deleted leaver's mailbox is gone, so the room's copy is declined on the room's side
    wait_for(lambda: not [e for e in room_items(cal, room.mailbox) if e["start"]["dateTime"].startswith(
        start.strftime("%Y-%m-%dT%H:%M"))], timeout=30, interval=0.1, what="the room released")
    wait_for(lambda: stored(booking, reservation_id).sync_status == "synced", timeout=20, interval=0.1,
             what="the release synced")
