"""Outlook -> platform through the local host, Azurite and the Graph emulator: a person's meeting
that invites a linked room becomes a reservation of that asset, and follows when it moves, is
cancelled or repeats; forged and repeated notifications change nothing; conflicts and strangers
are declined on the room's side."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.support.calendar_client import q
from tests.support.polling import wait_for
from functions import room_context
from tests.support.room_host import KEY, connect_new_tenant


@pytest.fixture
def world(host, graph_emulator):
    return connect_new_tenant(host, graph_emulator, users=3, rooms=2)


def _slot(days: int, hour: int, minutes: int = 60) -> tuple[str, str]:
    day = datetime.now(timezone.utc).replace(hour=hour, minute=0, second=0, microsecond=0) + timedelta(days=days)
    return day.isoformat().replace("+00:00", "Z"), (day + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def _confirmed(found: list[dict]) -> list[dict]:
    return [r for r in found if r["status"] == "confirmed"]


def test_a_meeting_inviting_the_room_becomes_a_reservation_and_follows_moves_and_cancellation(world):
    """The seed product's acceptance test (its Step 9), then a move and a cancellation."""
    person, room = world.tenant.users[0], world.tenant.rooms[0].email
    start, end = _slot(2, 9)
    made = world.meeting(person.user_principal_name, subject="Quarterly planning", start=start, end=end,
                         rooms=[room])
    found = world.wait_reservations(room, lambda rs: len(_confirmed(rs)) == 1)
    reservation = found[0]
    assert reservation["asset_id"] == world.assets[room]["id"]
    assert reservation["organizer"]["email"] == person.user_principal_name.lower()
    assert reservation["organizer"]["user_id"] == person.id
    assert (reservation["start"], reservation["end"]) == (start, end)
    assert reservation["origin"] == "outlook"
    # Exchange's default puts the organizer's name in the room copy; the real subject is recovered.
    assert reservation["subject"] == "Quarterly planning"

    new_start, new_end = _slot(3, 14, 30)
    moved = world.calendar.control_call("PATCH", person.user_principal_name, "meetings", q(made["event"]["id"]),
                                        body={"start": new_start, "end": new_end})
    assert moved.status_code == 200, moved.text
    world.wait_reservations(room, lambda rs: rs and rs[0]["start"] == new_start and rs[0]["end"] == new_end)

    cancelled = world.calendar.control_call("POST", person.user_principal_name, "meetings", q(made["event"]["id"]),
                                            "cancel", body={})
    assert cancelled.status_code == 204, cancelled.text
    final = world.wait_reservations(room, lambda rs: rs and rs[0]["status"] == "cancelled")
    assert len(final) == 1 and final[0]["id"] == reservation["id"]
    log = world.get("synclog", integration_id=world.integration_id, reservation_id=reservation["id"]).json()["value"]
    assert {"create", "update", "cancel"} <= {entry["decision"] for entry in log}


def test_a_weekly_series_becomes_its_occurrences_and_an_occurrence_cancelled_in_outlook_follows(world):
    person, room = world.tenant.users[1], world.tenant.rooms[1].email
    start, end = _slot(1, 8)
    first = datetime.fromisoformat(start.replace("Z", "+00:00"))
    recurrence = {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [first.strftime("%A").lower()]},
                  "range": {"type": "numbered", "startDate": first.date().isoformat(), "numberOfOccurrences": 4}}
    made = world.meeting(person.user_principal_name, subject="Weekly sync", start=start, end=end, rooms=[room],
                         recurrence=recurrence)
    found = world.wait_reservations(room, lambda rs: len(_confirmed(rs)) == 4)
    assert len({r["series_id"] for r in found}) == 1 and found[0]["series_id"]
    second = sorted(found, key=lambda r: r["start"])[1]
    answer = world.calendar.control_call("POST", person.user_principal_name, "meetings", q(made["event"]["id"]),
                                         "cancel-occurrence", body={"originalStart": second["start"]})
    assert answer.status_code == 204, answer.text
    after = world.wait_reservations(room, lambda rs: len(_confirmed(rs)) == 3)
    assert {r["id"] for r in after if r["status"] == "cancelled"} == {second["id"]}


