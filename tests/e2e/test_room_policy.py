"""The integration's room policy, set through its options, followed end to end (local host,
Azurite, the emulator, a subscribed room): an organizer who is not a person of the integration
is booked as a guest or declined, the organizer's subject is recovered or not, and a leaver's
Outlook meetings are declined on the room's side or left alone."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.support.emulator_fixture import new_tenant
from tests.support.polling import wait_for
from tests.support.room_host import KEY, connect


@pytest.fixture
def tenant(graph_emulator):
    return new_tenant(graph_emulator, users=2, rooms=1)


def _slot(days: int, hour: int) -> tuple[str, str]:
    day = datetime.now(timezone.utc).replace(hour=hour, minute=0, second=0, microsecond=0) + timedelta(days=days)
    return day.isoformat().replace("+00:00", "Z"), (day + timedelta(hours=1)).isoformat().replace("+00:00", "Z")


def _outsider(world) -> str:
    """A person of the tenant who joined after the integration's user sync: not one of its people."""
    answer = requests.post(f"{world.tenant.base_url}/_control/tenants/{world.tenant.tenant_id}/users",
                           json={"count": 1}, verify=world.tenant.ca_path, timeout=30)
    assert answer.status_code == 201, answer.text
    return answer.json()["value"][0]["userPrincipalName"]


def _room_response(world, organizer: str, event_id: str) -> str | None:
    """The room's answer as the organizer's copy shows it."""
    room = world.tenant.rooms[0].email
    copy = world.calendar.fetch(organizer, event_id)
    statuses = [a["status"]["response"] for a in copy.get("attendees", [])
                if a["emailAddress"]["address"].lower() == room]
    return statuses[0] if statuses else None


def _decisions(world) -> list[dict]:
    room = world.tenant.rooms[0].email
    return world.get("synclog", integration_id=world.integration_id, asset_id=world.assets[room]["id"]).json()["value"]


def test_an_unknown_organizer_is_booked_as_a_guest_by_default(host, tenant):
    world = connect(host, tenant, [tenant.rooms[0].email])
    room, stranger = tenant.rooms[0].email, _outsider(world)
    start, end = _slot(2, 9)
    made = world.meeting(stranger, subject="Visitor's meeting", start=start, end=end, rooms=[room])
    found = world.wait_reservations(room, lambda rs: len(rs) == 1)
    assert found[0]["status"] == "confirmed"
    assert found[0]["organizer"]["email"] == stranger.lower() and found[0]["organizer"]["user_id"] is None
    assert _room_response(world, stranger, made["event"]["id"]) == "accepted"


def test_with_unknown_organizer_decline_a_stranger_is_declined_with_a_comment(host, tenant):
    world = connect(host, tenant, [tenant.rooms[0].email], unknown_organizer="decline")
    room, stranger = tenant.rooms[0].email, _outsider(world)
    start, end = _slot(2, 11)
    made = world.meeting(stranger, subject="Visitor's meeting", start=start, end=end, rooms=[room])
    wait_for(lambda: _room_response(world, stranger, made["event"]["id"]) == "declined", timeout=20, interval=0.2,
             what="the room's copy declined")
    declined = [entry for entry in _decisions(world) if entry["decision"] == "decline"]
    assert declined and "can only be booked by people of this organisation" in declined[0]["reason"]
    assert [r for r in world.reservations(room) if r["status"] == "confirmed"] == []
    # a person of the integration still books the room
    person = tenant.users[0].user_principal_name
    world.meeting(person, subject="Colleagues", start=_slot(3, 11)[0], end=_slot(3, 11)[1], rooms=[room])
    assert world.wait_reservations(room, lambda rs: len(rs) == 1)[0]["organizer"]["email"] == person.lower()


def test_with_recover_subject_off_the_room_copys_subject_is_kept(host, tenant):
    world = connect(host, tenant, [tenant.rooms[0].email], recover_subject=False)
    room, person = tenant.rooms[0].email, tenant.users[0]
    start, end = _slot(2, 13)
    made = world.meeting(person.user_principal_name, subject="Quarterly planning", start=start, end=end,
                         rooms=[room])
    room_copy = next(c["event"] for c in made["copies"] if c["mailbox"].lower() == room)
    assert room_copy["subject"] != "Quarterly planning"  # Exchange's default: the organizer's name
    found = world.wait_reservations(room, lambda rs: len(rs) == 1)
    assert found[0]["subject"] == room_copy["subject"]


def test_with_decline_leaver_meetings_off_a_leavers_outlook_meeting_stays_accepted(host, tenant, graph_emulator):
    world = connect(host, tenant, [tenant.rooms[0].email], decline_leaver_meetings=False)
    room, leaver = tenant.rooms[0].email, tenant.users[1]
    start, end = _slot(4, 15)
    made = world.meeting(leaver.user_principal_name, subject="Farewell", start=start, end=end, rooms=[room])
    reservation = world.wait_reservations(room, lambda rs: len(rs) == 1)[0]

    requests.post(f"{graph_emulator.base_url}/_control/tenants/{tenant.tenant_id}/users/{leaver.id}/disable",
                  verify=graph_emulator.ca_path, timeout=30).raise_for_status()
    synced = requests.post(world.api(f"integrations/{world.integration_id}/sync-users"), headers=KEY, timeout=30)
    assert synced.status_code == 202, synced.text
    wait_for(lambda: world.get(f"reservations/{reservation['id']}").json()["status"] == "cancelled", timeout=30,
             interval=0.2, what="the leaver's reservation released")
    assert _room_response(world, leaver.user_principal_name, made["event"]["id"]) == "accepted"
    room_copy = next(c["event"] for c in made["copies"] if c["mailbox"].lower() == room)
    assert world.calendar.fetch(room, room_copy["id"])["responseStatus"]["response"] == "accepted"
