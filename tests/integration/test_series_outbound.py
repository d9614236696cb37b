"""Recurring platform bookings against Azurite and the Graph emulator: each occurrence its own
Outlook meeting at the right local time across DST, the background fill, the nightly job's
idempotence and catch-up, series edits and cancellation, and leavers."""
from __future__ import annotations

import json
import base64
import uuid
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import requests

from graph.timestamps import parse_graph_time
from sync.booking_model import CANCELLED, CONFIRMED, SYNCED
from sync.booking_settings import BookingSettings
from sync.users import SyncRequest
from sync.validation import Problem
from tests.support.booking_world import make_booking_world


@pytest.fixture
def world(graph_emulator, storage_connection_string, unique_name):
    made = make_booking_world(graph_emulator, storage_connection_string, unique_name,
                              settings=BookingSettings(horizon_days=160, max_occurrences=200))
    yield made
    made.worker.close()


def weekly(start: date, count: int | None = None) -> dict:
    span = {"type": "numbered", "numberOfOccurrences": count} if count else {"type": "noEnd"}
    day = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")[start.weekday()]
    return {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [day], "firstDayOfWeek": "monday"},
            "range": {**span, "startDate": start.isoformat()}}


def next_dst_change(zone: str, today: date) -> date:
    """The first day at least 15 days ahead whose noon has another UTC offset than the day
    before's: the series can start two weeks before it and still lie in the future."""
    tz = ZoneInfo(zone)
    day = today + timedelta(days=15)
    for _ in range(400):
        before = datetime.combine(day - timedelta(days=1), datetime.min.time().replace(hour=12), tz).utcoffset()
        if datetime.combine(day, datetime.min.time().replace(hour=12), tz).utcoffset() != before:
            return day
        day += timedelta(days=1)
    raise AssertionError(f"{zone} has no DST change within 400 days")


def open_booking_window(world, days: int) -> None:
    """Lets the room accept meetings as far ahead as the next DST change may lie."""
    for room in world.tenant.rooms:
        requests.patch(f"{world.tenant.base_url}/_control/tenants/{world.tenant.tenant_id}/rooms/{room.email}/settings",
                       json={"BookingWindowInDays": days}, verify=world.tenant.ca_path, timeout=30).raise_for_status()


def meetings_local(world, person: int, zone: str) -> list[datetime]:
    found = []
    for event in world.booker_events(person):
        start = parse_graph_time(event["start"]["dateTime"])
        found.append(start.astimezone(ZoneInfo(zone)).replace(tzinfo=None))
    return sorted(found)


@pytest.mark.parametrize("zone", ["Europe/Amsterdam", "America/New_York"])
def test_a_weekly_series_across_dst_keeps_its_local_time(world, zone):
    today = world.clock().date()
    change = next_dst_change(zone, today)
    first = change - timedelta(days=14)
    horizon = (change - today).days + 60
    world.filler.settings = world.service.settings = BookingSettings(horizon_days=horizon, max_occurrences=200)
    open_booking_window(world, horizon)
    view = world.service.create({**world.body(), "start": f"{first.isoformat()}T09:30:00", "end":
                                 f"{first.isoformat()}T10:30:00", "time_zone": zone, "recurrence": weekly(first, 5)})
    assert view["series"]["time_zone"] == zone and view["occurrence_start"] == view["start"]
    # the first occurrence is pushed at once, on its own message
    world.run_queue_once(hold=lambda m: "series_id" in m)
    assert len(world.booker_events()) == 1
    world.drain()

    local = meetings_local(world, 0, zone)
    assert [t.time().isoformat() for t in local] == ["09:30:00"] * 5
    assert [t.date() for t in local] == [first + timedelta(weeks=n) for n in range(5)]
    utc_hours = {parse_graph_time(e["start"]["dateTime"]).hour for e in world.booker_events()}
    assert len(utc_hours) == 2  # the UTC time moved with the clocks
    assert len([e for e in world.room_events() if not e.get("isCancelled")]) == 5
    occurrences = world.reservations.of_series(world.integration_id, world.assets[0].id, view["series"]["id"])
    assert len(occurrences) == 5 and {o.sync_status for o in occurrences} == {SYNCED}
    assert len({o.ical_uid for o in occurrences}) == 5  # each occurrence is its own meeting
    assert world.series.get(world.integration_id, view["series"]["id"]).status == "ended"


