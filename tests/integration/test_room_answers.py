"""The room's answer, read again later: Exchange's booking assistant answers a moment after the
organizer's create (GRAPH.md §4.7), so a read right after it may still say "none". The emulator's
answer_delay_seconds holds the answer back; the worker then leaves the reservation synced and
"waiting for the room's answer" and reads it again from an `answers` message."""
from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from sync.booking_model import CONFIRMED, DECLINED, SYNCED
from sync.booking_queue import BookingChange
from sync.outbound import WAITING_FOR_ROOM
from tests.support.booking_world import ANSWER_CHECKS, make_booking_world

DELAY = 120  # seconds the room takes to answer, on the emulator's clock


@pytest.fixture
def world(graph_emulator, storage_connection_string, unique_name):
    made = make_booking_world(graph_emulator, storage_connection_string, unique_name)
    made.cal.room_settings(made.assets[0].mailbox, answer_delay_seconds=DELAY)
    yield made
    made.worker.close()


def _let_the_room_answer(world) -> None:
    moved = requests.post(f"{world.tenant.base_url}/_control/clock", json={"advance_seconds": DELAY + 1},
                          verify=world.tenant.ca_path, timeout=30)
    assert moved.status_code == 200, moved.text


def _second_look(world, *reservation_ids: str):
    """The message the first look left on the queue, hidden until the next look is due."""
    return world.worker.handle(BookingChange(world.integration_id, answer_ids=reservation_ids, attempt=1))


def _slot(world, days: int = 2):
    return (world.clock() + timedelta(days=days)).replace(minute=0, second=0, microsecond=0)


def _events_of(world, reservation_id: str) -> list[dict]:
    return [e for e in world.published() if e["reservation"]["id"] == reservation_id]


def test_a_late_decline_turns_the_reservation_declined_once(world):
    start = _slot(world)
    made = world.cal.control_call("POST", world.people[1].mail, "meetings", body={
        "subject": "Booked in Outlook first", "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(), "rooms": [world.assets[0].mailbox]})
    assert made.status_code == 201, made.text
    view = world.service.create(world.body(start=start + timedelta(minutes=30)))
    world.drain()  # the create and the first look (at once): the room has not answered

    waiting = world.reservation(view["id"])
    assert (waiting.status, waiting.sync_status, waiting.sync_reason) == (CONFIRMED, SYNCED, WAITING_FOR_ROOM)
    assert world.handled[-1].decision == "answers_read" and world.handled[-1].detail == {"answered": 0, "waiting": 1}

    _let_the_room_answer(world)
    outcome = _second_look(world, view["id"])
    assert outcome.detail == {"answered": 1, "waiting": 0} and outcome.graph_calls == 1
    declined = world.reservation(view["id"])
    assert declined.status == DECLINED and "already booked" in declined.sync_reason
    assert [e["reservation"]["status"] for e in _events_of(world, view["id"])][-1] == DECLINED
    published = len(_events_of(world, view["id"]))

    again = _second_look(world, view["id"])  # the message delivered twice
    assert again.decision == "nothing_to_do" and len(_events_of(world, view["id"])) == published


def test_a_late_acceptance_clears_the_waiting_reason(world):
    view = world.service.create(world.body(start=_slot(world, 3)))
    world.drain()
    assert world.reservation(view["id"]).sync_reason == WAITING_FOR_ROOM

    _let_the_room_answer(world)
    assert _second_look(world, view["id"]).detail == {"answered": 1, "waiting": 0}
    accepted = world.reservation(view["id"])
    assert (accepted.status, accepted.sync_status, accepted.sync_reason) == (CONFIRMED, SYNCED, None)


def test_a_room_that_never_answers_is_said_so_after_the_last_look(world):
    world.cal.room_settings(world.assets[0].mailbox, AutomateProcessing="None")
    view = world.service.create(world.body(start=_slot(world, 4)))
    world.drain()
    _let_the_room_answer(world)

    outcome = _second_look(world, view["id"])  # the last of the world's looks
    assert outcome.detail == {"answered": 1, "waiting": 0} and len(ANSWER_CHECKS) == 2
    stored = world.reservation(view["id"])
    assert stored.status == CONFIRMED and stored.sync_reason.startswith("the room did not answer within")


def test_a_look_never_overwrites_a_newer_change(world):
    view = world.service.create(world.body(start=_slot(world, 5)))
    world.drain()
    moved = world.service.change(view["id"], {"subject": "Moved on"}, None)
    assert moved["sync_status"] == "pending"

    assert _second_look(world, view["id"]).decision == "nothing_to_do"  # the pending change reads its own answer
    stored = world.reservation(view["id"])
    assert stored.sync_status == "pending" and stored.subject == "Moved on"


def test_an_answers_message_naming_another_integration_reads_and_writes_nothing(world):
    """Reservations are looked up in the partition of the integration the message names."""
    view = world.service.create(world.body(start=_slot(world, 6)))
    world.drain()
    _let_the_room_answer(world)

    stranger = BookingChange("00000000-0000-4000-8000-000000000000", answer_ids=(view["id"],), attempt=1)
    assert world.worker.handle(stranger).decision == "nothing_to_do"
    assert world.reservation(view["id"]).sync_reason == WAITING_FOR_ROOM
    assert _second_look(world, view["id"]).detail == {"answered": 1, "waiting": 0}  # its own integration's look
