"""A room calendar's delta link that Graph refuses (410 syncStateNotFound) starts a fresh round:
what changed while notifications were lost is caught up, and nothing is booked twice
(RELIABILITY.md catalogue item 6, for room calendars; sync/resync.py)."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta
from urllib.parse import quote

import pytest

from sync.booking_model import CONFIRMED
from tests.support.sync_model_world import sync_world


@pytest.fixture
def world(graph_emulator, storage_connection_string):
    with sync_world(graph_emulator, storage_connection_string, users=2, rooms=1) as made:
        yield made


def _meeting(world, person: str, room: str, start, subject: str) -> str:
    body = {"subject": subject, "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat(),
            "rooms": [room]}
    answer = world.meeting_call("POST", person, body=body)
    assert answer.status_code == 201, answer.text
    return answer.json()["event"]["id"]


def _confirmed(world) -> list:
    return sorted((r for r in world.reservations() if r.status == CONFIRMED), key=lambda r: r.start)


def test_an_expired_room_delta_link_starts_a_fresh_round_that_catches_up_without_duplicates(world):
    asset = world.booking.assets[0]
    room, person = asset.mailbox, world.tenant.users[0].mail
    base = (world.booking.clock() + timedelta(days=3)).replace(hour=9, minute=0, second=0, microsecond=0)
    link_before, _ = world.resync.state.get(world.iid, asset.id)
    assert link_before, "subscribing ran a first round and kept its link"

    first = _meeting(world, person, room, base, "Kept through the gap")
    report = world.resync.run(world.iid, asset.id, "test")
    assert report.kind == "delta" and [r.subject for r in _confirmed(world)] == ["Kept through the gap"]

    # While notifications are lost: one meeting moves, another is made, and Graph forgets the link.
    moved = base + timedelta(hours=3)
    answer = world.meeting_call("PATCH", person, quote(first, safe=""), body={"start": moved.isoformat(),
                                                               "end": (moved + timedelta(hours=1)).isoformat()})
    assert answer.status_code == 200, answer.text
    _meeting(world, person, room, base + timedelta(days=1), "Made during the gap")
    expired = world.http.post(world.booking.cal.mailbox_control(room, "calendar", "delta-tokens", "expire"))
    assert expired.status_code == 200 and expired.json()["expired"] >= 1, expired.text

    report = world.resync.run(world.iid, asset.id, "test")

    assert report.kind == "fresh"
    kept = _confirmed(world)
    assert [(r.subject, r.start) for r in kept] == [("Kept through the gap", moved),
                                                    ("Made during the gap", base + timedelta(days=1))]
    assert len({r.room_event_id for r in kept}) == 2
    link_after, _ = world.resync.state.get(world.iid, asset.id)
    assert link_after and link_after != link_before

    # The fresh round's link serves the next round, which finds nothing new to book.
    again = world.resync.run(world.iid, asset.id, "test")
    assert again.kind == "delta"
    assert [(r.id, r.start) for r in _confirmed(world)] == [(r.id, r.start) for r in kept]

    # One created per meeting, one update for the move: the fresh round re-applied nothing.
    world.flush_outboxes()
    published = Counter((e["reservation"]["id"], e["type"]) for e in world.read_events().values())
    assert published == Counter({(kept[0].id, "reservation.created"): 1, (kept[0].id, "reservation.updated"): 1,
                                 (kept[1].id, "reservation.created"): 1})
