"""Outlook -> platform, end to end (local host, Azurite, the emulator, a subscribed room): one
occurrence of a weekly series moved in Outlook moves just that occurrence's reservation, and a
private meeting reads as "Private" through the reservations API."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.support.calendar_client import q
from tests.support.room_host import connect_new_tenant


@pytest.fixture
def world(host, graph_emulator):
    return connect_new_tenant(host, graph_emulator, users=1, rooms=1)


def _z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _confirmed(found: list[dict]) -> list[dict]:
    return [r for r in found if r["status"] == "confirmed"]


def test_an_occurrence_moved_in_outlook_moves_its_reservation_only(world):
    person, room = world.tenant.users[0].user_principal_name, world.tenant.rooms[0].email
    first = datetime.now(timezone.utc).replace(hour=8, minute=0, second=0, microsecond=0) + timedelta(days=1)
    recurrence = {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [first.strftime("%A").lower()]},
                  "range": {"type": "numbered", "startDate": first.date().isoformat(), "numberOfOccurrences": 4}}
    made = world.meeting(person, subject="Weekly sync", start=_z(first), end=_z(first + timedelta(hours=1)),
                         rooms=[room], recurrence=recurrence)
    before = {r["id"]: r for r in world.wait_reservations(room, lambda rs: len(_confirmed(rs)) == 4)}

    second = first + timedelta(weeks=1)
    listed = world.calendar.http.get(world.calendar.item(person, made["event"]["id"], "instances"), params={
        "startDateTime": _z(first - timedelta(hours=1)), "endDateTime": _z(first + timedelta(weeks=5))})
    assert listed.status_code == 200, listed.text
    occurrences = listed.json()["value"]
    (occurrence,) = [o for o in occurrences if o["start"]["dateTime"].startswith(second.strftime("%Y-%m-%dT%H:%M"))]
    new_start, new_end = second + timedelta(hours=5), second + timedelta(hours=6, minutes=30)
    moved = world.calendar.control_call("PATCH", person, "meetings", q(occurrence["id"]),
                                        body={"start": _z(new_start), "end": _z(new_end)})
    assert moved.status_code == 200, moved.text

    after = world.wait_reservations(room, lambda rs: any(r["start"] == _z(new_start) for r in rs))
    assert len(_confirmed(after)) == 4 and {r["id"] for r in after} == set(before)
    (followed,) = [r for r in after if r["start"] == _z(new_start)]
    assert followed["end"] == _z(new_end) and followed["status"] == "confirmed"
    assert followed["occurrence_start"] == _z(second) and followed["series_id"] == before[followed["id"]]["series_id"]
    unchanged = {r["id"]: (r["start"], r["end"]) for r in after if r["id"] != followed["id"]}
    assert unchanged == {key: (r["start"], r["end"]) for key, r in before.items() if key != followed["id"]}


@pytest.mark.parametrize("room_keeps_privacy", [True, False], ids=["private-room-copy", "exchange-defaults"])
def test_a_private_meeting_reads_as_private(world, room_keeps_privacy):
    person, room = world.tenant.users[0].user_principal_name, world.tenant.rooms[0].email
    if room_keeps_privacy:
        world.calendar.room_settings(room, RemovePrivateProperty=False)
    start = datetime.now(timezone.utc).replace(hour=14, minute=0, second=0, microsecond=0) + timedelta(days=2)
    world.meeting(person, subject="Salary talk", start=_z(start), end=_z(start + timedelta(hours=1)), rooms=[room],
                  sensitivity="private", body={"contentType": "text", "content": "Confidential notes"})
    (listed,) = world.wait_reservations(room, lambda rs: len(rs) == 1)
    assert (listed["subject"], listed["private"]) == ("Private", True)
    shown = world.get(f"reservations/{listed['id']}").json()
    assert (shown["subject"], shown["private"]) == ("Private", True)
    assert "Salary talk" not in str(shown) and "Confidential notes" not in str(shown)
