"""Linking rooms through the local host: each refusal of `POST /api/assets` when Graph says the
mailbox will not sync (missing, not a room, calendar unreadable, Calendars.ReadWrite not
granted), the room list without Place.Read.All, creating an asset from a room of the list, and
the subscription state an asset reads after subscribing, a notification and a failure."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

import requests

from tests.support.emulator_fixture import new_tenant
from tests.support.polling import wait_for
from tests.support.room_host import connect

USERS_AND_CALENDARS = {"User.Read.All", "Calendars.ReadWrite"}


def linked(host, graph_emulator, roles=None, rooms: int = 1):
    """A connected tenant with one person and `rooms` rooms, none linked yet."""
    return connect(host, new_tenant(graph_emulator, roles=roles, users=1, rooms=rooms), [])


def refused(answer: requests.Response, status: int, code: str, field: str) -> dict:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert (error["code"], error.get("field")) == (code, field), error
    return error


def fault(graph_emulator, tenant, method: str, path: str, status: int, code: str) -> None:
    rule = requests.post(f"{graph_emulator.base_url}/_control/faults", verify=graph_emulator.ca_path, timeout=10,
                         json={"tenant": tenant.tenant_id, "method": method, "path": path, "status": status,
                               "count": 1, "body": {"code": code, "message": "refused by the test"}})
    assert rule.status_code == 201, rule.text


def test_an_asset_is_made_from_a_room_of_the_tenants_list(host, graph_emulator):
    world = linked(host, graph_emulator, rooms=2)
    rooms = world.get(f"integrations/{world.integration_id}/rooms")
    assert rooms.status_code == 200, rooms.text
    listed = {room["email"]: room for room in rooms.json()["value"]}
    assert set(listed) == {room.email.lower() for room in world.tenant.rooms}
    chosen = world.tenant.rooms[1]
    made = world.post("assets", {"integration_id": world.integration_id, "room": chosen.email.upper()})
    assert made.status_code == 201, made.text
    asset = made.json()
    assert (asset["mailbox"], asset["name"], asset["capacity"]) == (chosen.email.lower(), chosen.display_name,
                                                                   listed[chosen.email.lower()]["capacity"])
    assert asset["subscription"]["state"] == "unsubscribed"
    again = world.post("assets", {"integration_id": world.integration_id, "mailbox": chosen.email})
    refused(again, 409, "mailbox_linked", "mailbox")


def test_each_mailbox_graph_would_not_sync_is_refused_naming_the_field(host, graph_emulator):
    world = linked(host, graph_emulator)
    tenant, iid = world.tenant, world.integration_id
    nobody = f"nobody-{uuid.uuid4().hex[:6]}@{tenant.domain}"
    refused(world.post("assets", {"integration_id": iid, "mailbox": nobody}), 422, "mailbox_not_found", "mailbox")
    refused(world.post("assets", {"integration_id": iid, "room": nobody}), 422, "mailbox_not_found", "room")
    person = tenant.users[0].user_principal_name
    refused(world.post("assets", {"integration_id": iid, "mailbox": person}), 422, "not_a_room", "mailbox")
    room = tenant.rooms[0].email
    # What an Exchange application access policy (or RBAC scope) leaving the room out looks like.
    fault(graph_emulator, tenant, "GET", f"/users/{re.escape(room)}/calendarView", 403, "ErrorAccessDenied")
    error = refused(world.post("assets", {"integration_id": iid, "mailbox": room}), 422, "calendar_not_readable",
                    "mailbox")
    assert "Calendars.ReadWrite" in error["message"]
    refused(world.post("assets", {"integration_id": iid, "mailbox": "not an address"}), 422, "invalid_field",
            "mailbox")
    assert world.get("assets", integration_id=iid).json()["value"] == []
    assert world.post("assets", {"integration_id": iid, "mailbox": room}).status_code == 201  # the fault is spent


def test_without_calendars_readwrite_no_room_can_be_linked(host, graph_emulator):
    world = linked(host, graph_emulator, roles={"User.Read.All", "Place.Read.All"})
    answer = world.post("assets", {"integration_id": world.integration_id, "mailbox": world.tenant.rooms[0].email})
    error = refused(answer, 422, "calendars_not_granted", "integration_id")
    assert "Calendars.ReadWrite" in error["message"]


def test_without_place_read_the_room_list_is_a_403_naming_it_and_a_room_is_still_linked_by_address(
        host, graph_emulator):
    world = linked(host, graph_emulator, roles=USERS_AND_CALENDARS)
    answer = world.get(f"integrations/{world.integration_id}/rooms")
    error = refused(answer, 403, "permission_missing", None)
    assert error["permission"] == "Place.Read.All" and "Place.Read.All" in error["message"]
    made = world.post("assets", {"integration_id": world.integration_id, "mailbox": world.tenant.rooms[0].email})
    assert made.status_code == 201, made.text


def test_an_asset_reads_its_subscription_expiry_last_notification_and_last_error(host, graph_emulator):
    world = connect(host, new_tenant(graph_emulator, users=1, rooms=1), [])
    room = world.tenant.rooms[0].email
    asset = world.post("assets", {"integration_id": world.integration_id, "room": room}).json()
    before = datetime.now(timezone.utc) - timedelta(minutes=10)
    answer = world.post(f"assets/{asset['id']}/subscription")
    assert answer.status_code == 201, answer.text
    subscribed = answer.json()
    assert subscribed["state"] == "subscribed" and subscribed["id"]
    assert datetime.fromisoformat(subscribed["expires_at"].replace("Z", "+00:00")) > datetime.now(timezone.utc)
    assert datetime.fromisoformat(subscribed["subscribed_at"].replace("Z", "+00:00")) > before
    assert subscribed["last_notification_at"] is None and subscribed["last_error"] is None
    assert world.get(f"assets/{asset['id']}").json()["subscription"] == subscribed

    start = (datetime.now(timezone.utc) + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
    world.calendar.control_call("POST", world.tenant.users[0].user_principal_name, "meetings", body={
        "subject": "Notified", "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat(),
        "rooms": [room]})
    notified = wait_for(lambda: world.get(f"assets/{asset['id']}").json()["subscription"]["last_notification_at"],
                        timeout=20, interval=0.2)
    assert notified.endswith("Z")

    fault(graph_emulator, world.tenant, "POST", r"/subscriptions$", 403, "ExtensionError")
    failed = world.post(f"assets/{asset['id']}/subscription")
    assert failed.status_code == 502, failed.text
    after = world.get(f"assets/{asset['id']}").json()["subscription"]
    assert "Graph refused the subscription" in after["last_error"] and after["last_error_at"]
    assert (after["state"], after["id"], after["last_notification_at"]) == ("subscribed", subscribed["id"], notified)
