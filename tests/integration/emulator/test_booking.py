"""Room resource booking and meeting responses on the Graph emulator (GRAPH.md §4.6-4.7):
a room invited as a resource auto-accepts into its own calendar (same iCalUId, its own id, the
organizer's name as subject, no body, private flag cleared under Exchange's defaults), declines
conflicts and out-of-policy requests, follows moves and cancellations; people get tentative
copies they can accept or decline; every change in every mailbox is published on the bus."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests

from tests.support.calendar_client import CalendarClient, at, event_body, graph_time, q


@pytest.fixture
def cal(make_tenant) -> CalendarClient:
    return CalendarClient(make_tenant(users=3, rooms=2))


@pytest.fixture
def organizer(cal):
    return cal.tenant.users[0]


@pytest.fixture
def room(cal):
    return cal.tenant.rooms[0]


def room_status(event: dict, room) -> str:
    return next(a["status"]["response"] for a in event["attendees"]
                if a["emailAddress"]["address"].lower() == room.email.lower())


def room_items(cal: CalendarClient, room) -> list[dict]:
    return cal.list(room.email)["value"]


def book(cal, organizer, room, subject="Quarterly planning", start=None, minutes=60, **extra) -> dict:
    start = start or at(cal.day(2), 10)
    return cal.created(organizer.mail, event_body(subject, start, minutes, rooms=(room.email,), **extra))


def test_room_auto_accepts_into_its_own_calendar_with_exchange_default_content(cal, organizer, room):
    created = book(cal, organizer, room, sensitivity="private",
                   body={"contentType": "html", "content": "<p>Budget numbers</p>"})
    assert room_status(created, room) == "none"  # the room answers after the request is stored
    assert room_status(cal.fetch(organizer.mail, created["id"]), room) == "accepted"

    [copy] = room_items(cal, room)
    assert copy["iCalUId"] == created["iCalUId"] and copy["id"] != created["id"]
    assert copy["subject"] == organizer.display_name
    assert copy["body"]["content"] == "" and copy["bodyPreview"] == ""
    assert copy["sensitivity"] == "normal"
    assert copy["isOrganizer"] is False and copy["responseStatus"]["response"] == "accepted"
    assert copy["organizer"]["emailAddress"]["address"] == organizer.mail
    assert copy["start"] == created["start"] and copy["end"] == created["end"]


def test_real_subject_body_and_privacy_when_the_room_keeps_them(cal, organizer, room):
    cal.room_settings(room.email, DeleteSubject=False, AddOrganizerToSubject=False, DeleteComments=False,
                  RemovePrivateProperty=False)
    created = book(cal, organizer, room, subject="Board meeting", sensitivity="private",
                   body={"contentType": "text", "content": "Agenda attached"})
    [copy] = room_items(cal, room)
    assert copy["subject"] == "Board meeting" and copy["bodyPreview"] == "Agenda attached"
    assert copy["sensitivity"] == "private"
    cal.patch(organizer.mail, created["id"], {"subject": "Board meeting (final)"})
    assert cal.fetch(room.email, copy["id"])["subject"] == "Board meeting (final)"


def test_a_room_with_an_answer_delay_tells_the_organizer_only_once_it_has_passed(cal, organizer, room):
    """Exchange's Resource Booking Assistant answers a meeting request asynchronously (GRAPH.md
    §4.7, Set-CalendarProcessing: the Calendar Attendant and Resource Booking Assistant process
    requests), so a read right after the create may still show "none"; the emulator's
    answer_delay_seconds holds both an acceptance and a decline back that long."""
    cal.room_settings(room.email, answer_delay_seconds=60)
    start = at(cal.day(3), 11)
    first = book(cal, organizer, room, subject="First", start=start)
    clash = book(cal, cal.tenant.users[1], room, subject="Clash", start=start)
    assert room_status(cal.fetch(organizer.mail, first["id"]), room) == "none"
    assert room_status(cal.fetch(cal.tenant.users[1].mail, clash["id"]), room) == "none"
    moved = requests.post(f"{cal.tenant.base_url}/_control/clock", json={"advance_seconds": 61},
                          verify=cal.tenant.ca_path, timeout=30)
    assert moved.status_code == 200, moved.text
    assert room_status(cal.fetch(organizer.mail, first["id"]), room) == "accepted"
    assert room_status(cal.fetch(cal.tenant.users[1].mail, clash["id"]), room) == "declined"


def test_a_negative_answer_delay_is_refused(cal, room):
    url = f"{cal.tenant.base_url}/_control/tenants/{cal.tenant.tenant_id}/rooms/{q(room.email)}/settings"
    answer = requests.patch(url, json={"answer_delay_seconds": -1}, verify=cal.tenant.ca_path, timeout=30)
    assert answer.status_code == 400 and "answer_delay_seconds" in answer.text


def test_conflicting_request_is_declined_without_a_copy(cal, organizer, room):
    first = book(cal, organizer, room, start=at(cal.day(3), 10))
    other = cal.tenant.users[1]
    clash = book(cal, other, room, subject="Clash", start=at(cal.day(3), 10, 30))
    neighbour = book(cal, other, room, subject="After", start=at(cal.day(3), 11))
    assert room_status(cal.fetch(other.mail, clash["id"]), room) == "declined"
    assert room_status(cal.fetch(other.mail, neighbour["id"]), room) == "accepted"
    assert sorted(c["iCalUId"] for c in room_items(cal, room)) == sorted([first["iCalUId"], neighbour["iCalUId"]])


def test_simultaneous_requests_for_one_slot_book_the_room_once(cal, room):
    start = at(cal.day(5), 10)
    people = cal.tenant.users
    with ThreadPoolExecutor(max_workers=len(people)) as pool:
        made = list(pool.map(lambda p: (p, book(cal, p, room, subject=f"Race {p.mail}", start=start)), people))
    statuses = sorted(room_status(cal.fetch(p.mail, e["id"]), room) for p, e in made)
    assert statuses == ["accepted"] + ["declined"] * (len(people) - 1)
    assert len(room_items(cal, room)) == 1


def test_moves_follow_to_the_room_copy_and_a_move_into_a_conflict_is_declined(cal, organizer, room):
    created = book(cal, organizer, room, start=at(cal.day(4), 9))
    [copy] = room_items(cal, room)
    later = at(cal.day(4), 14)
    moved = cal.patch(organizer.mail, created["id"], {"start": graph_time(later), "end": graph_time(later + timedelta(hours=1))})
    assert moved.status_code == 200
    followed = cal.fetch(room.email, copy["id"])
    assert followed["start"]["dateTime"].startswith(later.strftime("%Y-%m-%dT%H:%M"))
    assert followed["changeKey"] != copy["changeKey"]

    blocker = book(cal, cal.tenant.users[1], room, subject="Blocker", start=at(cal.day(4), 16))
    into_conflict = at(cal.day(4), 16, 30)
    cal.patch(organizer.mail, created["id"], {"start": graph_time(into_conflict),
                                              "end": graph_time(into_conflict + timedelta(hours=1))})
    assert room_status(cal.fetch(organizer.mail, created["id"]), room) == "declined"
    assert cal.get(room.email, copy["id"]).status_code == 404
    assert [c["iCalUId"] for c in room_items(cal, room)] == [blocker["iCalUId"]]


def test_cancellation_marks_the_room_copy_cancelled(cal, organizer, room):
    created = book(cal, organizer, room)
    [copy] = room_items(cal, room)
    assert cal.action(organizer.mail, created["id"], "cancel", {"comment": "No longer needed"}).status_code == 202
    assert cal.get(organizer.mail, created["id"]).status_code == 404
    cancelled = cal.fetch(room.email, copy["id"])
    assert cancelled["isCancelled"] is True and cancelled["subject"].startswith("Canceled: ")
    # a cancelled booking no longer blocks the room
    again = book(cal, cal.tenant.users[1], room, subject="Rebooked", start=at(cal.day(2), 10))
    assert room_status(cal.fetch(cal.tenant.users[1].mail, again["id"]), room) == "accepted"


def test_delete_with_remove_canceled_meetings_removes_the_copy(cal, organizer, room):
    cal.room_settings(room.email, RemoveCanceledMeetings=True)
    created = book(cal, organizer, room)
    [copy] = room_items(cal, room)
    assert cal.delete(organizer.mail, created["id"]).status_code == 204
    assert cal.get(room.email, copy["id"]).status_code == 404


def test_removing_the_room_from_the_attendees_cancels_its_copy(cal, organizer, room):
    created = book(cal, organizer, room)
    [copy] = room_items(cal, room)
    cal.patch(organizer.mail, created["id"], {"attendees": []})
    assert cal.fetch(room.email, copy["id"])["isCancelled"] is True


def test_recurring_meeting_becomes_a_series_in_the_room(cal, organizer, room):
    start = at(cal.day(1), 8)
    recurrence = {"pattern": {"type": "daily", "interval": 1},
                  "range": {"type": "numbered", "startDate": start.date().isoformat(), "numberOfOccurrences": 3}}
    master = book(cal, organizer, room, subject="Daily", start=start, minutes=30, recurrence=recurrence)
    [copy] = room_items(cal, room)
    assert copy["type"] == "seriesMaster" and copy["recurrence"] == master["recurrence"]
    window = (start - timedelta(hours=1), start + timedelta(days=4))
    organizer_view = cal.view(organizer.mail, *window)
    room_view = cal.view(room.email, *window)
    assert [o["iCalUId"] for o in room_view] == [o["iCalUId"] for o in organizer_view]
    assert {o["id"] for o in room_view}.isdisjoint({o["id"] for o in organizer_view})

    second = organizer_view[1]
    cal.delete(organizer.mail, second["id"])
    room_second = next(o for o in cal.view(room.email, *window) if o["iCalUId"] == second["iCalUId"])
    assert room_second["isCancelled"] is True and room_second["type"] == "exception"


def test_recurring_request_with_one_conflicting_occurrence_is_declined(cal, organizer, room):
    start = at(cal.day(1), 8)
    book(cal, cal.tenant.users[1], room, subject="One-off", start=start + timedelta(days=2))
    recurrence = {"pattern": {"type": "daily", "interval": 1},
                  "range": {"type": "numbered", "startDate": start.date().isoformat(), "numberOfOccurrences": 5}}
    master = book(cal, organizer, room, subject="Daily", start=start, recurrence=recurrence)
    assert room_status(cal.fetch(organizer.mail, master["id"]), room) == "declined"


def test_endless_series_is_declined_unless_the_scheduling_horizon_is_relaxed(cal, organizer, room):
    start = at(cal.day(1), 7)
    endless = {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["friday"]},
               "range": {"type": "noEnd", "startDate": start.date().isoformat()}}
    declined = book(cal, organizer, room, subject="Forever", start=start, recurrence=endless)
    assert room_status(cal.fetch(organizer.mail, declined["id"]), room) == "declined"
    cal.room_settings(room.email, EnforceSchedulingHorizon=False)
    accepted = book(cal, organizer, room, subject="Forever again", start=start, recurrence=endless)
    assert room_status(cal.fetch(organizer.mail, accepted["id"]), room) == "accepted"


@pytest.mark.parametrize("days_ahead, minutes, expected", [
    (2, 60, "accepted"), (2, 25 * 60, "declined"), (179, 60, "accepted"), (200, 60, "declined")])
def test_duration_and_booking_window_limits(cal, organizer, room, days_ahead, minutes, expected):
    created = book(cal, organizer, room, start=at(cal.day(days_ahead), 6), minutes=minutes)
    assert room_status(cal.fetch(organizer.mail, created["id"]), room) == expected


def test_people_get_tentative_copies_they_can_accept_or_decline(cal, organizer):
    alice, bob = cal.tenant.users[1], cal.tenant.users[2]
    created = cal.created(organizer.mail, event_body("Lunch", at(cal.day(2), 12), attendees=(alice.mail, bob.mail)))
    [alice_copy] = cal.list(alice.mail)["value"]
    [bob_copy] = cal.list(bob.mail)["value"]
    assert alice_copy["responseStatus"]["response"] == "notResponded" and alice_copy["showAs"] == "tentative"
    assert alice_copy["iCalUId"] == created["iCalUId"] and alice_copy["subject"] == "Lunch"

    assert cal.action(alice.mail, alice_copy["id"], "accept", {"comment": "Sure", "sendResponse": True}).status_code == 202
    assert cal.fetch(alice.mail, alice_copy["id"])["responseStatus"]["response"] == "accepted"
    assert cal.action(bob.mail, bob_copy["id"], "decline", {"comment": "Busy"}).status_code == 202
    assert cal.get(bob.mail, bob_copy["id"]).status_code == 404
    statuses = {a["emailAddress"]["address"]: a["status"]["response"] for a in cal.fetch(organizer.mail, created["id"])["attendees"]}
    assert statuses == {alice.mail: "accepted", bob.mail: "declined"}

    cal.patch(organizer.mail, created["id"], {"subject": "Team lunch"})
    assert cal.fetch(alice.mail, alice_copy["id"])["subject"] == "Team lunch"


def test_tentative_without_sending_a_response_leaves_the_organizer_unaware(cal, organizer):
    alice = cal.tenant.users[1]
    created = cal.created(organizer.mail, event_body("Sync", at(cal.day(2), 15), attendees=(alice.mail,)))
    [copy] = cal.list(alice.mail)["value"]
    cal.action(alice.mail, copy["id"], "tentativelyAccept", {"sendResponse": False})
    assert cal.fetch(alice.mail, copy["id"])["responseStatus"]["response"] == "tentativelyAccepted"
    assert cal.fetch(organizer.mail, created["id"])["attendees"][0]["status"]["response"] == "none"


def test_only_the_organizer_cancels_and_only_attendees_respond(cal, organizer):
    alice = cal.tenant.users[1]
    created = cal.created(organizer.mail, event_body("Review", at(cal.day(2), 16), attendees=(alice.mail,)))
    [copy] = cal.list(alice.mail)["value"]
    refused = cal.action(alice.mail, copy["id"], "cancel")
    assert refused.status_code == 400 and "organizer" in refused.json()["error"]["message"]
    assert cal.action(organizer.mail, created["id"], "accept").status_code == 400
    assert cal.action(organizer.mail, "AAMkAGunknown=", "accept").status_code == 404


def test_a_room_declining_through_graph_removes_its_copy_and_tells_the_organizer(cal, organizer, room):
    created = book(cal, organizer, room)
    [copy] = room_items(cal, room)
    assert cal.action(room.email, copy["id"], "decline", {"comment": "Reserved elsewhere"}).status_code == 202
    assert room_items(cal, room) == []
    assert room_status(cal.fetch(organizer.mail, created["id"]), room) == "declined"


def test_every_change_in_every_mailbox_is_published(cal, organizer, room):
    changes = []
    tenant_id = cal.tenant.tenant_id
    cal.tenant.world.bus.subscribe(lambda c: changes.append(c) if c.tenant_id == tenant_id and c.kind == "events" else None)
    created = book(cal, organizer, room)
    [copy] = room_items(cal, room)
    org_changes = [(c.change_type, c.etag) for c in changes if c.item_id == created["id"]]
    assert org_changes[:2] == [("created", f'W/"{created["changeKey"]}"'), ("updated", f'W/"{created["changeKey"]}"')]
    assert org_changes[-1] == ("updated", cal.fetch(organizer.mail, created["id"])["@odata.etag"])  # the room's answer
    room_changes = [c for c in changes if c.item_id == copy["id"]]
    assert [c.change_type for c in room_changes][:2] == ["created", "updated"]
    assert room_changes[0].user_id == room.user_id
    assert room_changes[0].resource == f"Users/{room.user_id}/Events/{copy['id']}"
    assert room_changes[0].odata_type == "#Microsoft.Graph.Event"

    changes.clear()
    cal.delete(organizer.mail, created["id"])
    assert ("deleted", created["id"]) in [(c.change_type, c.item_id) for c in changes]
    assert ("updated", copy["id"]) in [(c.change_type, c.item_id) for c in changes]  # the room copy is cancelled


# ---- the control API acting as Outlook users ------------------------------------------------------

def test_control_api_books_moves_and_cancels_like_an_outlook_user(cal, organizer, room):
    start = at(cal.day(3), 9)
    made = cal.control_call("POST", organizer.mail, "meetings", body={
        "subject": "Made in Outlook", "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat(),
        "rooms": [room.email]})
    assert made.status_code == 201, made.text
    event, [copy] = made.json()["event"], made.json()["copies"]
    assert copy["mailbox"] == room.email and copy["event"]["iCalUId"] == event["iCalUId"]
    assert room_status(event, room) == "accepted"
    assert (event["location"]["uniqueId"], event["location"]["uniqueIdType"]) == (room.email, "directory")

    later = start + timedelta(hours=3)
    moved = cal.control_call("PATCH", organizer.mail, "meetings", q(event["id"]),
                             body={"start": later.isoformat(), "end": (later + timedelta(hours=1)).isoformat(),
                                   "subject": "Moved in Outlook"})
    assert moved.status_code == 200
    assert cal.fetch(room.email, copy["event"]["id"])["start"]["dateTime"].startswith(later.strftime("%Y-%m-%dT%H"))

    second_room = cal.tenant.rooms[1]
    added = cal.control_call("POST", organizer.mail, "meetings", q(event["id"]), "rooms", body={"email": second_room.email})
    assert {c["mailbox"] for c in added.json()["copies"]} == {room.email, second_room.email}
    removed = cal.control_call("DELETE", organizer.mail, "meetings", q(event["id"]), "rooms", q(room.email))
    assert removed.status_code == 200
    assert cal.fetch(room.email, copy["event"]["id"])["isCancelled"] is True

    assert cal.control_call("POST", organizer.mail, "meetings", q(event["id"]), "cancel").status_code == 204
    raw = cal.raw_events(second_room.email)
    assert raw[0]["isCancelled"] is True and raw[0]["_internal"]["source"]["event"] == event["id"]


def test_control_api_cancels_one_occurrence_and_responds_as_an_attendee(cal, organizer, room):
    start = at(cal.day(1), 13)
    made = cal.control_call("POST", organizer.mail, "meetings", body={
        "subject": "Weekly", "start": start.isoformat(), "end": (start + timedelta(minutes=30)).isoformat(),
        "rooms": [room.email], "attendees": [cal.tenant.users[1].mail],
        "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [start.strftime("%A").lower()]},
                       "range": {"type": "numbered", "startDate": start.date().isoformat(), "numberOfOccurrences": 3}}})
    assert made.status_code == 201, made.text
    master = made.json()["event"]
    second_start = start + timedelta(days=7)
    cancelled = cal.control_call("POST", organizer.mail, "meetings", q(master["id"]), "cancel-occurrence",
                                 body={"originalStart": second_start.isoformat()})
    assert cancelled.status_code == 204
    window = (start - timedelta(hours=1), start + timedelta(days=15))
    assert len(cal.view(organizer.mail, *window)) == 2
    raw_master = next(e for e in cal.raw_events(organizer.mail) if e["id"] == master["id"])
    assert raw_master["_internal"]["cancelledOccurrences"] == [second_start.strftime("%Y-%m-%dT%H:%M:%SZ")]

    attendee = cal.tenant.users[1].mail
    [copy] = cal.list(attendee)["value"]
    answered = cal.control_call("POST", attendee, "events", q(copy["id"]), "respond", body={"action": "accept"})
    assert answered.status_code == 204
    statuses = {a["emailAddress"]["address"]: a["status"]["response"] for a in cal.fetch(organizer.mail, master["id"])["attendees"]}
    assert statuses[attendee] == "accepted" and statuses[room.email] == "accepted"
