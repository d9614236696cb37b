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
