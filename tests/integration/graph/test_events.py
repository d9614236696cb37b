"""Event calls against the emulator's calendars: create with transactionId and an extended
property, read back, find, update, decline, delete, calendarView paging and delta, and the
per-mailbox concurrency limit."""
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from graph import events
from graph.concurrency import MailboxLimiter
from graph.errors import DeltaExpired, NotFound
from tests.integration.graph.support import graph_env  # noqa: F401  (module fixture)

TAG = events.ExtendedProperty("8eccc264-6880-4ebe-992f-8888d2eeaa1d", "RoomsyncReservation")
DAY = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=3)


@pytest.fixture
def tenant(graph_env):
    graph_env.control.clear_faults()
    return graph_env.tenant(users=2, rooms=1)


def _meeting(room, subject, start_hour, hours=1):
    start, end = DAY + timedelta(hours=start_hour), DAY + timedelta(hours=start_hour + hours)
    return {
        "subject": subject,
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "location": {"displayName": room.display_name, "locationEmailAddress": room.email},
        "attendees": [{"type": "resource", "emailAddress": {"address": room.email, "name": room.display_name}}],
    }


def test_create_read_find_update_delete(graph_env, tenant):
    client = graph_env.client(tenant)
    organizer, room = tenant.users[0].mail, tenant.rooms[0]
    transaction = str(uuid.uuid4())
    created = events.create_event(client, organizer, _meeting(room, "Planning", 9), transaction_id=transaction,
                                  tag=TAG, tag_value="reservation-1")
    again = events.create_event(client, organizer, _meeting(room, "Planning", 9), transaction_id=transaction,
                                tag=TAG, tag_value="reservation-1")
    assert again["id"] == created["id"]  # transactionId made the retry idempotent

    read = events.get_event(client, organizer, created["id"], tag=TAG)
    assert TAG.value_of(read) == "reservation-1"
    assert read["start"]["timeZone"] == "UTC"

    found = events.find_by_extended_property(client, organizer, TAG, "reservation-1")
    assert [e["id"] for e in found] == [created["id"]]
    assert events.find_by_extended_property(client, organizer, TAG, "reservation-2") == []

    copies = events.find_by_ical_uid(client, room.email, created["iCalUId"])
    assert len(copies) == 1 and copies[0]["id"] != created["id"]

    updated = events.update_event(client, organizer, created["id"], {"subject": "Planning (moved)"})
    assert updated["subject"] == "Planning (moved)"

    assert events.delete_event(client, organizer, created["id"]) is True
    assert events.delete_event(client, organizer, created["id"]) is False
    with pytest.raises(NotFound):
        events.get_event(client, organizer, created["id"])


def test_ids_with_slashes_plus_and_equals_survive_the_path(graph_env, tenant):
    client = graph_env.client(tenant)
    organizer, room = tenant.users[0].mail, tenant.rooms[0]
    made = [events.create_event(client, organizer, _meeting(room, f"m{n}", 8 + n), transaction_id=str(uuid.uuid4()))
            for n in range(6)]
    assert any(set(e["id"]) & set("/+=") for e in made)
    for event in made:
        assert events.get_event(client, organizer, event["id"])["id"] == event["id"]


def test_the_room_declines_a_booking(graph_env, tenant):
    client = graph_env.client(tenant)
    organizer, room = tenant.users[0].mail, tenant.rooms[0]
    created = events.create_event(client, organizer, _meeting(room, "Review", 14), transaction_id=str(uuid.uuid4()))
    room_copy = events.find_by_ical_uid(client, room.email, created["iCalUId"])[0]
    assert events.decline_event(client, room.email, room_copy["id"], comment="Room is closed") is None
    attendees = events.get_event(client, organizer, created["id"])["attendees"]
    assert [a["status"]["response"] for a in attendees if a["type"] == "resource"] == ["declined"]


def test_calendar_view_pages_and_instances(graph_env, tenant):
    client = graph_env.client(tenant)
    organizer, room = tenant.users[1].mail, tenant.rooms[0]
    for n in range(5):
        events.create_event(client, organizer, _meeting(room, f"slot {n}", 8 + n), transaction_id=str(uuid.uuid4()))
    counts = graph_env.server.world.request_counts
    before = counts["calendarView.list"]
    seen = list(events.calendar_view(client, room.email, DAY, DAY + timedelta(days=1), page_size=2))
    assert len(seen) >= 5 and counts["calendarView.list"] - before >= 3

    series = _meeting(room, "Daily", 18)
    series["recurrence"] = {"pattern": {"type": "daily", "interval": 1},
                            "range": {"type": "numbered", "startDate": DAY.strftime("%Y-%m-%d"),
                                      "numberOfOccurrences": 3}}
    master = events.create_event(client, organizer, series, transaction_id=str(uuid.uuid4()))
    occurrences = list(events.instances(client, organizer, master["id"], DAY, DAY + timedelta(days=7)))
    assert len(occurrences) == 3 and {o["seriesMasterId"] for o in occurrences} == {master["id"]}


def test_calendar_view_delta_rounds(graph_env, tenant):
    client = graph_env.client(tenant)
    organizer, room = tenant.users[0].mail, tenant.rooms[0]
    window = dict(start=DAY, end=DAY + timedelta(days=1))
    first = events.calendar_view_delta_round(client, room.email, page_size=2, **window)
    before = {e["id"] for e in first.changes}
    created = events.create_event(client, organizer, _meeting(room, "Delta", 20), transaction_id=str(uuid.uuid4()))
    second = events.calendar_view_delta_round(client, room.email, delta_link=first.delta_link)
    added = [e for e in second.changes if e["id"] not in before and "@removed" not in e]
    assert [e["iCalUId"] for e in added] == [created["iCalUId"]]

    graph_env.control.call("POST", f"/_control/tenants/{tenant.tenant_id}/mailboxes/{room.email}"
                           "/calendar/delta-tokens/expire")
    with pytest.raises(DeltaExpired):
        events.calendar_view_delta_round(client, room.email, delta_link=second.delta_link)


def test_never_more_than_four_requests_in_flight_per_mailbox(graph_env, tenant):
    client = graph_env.client(tenant, limiter=MailboxLimiter(limit=4))
    organizer, room = tenant.users[0].mail, tenant.rooms[0]
    created = events.create_event(client, organizer, _meeting(room, "Busy", 7), transaction_id=str(uuid.uuid4()))
    room_copy = events.find_by_ical_uid(client, room.email, created["iCalUId"])[0]
    graph_env.control.call("DELETE", "/_control/throttling/stats", tenant=tenant.tenant_id)
    graph_env.control.add_fault(method="GET", path="/events/", tenant=tenant.tenant_id, delay_ms=300)
    errors: list[BaseException] = []
    start = threading.Barrier(12)

    def read():
        try:
            start.wait()
            events.get_event(client, room.email, room_copy["id"])
        except BaseException as error:  # noqa: BLE001 - collected for the assertion below
            errors.append(error)

    threads = [threading.Thread(target=read) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    stats = graph_env.control.call("GET", "/_control/throttling/stats", tenant=tenant.tenant_id,
                                   mailbox=room.email)["mailboxes"]
    assert len(stats) == 1
    assert stats[0]["requests"] == 12
    assert stats[0]["max_concurrency"] == 4  # the limit was used, never exceeded
    assert stats[0]["throttled_concurrency"] == 0