def test_the_nightly_job_twice_creates_nothing_twice_and_catches_up_a_missed_night(world):
    start = (world.clock() + timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
    world.filler.settings = world.service.settings = BookingSettings(horizon_days=21, max_occurrences=200)
    view = world.service.create({**world.body(start=start), "recurrence": weekly(start.date())})
    world.drain()
    series_id = view["series"]["id"]
    first_fill = len(world.booker_events())

    def due() -> int:  # weekly occurrences starting before the horizon, 21 days from our clock
        return sum(1 for n in range(20) if start + timedelta(weeks=n) < world.clock() + timedelta(days=21))

    assert first_fill == due() >= 3

    again = world.filler.nightly()
    again_too = world.filler.nightly()
    assert len(world.booker_events()) == first_fill
    assert again.created == again_too.created == 0

    world.clock.advance(days=15)  # nights were missed: two weeks and more to catch up
    caught_up = world.filler.nightly()
    world.drain()
    total = due()
    assert total >= first_fill + 2
    assert len(world.booker_events()) == total
    # one create batch; the rooms' answers were read by one answers message (one more batch) in drain()
    assert caught_up.created == caught_up.awaiting == total - first_fill and caught_up.batches == 1
    assert [h.detail["answered"] for h in world.handled if getattr(h, "decision", None) == "answers_read"][-1] \
        == total - first_fill
    occurrences = world.reservations.of_series(world.integration_id, world.assets[0].id, series_id)
    assert len(occurrences) == len({o.id for o in occurrences}) == total
    assert len({o.organizer_event_id for o in occurrences}) == total
    assert {o.sync_reason for o in occurrences} == {None}  # every room's answer was read
    series = world.series.get(world.integration_id, series_id)
    assert series.materialized_until >= world.clock() + timedelta(days=20)


def test_series_edits_and_cancellation_follow_every_future_occurrence(world):
    start = (world.clock() + timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
    view = world.service.create({**world.body(start=start), "recurrence": weekly(start.date(), 4)})
    world.drain()
    assert len(world.booker_events()) == 4

    later = datetime.fromisoformat(view["start"].replace("Z", "+00:00")) + timedelta(hours=2)
    changed = world.service.change(view["id"], {"start": later.isoformat(), "subject": "Standup (moved)"}, "series")
    assert changed["occurrences_changed"] == 4
    world.drain()
    zone = ZoneInfo(world.assets[0].time_zone)
    local_times = {parse_graph_time(e["start"]["dateTime"]).astimezone(zone).time() for e in world.booker_events()}
    assert local_times == {later.astimezone(zone).time()}
    assert {e["subject"] for e in world.booker_events()} == {"Standup (moved)"}

    # one occurrence alone, then the rest of the series
    occurrences = sorted(world.reservations.of_series(world.integration_id, world.assets[0].id, view["series"]["id"]),
                         key=lambda r: r.start)
    world.service.cancel(occurrences[1].id, "occurrence")
    world.drain()
    assert len(world.booker_events()) == 3
    cancelled = world.service.cancel(occurrences[0].id, "series")
    assert cancelled["occurrences_cancelled"] == 3
    world.drain()
    assert world.booker_events() == []
    assert world.series.get(world.integration_id, view["series"]["id"]).status == CANCELLED
    assert world.filler.fill_one(world.integration_id, view["series"]["id"]).materialized == 0
    assert len(world.reservations.of_series(world.integration_id, world.assets[0].id, view["series"]["id"])) == 4


def test_a_leavers_future_bookings_are_released_and_past_ones_kept(world):
    leaver = world.people[1]
    soon = (world.clock() + timedelta(hours=1)).replace(second=0, microsecond=0)
    past = world.service.create(world.body(start=soon, person=1))
    future = world.service.create(world.body(start=soon + timedelta(days=3), person=1))
    colleague = world.service.create(world.body(start=soon + timedelta(days=3), person=0, asset=world.assets[1]))
    series_start = soon + timedelta(days=1)
    series_day = series_start.astimezone(ZoneInfo(world.assets[1].time_zone)).date()  # the asset's day, not UTC's
    series = world.service.create({**world.body(start=series_start, person=1, asset=world.assets[1]),
                                   "recurrence": weekly(series_day)})
    # a meeting the leaver organised in Outlook on our room, mirrored as an Outlook reservation
    meeting_start = soon + timedelta(days=5)
    made = world.cal.control_call("POST", leaver.mail, "meetings", body={
        "subject": "Offsite", "start": meeting_start.isoformat(),
        "end": (meeting_start + timedelta(hours=1)).isoformat(), "rooms": [world.assets[0].mailbox]}).json()
    room_copy = next(c["event"] for c in made["copies"] if c["mailbox"].lower() == world.assets[0].mailbox)
    outlook = _outlook_reservation(world, leaver, room_copy, meeting_start)
    world.drain()
    world.clock.advance(hours=2)  # the first booking is now in the past

    requests.post(f"{world.tenant.base_url}/_control/tenants/{world.tenant.tenant_id}/users/{leaver.id}/disable",
                  verify=world.tenant.ca_path, timeout=30).raise_for_status()
    world.user_sync.run(SyncRequest(world.integration_id, str(uuid.uuid4()), "api"))
    (message,) = _leaver_messages(world)
    assert message == {"integration_id": world.integration_id, "user_id": leaver.id}
    report = world.releaser.release_leaver(message["integration_id"], message["user_id"])
    world.drain()

    assert (report.platform_cancelled, report.outlook_declined, report.series_closed, report.kept_past) == (1, 1, 1, 1)
    assert world.reservation(past["id"]).status == CONFIRMED
    assert world.reservation(future["id"]).status == CANCELLED
    assert world.reservation(colleague["id"]).status == CONFIRMED
    assert world.reservation(outlook.id).status == CANCELLED
    occurrences = world.reservations.of_series(world.integration_id, world.assets[1].id, series["series"]["id"])
    assert len(occurrences) > 3 and {o.status for o in occurrences} == {CANCELLED}
    assert world.series.get(world.integration_id, series["series"]["id"]).status == CANCELLED
    remaining = world.booker_events(1)
    assert sorted(e["id"] for e in remaining if not e.get("isCancelled")) == sorted(
        [world.reservation(past["id"]).organizer_event_id, made["event"]["id"]])
    assert all(e["id"] != room_copy["id"] for e in world.room_events() if not e.get("isCancelled"))
    # a second release changes nothing
    again = world.releaser.release_leaver(world.integration_id, leaver.id)
    assert (again.platform_cancelled, again.outlook_declined) == (0, 0)
    entries = world.synclog.read(world.integration_id, now=world.clock())
    assert sum(1 for e in entries if e.decision == "platform:released_leaver") == 2
    # each release is published on reservation-events, and nothing else is cancelled there
    released = {future["id"], outlook.id} | {o.id for o in occurrences if o.start > world.clock()}
    cancelled_events = [e for e in world.published() if e["type"] == "reservation.cancelled"]
    assert {e["reservation"]["id"] for e in cancelled_events} == released
    assert all(e["reservation"]["status"] == CANCELLED for e in cancelled_events)

    # back again: the person is active, but what was released stays released
    outlook_after_release = sorted(e["id"] for e in world.booker_events(1) if not e.get("isCancelled"))
    requests.post(f"{world.tenant.base_url}/_control/tenants/{world.tenant.tenant_id}/users/{leaver.id}/enable",
                  verify=world.tenant.ca_path, timeout=30).raise_for_status()
    world.user_sync.run(SyncRequest(world.integration_id, str(uuid.uuid4()), "api"))
    assert _leaver_messages(world) == []
    assert world.service.users.get(world.integration_id, leaver.id).active
    assert world.filler.fill_one(world.integration_id, series["series"]["id"]).materialized == 0
    world.drain()
    assert {world.reservation(r).status for r in released} == {CANCELLED}
    assert world.series.get(world.integration_id, series["series"]["id"]).status == CANCELLED
    assert sorted(e["id"] for e in world.booker_events(1) if not e.get("isCancelled")) == outlook_after_release
    assert world.published() == []


def _outlook_reservation(world, person, room_copy: dict, start: datetime):
    from sync.booking_model import FROM_OUTLOOK, Organizer, Reservation
    from sync.store.reservations_repo import reservation_id_for_event

    now = world.clock()
    asset = world.assets[0]
    reservation = Reservation(
        id=reservation_id_for_event(asset.id, room_copy["id"]), integration_id=world.integration_id,
        asset_id=asset.id, start=start, end=start + timedelta(hours=1), time_zone=asset.time_zone, subject="Offsite",
        organizer=Organizer(email=person.mail.lower(), user_id=person.id, name=person.display_name),
        origin=FROM_OUTLOOK, status=CONFIRMED, sync_status=SYNCED, sync_reason=None, series_id=None,
        occurrence_start=None, private=False, created_at=now, updated_at=now, ical_uid=room_copy["iCalUId"],
        room_event_id=room_copy["id"])
    lock, version = world.reservations.lock(world.integration_id, asset.id)
    world.reservations.commit(world.integration_id, asset.id, lock, version, [reservation])
    return reservation


def _leaver_messages(world) -> list[dict]:
    client = world.queues.get_queue_client(world.user_sync.leavers_queue)
    found = []
    for message in client.receive_messages(messages_per_page=32, visibility_timeout=60):
        found.append(json.loads(base64.b64decode(message.content, validate=True)))
        client.delete_message(message)
    return found


def test_a_series_move_refused_on_a_later_occurrence_changes_nothing(world):
    """More occurrences than one transaction holds, the clash on one of the last: the 409 names
    the other booking and the series row, each occurrence, Outlook and the nightly job's next
    occurrences all stay at the old time."""
    start = (world.clock() + timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
    view = world.service.create({**world.body(start=start), "recurrence": weekly(start.date())})
    world.drain()
    series_id, asset = view["series"]["id"], world.assets[0]
    occurrences = sorted(world.reservations.of_series(world.integration_id, asset.id, series_id), key=lambda r: r.start)
    assert len(occurrences) > 16  # more than one chunk of writes
    blocker = world.service.create(world.body(start=occurrences[-2].start + timedelta(hours=2), person=2))
    world.drain()
    series_before = world.series.get(world.integration_id, series_id)
    rows_before = {r.id: (r.start, r.end, r.subject, r.status) for r in occurrences}
    outlook_before = sorted((e["id"], e["start"]["dateTime"], e["subject"]) for e in world.booker_events())

    later = datetime.fromisoformat(view["start"].replace("Z", "+00:00")) + timedelta(hours=2)
    with pytest.raises(Problem) as refused:
        world.service.change(view["id"], {"start": later.isoformat(), "subject": "Moved"}, "series")
    assert refused.value.status == 409 and refused.value.details == {"reservation_id": blocker["id"]}
    world.drain()

    assert world.series.get(world.integration_id, series_id) == series_before
    after = world.reservations.of_series(world.integration_id, asset.id, series_id)
    assert {r.id: (r.start, r.end, r.subject, r.status) for r in after} == rows_before
    assert sorted((e["id"], e["start"]["dateTime"], e["subject"]) for e in world.booker_events()) == outlook_before
    assert world.filler.fill_one(world.integration_id, series_id).materialized == 0
    world.clock.advance(days=14)  # two more weeks come into the horizon, made from the unchanged template
    world.filler.fill_one(world.integration_id, series_id)
    world.drain()
    grown = world.reservations.of_series(world.integration_id, asset.id, series_id)
    assert len(grown) == len(rows_before) + 2
    zone = ZoneInfo(asset.time_zone)
    assert {r.start.astimezone(zone).time() for r in grown} == {start.astimezone(zone).time()}
    assert {r.subject for r in grown} == {"Planning"}
