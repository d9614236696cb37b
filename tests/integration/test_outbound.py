"""Platform -> Outlook against Azurite and the Graph emulator: booking, moving, cancelling,
declines, crashes at every step, injected faults, and leavers."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
import requests

from sync.booking_model import CANCELLED, CONFIRMED, DECLINED, PENDING, SYNCED
from sync.booking_queue import BookingChange
from sync.booking_sweeper import sweep
from sync.outbound import RESERVATION_TAG, transaction_id
from sync.validation import Problem
from tests.support.booking_world import make_booking_world


@pytest.fixture
def world(graph_emulator, storage_connection_string, unique_name):
    made = make_booking_world(graph_emulator, storage_connection_string, unique_name)
    yield made
    made.worker.close()


def live(events: list[dict]) -> list[dict]:
    return [e for e in events if not e.get("isCancelled")]


def tag_of(event: dict) -> str | None:
    props = (event.get("_internal") or {}).get("extendedProperties") or {}
    for key, value in props.items():
        if key.lower() == RESERVATION_TAG.id.lower():
            return value
    return None


def test_a_booking_appears_in_the_bookers_and_the_rooms_calendar(world):
    view = world.service.create(world.body(subject="Quarterly planning"))
    assert view["sync_status"] == PENDING and view["status"] == CONFIRMED and view["origin"] == "platform"

    world.drain()

    stored = world.reservation(view["id"])
    assert stored.sync_status == SYNCED and stored.sync_reason is None
    (meeting,) = world.booker_events()
    assert meeting["id"] == stored.organizer_event_id and meeting["iCalUId"] == stored.ical_uid
    assert meeting["subject"] == "Quarterly planning" and tag_of(meeting) == view["id"]
    assert meeting["transactionId"] == transaction_id(view["id"], 1)  # the first write of the asset
    assert meeting["start"]["dateTime"].startswith(view["start"][:19])
    (copy,) = live(world.room_events())
    assert copy["iCalUId"] == stored.ical_uid and copy["responseStatus"]["response"] == "accepted"
    # the room copy's notification finds this reservation through the index rows
    assert world.reservations.find(world.integration_id, world.assets[0].id, ical_uid=copy["iCalUId"]).id == view["id"]
    assert world.reservations.find(world.integration_id, world.assets[0].id,
                                   organizer_event_id=meeting["id"]).id == view["id"]
    kinds = [e["type"] for e in world.published()]
    assert kinds[0] == "reservation.created" and "reservation.updated" in kinds


def test_moving_and_cancelling_follow_both_calendars(world):
    view = world.service.create(world.body())
    world.drain()
    later = datetime.fromisoformat(view["start"].replace("Z", "+00:00")) + timedelta(hours=3)
    moved = world.service.change(view["id"], {"start": later.isoformat(), "subject": "Moved"}, None)
    assert moved["sync_status"] == PENDING and moved["end"] == (later + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    world.drain()
    (meeting,) = world.booker_events()
    (copy,) = live(world.room_events())
    for event in (meeting, copy):
        assert event["start"]["dateTime"].startswith(later.strftime("%Y-%m-%dT%H:%M"))
    assert meeting["subject"] == "Moved"
    assert world.reservation(view["id"]).sync_status == SYNCED

    world.service.cancel(view["id"], None)
    world.drain()
    assert world.booker_events() == []
    assert live(world.room_events()) == []
    stored = world.reservation(view["id"])
    assert stored.status == CANCELLED and stored.sync_status == SYNCED


@pytest.mark.parametrize("change, field, status", [
    ({"start": "tomorrow"}, "start", 422),
    ({"start": 5}, "start", 400),
    ({"minutes": -30}, "end", 422),
    ({"minutes": 300}, "end", 422),          # the asset allows 240 minutes
    ({"booker": "nobody@example.com"}, "booker", 422),
    ({"asset_id": "0" * 32}, "asset_id", 422),
    ({"integration_id": "another"}, "asset_id", 422),
    ({"subject": "  "}, "subject", 422),
    ({"colour": "red"}, "colour", 400),
    ({"time_zone": "Mars/Base"}, "time_zone", 422),
    ({"recurrence": {"pattern": {"type": "weekly", "interval": 1}, "range": {"type": "noEnd"}}},
     "recurrence.pattern.daysOfWeek", 422),
])
def test_bad_requests_name_the_field(world, change, field, status):
    minutes = change.pop("minutes", 60)
    body = world.body(minutes=minutes)
    body.update(change)
    with pytest.raises(Problem) as refused:
        world.service.create(body)
    assert (refused.value.status, refused.value.field) == (status, field)
    assert world.open_intents() == []


def test_an_inactive_booker_and_the_past_are_refused(world):
    requests.post(f"{world.tenant.base_url}/_control/tenants/{world.tenant.tenant_id}/users/"
                  f"{world.people[2].id}/disable", verify=world.tenant.ca_path, timeout=30).raise_for_status()
    world.user_sync.run(__import__("sync.users", fromlist=["SyncRequest"]).SyncRequest(
        world.integration_id, "run-2", "api"))
    with pytest.raises(Problem) as refused:
        world.service.create(world.body(person=2))
    assert refused.value.field == "booker" and "active" in refused.value.message
    with pytest.raises(Problem) as refused:
        world.service.create(world.body(start=world.clock() - timedelta(hours=2)))
    assert refused.value.field == "start"


def test_an_overlap_is_409_naming_the_booking(world):
    first = world.service.create(world.body())
    start = datetime.fromisoformat(first["start"].replace("Z", "+00:00")) + timedelta(minutes=30)
    with pytest.raises(Problem) as refused:
        world.service.create(world.body(start=start, person=1))
    assert refused.value.status == 409 and refused.value.details["reservation_id"] == first["id"]
    assert first["id"] in refused.value.message
    # another room at the same time, and the same room right after, are fine
    world.service.create(world.body(asset=world.assets[1], start=start))
    world.service.create(world.body(start=start + timedelta(minutes=30)))


def test_fifty_concurrent_overlapping_requests_book_once(world):
    start = (world.clock() + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    outcomes, barrier = [], threading.Barrier(50)

    def attempt(n: int) -> None:
        barrier.wait()
        try:
            view = world.service.create(world.body(start=start + timedelta(minutes=n % 30), person=n % 3))
            outcomes.append(("created", view["id"]))
        except Problem as problem:
            outcomes.append((problem.status, problem.details.get("reservation_id")))

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    created = [o for o in outcomes if o[0] == "created"]
    assert len(created) == 1, outcomes
    assert sorted({o[0] for o in outcomes if o[0] != "created"}) == [409]
    assert {o[1] for o in outcomes if o[0] == 409} == {created[0][1]}
    world.drain()
    assert len(world.booker_events(0) + world.booker_events(1) + world.booker_events(2)) == 1


def test_a_crash_between_commit_and_queue_is_repaired_by_the_sweeper(world, monkeypatch):
    def crash(*args, **kwargs):
        raise ConnectionError("the process died before queueing")

    monkeypatch.setattr(world.booking_queue, "send", crash)
    view = world.service.create(world.body())
    monkeypatch.undo()
    assert world.messages() == [] and len(world.open_intents()) == 1

    report = sweep(world.reservations, world.booking_queue, world.events, now=world.clock(),
                   older_than=timedelta(seconds=0))
    assert report.requeued >= 1
    world.drain()
    assert [e["id"] for e in world.booker_events()] == [world.reservation(view["id"]).organizer_event_id]
    assert len(live(world.room_events())) == 1


def test_a_crash_between_graphs_create_and_storing_the_id_ends_with_one_event(world, monkeypatch):
    view = world.service.create(world.body())
    real_finish = world.worker._finish

    def crash(*args, **kwargs):
        raise SystemError("the process died after Graph created the event")

    monkeypatch.setattr(world.worker, "_finish", crash)
    with pytest.raises(SystemError):
        world.run_queue_once()
    monkeypatch.setattr(world.worker, "_finish", real_finish)
    assert len(world.booker_events()) == 1 and world.reservation(view["id"]).organizer_event_id is None

    # the reservation changes before anyone notices; the lease runs out; the sweeper re-queues
    moved = datetime.fromisoformat(view["start"].replace("Z", "+00:00")) + timedelta(hours=1)
    world.service.change(view["id"], {"start": moved.isoformat()}, None)
    world.run_queue_once()  # the change's message meets the dead worker's lease and waits
    world.clock.advance(seconds=90)
    sweep(world.reservations, world.booking_queue, world.events, now=world.clock(), older_than=timedelta(seconds=0))
    world.drain()

    (meeting,) = world.booker_events()
    stored = world.reservation(view["id"])
    assert meeting["id"] == stored.organizer_event_id and stored.sync_status == SYNCED
    assert meeting["start"]["dateTime"].startswith(moved.strftime("%Y-%m-%dT%H:%M"))
    assert len(live(world.room_events())) == 1
    decisions = [entry.decision for entry in world.synclog.read(world.integration_id, now=world.clock(),
                                                                 reservation_id=view["id"])]
    assert "outbound:found_by_tag+updated" in decisions


def test_twenty_percent_429_and_503_end_with_everything_synced_once(world):
    faults = f"{world.tenant.base_url}/_control/faults"
    rules = [requests.post(faults, json={"path": r"/users/[^/]+/events", "status": status, "probability": 0.1,
                                         "seed": seed, "retry_after": 0.05, "tenant": world.tenant.tenant_id},
                           verify=world.tenant.ca_path, timeout=30).json()
             for status, seed in ((429, 7), (503, 11))]
    try:
        start = (world.clock() + timedelta(days=4)).replace(minute=0, second=0, microsecond=0)
        views = [world.service.create(world.body(start=start + timedelta(hours=n), person=n % 3)) for n in range(12)]
        world.drain(timeout=120)
    finally:
        hits = [requests.get(f"{faults}/{rule['id']}", verify=world.tenant.ca_path, timeout=30).json()["hits"]
                for rule in rules]
        for rule in rules:
            requests.delete(f"{faults}/{rule['id']}", verify=world.tenant.ca_path, timeout=30)
    assert sum(hits) > 0
    stored = [world.reservation(v["id"]) for v in views]
    assert {r.sync_status for r in stored} == {SYNCED}
    meetings = world.booker_events(0) + world.booker_events(1) + world.booker_events(2)
    assert sorted(m["id"] for m in meetings) == sorted(r.organizer_event_id for r in stored)
    assert len(live(world.room_events())) == 12


def test_a_room_that_declines_turns_the_reservation_declined(world):
    start = (world.clock() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    response = world.cal.control_call("POST", world.people[1].mail, "meetings", body={
        "subject": "Booked in Outlook first", "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat(),
        "rooms": [world.assets[0].mailbox]})
    assert response.status_code == 201, response.text

    view = world.service.create(world.body(start=start + timedelta(minutes=30)))
    world.drain()

    stored = world.reservation(view["id"])
    assert stored.status == DECLINED and stored.sync_status == SYNCED
    assert "already booked" in stored.sync_reason
    (copy,) = live(world.room_events())
    assert copy["iCalUId"] != stored.ical_uid
    assert any(e["type"] == "reservation.updated" and e["reservation"]["status"] == DECLINED
               for e in world.published())