def test_repeated_notifications_and_a_resync_leave_exactly_one_reservation(world, graph_emulator):
    person, room = world.tenant.users[2], world.tenant.rooms[0].email
    settings = requests.patch(f"{graph_emulator.base_url}/_control/deliveries/switches",
                              json={"tenant": world.tenant.tenant_id, "duplicate": 3}, verify=graph_emulator.ca_path,
                              timeout=10)
    assert settings.status_code == 200, settings.text
    start, end = _slot(4, 10)
    world.meeting(person.user_principal_name, subject="Duplicated", start=start, end=end, rooms=[room])
    world.wait_reservations(room, lambda rs: len(_confirmed(rs)) == 1)
    world.settle()
    resync = world.post(f"assets/{world.assets[room]['id']}/resync")
    assert resync.status_code == 202, resync.text
    wait_for(lambda: any(e["input"].get("trigger", "").startswith("resync") for e in world.get(
        "synclog", integration_id=world.integration_id, asset_id=world.assets[room]["id"]).json()["value"]),
        timeout=20, interval=0.2)
    assert len(world.reservations(room)) == 1


def test_a_conflicting_meeting_is_declined_on_the_room_side_and_the_existing_booking_kept(world):
    room = world.tenant.rooms[1].email
    first, second = world.tenant.users[0], world.tenant.users[1]
    start, end = _slot(5, 11)
    world.meeting(first.user_principal_name, subject="First", start=start, end=end, rooms=[room])
    kept = world.wait_reservations(room, lambda rs: len(_confirmed(rs)) == 1)[0]
    # Exchange would decline an overlapping request itself; let the room accept everything so
    # the clash reaches us (as it does when our booking is not yet in the room's calendar).
    world.calendar.room_settings(room, AllowConflicts=True)
    clash = world.meeting(second.user_principal_name, subject="Second", start=start, end=end, rooms=[room])

    def room_declined():
        organizer_copy = world.calendar.fetch(second.user_principal_name, clash["event"]["id"])
        statuses = [a["status"]["response"] for a in organizer_copy.get("attendees", [])
                    if a["emailAddress"]["address"].lower() == room]
        return statuses if statuses == ["declined"] else None

    wait_for(room_declined, timeout=20, interval=0.2)
    confirmed = _confirmed(world.reservations(room))
    assert [r["id"] for r in confirmed] == [kept["id"]]


def test_a_forged_notification_changes_nothing(world):
    room = world.tenant.rooms[0].email
    subscription_id = world.assets[room]["subscription"]["id"]
    forged = {"value": [{"subscriptionId": subscription_id, "clientState": "guessed", "changeType": "created",
                         "tenantId": world.tenant.tenant_id,
                         "resource": f"Users/{world.tenant.users[0].id}/Events/AAMkForged=",
                         "resourceData": {"id": "AAMkForged="}}]}
    url = f"{world.host.base_url}/api/microsoft_graph/notifications/notification_url"
    answer = requests.post(url, json=forged, timeout=10)
    assert answer.status_code == 202
    assert requests.post(url, data=b"{not json", timeout=10).status_code == 400
    assert requests.post(url, json={"value": "x"}, timeout=10).status_code == 400
    handshake = requests.post(url, params={"validationToken": "a b&c"}, timeout=10)
    assert handshake.status_code == 200 and handshake.text == "a b&c"
    assert handshake.headers["content-type"].startswith("text/plain")
    assert world.reservations(room) == []


def test_deleting_the_integration_hides_its_rooms_at_once_and_purges_them_and_their_subscriptions(world,
                                                                                                  graph_emulator):
    person, room = world.tenant.users[0], world.tenant.rooms[0].email
    start, end = _slot(6, 9)
    world.meeting(person.user_principal_name, subject="Before deletion", start=start, end=end, rooms=[room])
    reservation = world.wait_reservations(room, lambda rs: len(rs) == 1)[0]
    asset_id = world.assets[room]["id"]
    answer = requests.delete(world.api(f"integrations/{world.integration_id}"), headers=KEY, timeout=30)
    assert answer.status_code == 202, answer.text
    assert world.get(f"assets/{asset_id}").status_code == 404
    assert world.get(f"reservations/{reservation['id']}").status_code == 404

    def subscriptions_at_graph():
        found = requests.get(f"{graph_emulator.base_url}/_control/subscriptions",
                             params={"tenant": world.tenant.tenant_id}, verify=graph_emulator.ca_path, timeout=10)
        return found.json()["value"]

    wait_for(lambda: subscriptions_at_graph() == [], timeout=30, interval=0.2)
    wait_for(lambda: world.get(f"integrations/{world.integration_id}").status_code == 404 and
             room_context.assets_repo().get(asset_id) is None, timeout=30, interval=0.2)
    assert room_context.reservations_repo().get(world.integration_id, asset_id, reservation["id"]) is None
