"""Graph calls per inbound change: a meeting made in Outlook on a room whose asset still has a
platform change to do needs the organizer's copy twice (is it our own meeting, not linked yet?
what is its real subject?); one read serves both."""
from __future__ import annotations

from datetime import timedelta

import pytest

from sync.booking_model import FROM_OUTLOOK
from tests.support.sync_model_world import sync_world


@pytest.fixture
def world(graph_emulator, storage_connection_string):
    with sync_world(graph_emulator, storage_connection_string, users=2, rooms=1) as made:
        yield made


def test_an_outlook_meeting_beside_a_pending_platform_change_reads_the_organizers_copy_once(world):
    b = world.booking
    start = (b.clock() + timedelta(days=3)).replace(hour=9, minute=0, second=0, microsecond=0)
    b.service.create(b.body(start=start))  # its intent stays: the queue is not run
    assert b.open_intents()
    meeting_start = start + timedelta(hours=3)
    made = world.meeting_call("POST", b.people[1].mail, body={
        "subject": "Roadmap", "start": meeting_start.isoformat(),
        "end": (meeting_start + timedelta(hours=1)).isoformat(), "rooms": [b.assets[0].mailbox]})
    assert made.status_code == 201, made.text
    copy = next(c["event"] for c in made.json()["copies"] if c["mailbox"].lower() == b.assets[0].mailbox)

    world.inbound.handle_change(world.iid, b.assets[0].id, copy["id"])

    (created,) = [r for r in world.reservations() if r.origin == FROM_OUTLOOK]
    assert created.subject == "Roadmap"  # recovered from the organizer's copy
    (entry,) = [e for e in b.synclog.read(world.iid, now=b.clock()) if e.decision == "create"]
    assert entry.graph_calls == 2  # the room's item, and the organizer's copy once
