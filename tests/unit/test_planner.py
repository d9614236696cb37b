"""The inbound planner, pure: its rules one by one, and (Hypothesis) that any sequence of reads
of one Outlook item, delivered in any order and any number of times, converges on the
reservation of the item's latest version."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from sync.booking_model import (
    CANCELLED, CONFIRMED, FROM_PLATFORM, PENDING, PRIVATE_SUBJECT, Asset, Organizer, Subscription,
)
from sync.planner import (
    CANCEL, CREATE, DECLINE, DECLINE_UNKNOWN, DEFER, IGNORE, UPDATE, Context, Policy, plan,
)
from sync.room_events import RoomEvent

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)
SUBSCRIBED = T0 - timedelta(days=10)
ASSET = Asset(id="a" * 32, integration_id="00000000-0000-4000-8000-000000000001", name="Room 1", category="room",
              mailbox="room-1@contoso.example", time_zone="Europe/Amsterdam", capacity=6, max_duration_minutes=None,
              subscription=Subscription(state="subscribed", id="s", subscribed_at=SUBSCRIBED),
              created_at=SUBSCRIBED, updated_at=SUBSCRIBED)


def event(version: int = 1, *, start: datetime = T0, minutes: int = 60, cancelled: bool = False,
          created: datetime | None = None, event_id: str = "AAMkRoomCopy=", private: bool = False,
          subject: str = "Planning", response: str | None = "accepted") -> RoomEvent:
    return RoomEvent(id=event_id, ical_uid="uid-1", change_key=f"ck{version}", type="singleInstance",
                     series_master_id=None, start=start, end=start + timedelta(minutes=minutes), original_start=None,
                     subject=subject, organizer_email="ada@contoso.example", organizer_name="Ada Lovelace",
                     is_cancelled=cancelled, private=private, created_at=created or SUBSCRIBED + timedelta(days=1),
                     modified_at=SUBSCRIBED + timedelta(days=1, minutes=version), room_response=response,
                     show_as="busy")


def ctx(**changes) -> Context:
    base = Context(asset=ASSET, now=T0, organizer=Organizer("ada@contoso.example", "u-1", "Ada Lovelace"),
                   organizer_active=True)
    return replace(base, **changes)


def created(item: RoomEvent, **context):
    decision = plan(item, None, [], ctx(**context))
    assert decision.kind == CREATE, decision
    return decision.after


def test_a_new_meeting_becomes_a_confirmed_reservation_of_the_asset():
    reservation = created(event())
    assert (reservation.asset_id, reservation.start, reservation.end) == (ASSET.id, T0, T0 + timedelta(hours=1))
    assert reservation.status == CONFIRMED and reservation.origin == "outlook"
    assert reservation.organizer.user_id == "u-1" and reservation.time_zone == "Europe/Amsterdam"


def test_the_reservation_id_is_derived_from_the_room_item_so_two_creations_collide():
    assert created(event()).id == created(event()).id
    assert created(event()).id != created(event(event_id="AAMkOther=")).id


def test_a_meeting_created_before_the_subscription_is_ignored_unless_imported():
    early = event(created=SUBSCRIBED - timedelta(hours=1))
    assert plan(early, None, [], ctx()).kind == IGNORE
    assert plan(early, None, [], ctx(importing=True)).kind == CREATE


def test_an_overlap_with_a_confirmed_reservation_declines_the_room_copy():
    existing = created(event(event_id="AAMkFirst="))
    decision = plan(event(start=T0 + timedelta(minutes=30)), None, [existing], ctx())
    assert decision.kind == DECLINE and existing.id in decision.reason and decision.comment
    assert decision.after is None


def test_a_move_onto_another_booking_declines_and_releases_the_moved_reservation():
    other = created(event(event_id="AAMkOther=", start=T0 + timedelta(hours=3)))
    mine = created(event())
    decision = plan(event(2, start=T0 + timedelta(hours=3)), mine, [other], ctx())
    assert decision.kind == DECLINE and decision.after.status == CANCELLED


def test_unknown_organizers_follow_the_integration_policy():
    stranger = ctx(organizer=None, organizer_active=False)
    assert plan(event(), None, [], stranger).kind == CREATE
    refused = plan(event(), None, [], replace(stranger, policy=Policy(unknown_organizer=DECLINE_UNKNOWN)))
    assert refused.kind == DECLINE


def test_private_meetings_show_private_and_recovered_subjects_win():
    assert created(event(private=True)).subject == PRIVATE_SUBJECT
    assert created(event(subject="Ada Lovelace"), subject="Board meeting").subject == "Board meeting"


def test_a_pending_platform_booking_at_the_same_time_defers_instead_of_declining():
    platform = replace(created(event(event_id="AAMkOwn=")), origin=FROM_PLATFORM, sync_status=PENDING,
                       ical_uid=None, room_event_id=None, id="b" * 64)
    assert plan(event(), None, [platform], ctx()).kind == DEFER


def test_the_room_declining_cancels_and_deletion_cancels_once():
    reservation = created(event())
    assert plan(event(2, response="declined"), reservation, [], ctx()).kind == CANCEL
    cancelled = plan(None, reservation, [], ctx()).after
    assert cancelled.status == CANCELLED
    assert plan(None, cancelled, [], ctx()).kind == IGNORE


def test_a_deleted_item_leaves_a_tombstone_that_an_older_read_cannot_pass():
    decision = plan(None, None, [], ctx())
    assert decision.kind == IGNORE and decision.tombstone
    assert plan(event(), None, [], ctx(gone=True)).kind == IGNORE


def test_an_unchanged_read_writes_nothing_and_an_older_one_is_ignored():
    reservation = created(event(2))
    assert not plan(event(2), reservation, [], ctx()).writes
    assert plan(event(1, start=T0 + timedelta(hours=5)), reservation, [], ctx()).kind == IGNORE
    assert plan(event(3, start=T0 + timedelta(hours=5)), reservation, [], ctx()).kind == UPDATE


versions = st.lists(st.tuples(st.integers(0, 20), st.sampled_from([30, 60, 90]), st.booleans()),
                    min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(versions=versions, data=st.data(), start_linked=st.booleans())
def test_any_delivery_order_converges_on_the_latest_version(versions, data, start_linked):
    """Reads of versions 1..n of one item (the last may be a cancellation), delivered in any order
    and any number of times; the latest is delivered at least once, as the worker always re-reads."""
    items = []
    for number, (hour, minutes, cancelled) in enumerate(versions, start=1):
        last = number == len(versions)
        items.append(event(number, start=T0 + timedelta(hours=hour), minutes=minutes, cancelled=cancelled and last))
    order = data.draw(st.lists(st.integers(0, len(items) - 1), max_size=12))
    position = data.draw(st.integers(0, len(order)))
    order.insert(position, len(items) - 1)
    order += data.draw(st.lists(st.integers(0, len(items) - 1), max_size=4))

    linked = created(event(0, start=T0 - timedelta(days=1))) if start_linked else None
    gone = False
    for index in order:
        decision = plan(items[index], linked, [], ctx(gone=gone))
        if decision.writes:
            linked = decision.after
        gone = gone or decision.tombstone

    latest = items[-1]
    if latest.is_cancelled:
        assert linked is None or linked.status == CANCELLED
    else:
        assert linked is not None and linked.status == CONFIRMED
        assert (linked.start, linked.end) == (latest.start, latest.end)
        assert linked.source_change_key == latest.change_key


def test_the_room_copy_of_a_platform_series_occurrence_keeps_the_reservation_in_its_series():
    """The platform books a series as one single meeting per occurrence: the room copy has no
    seriesMasterId, and must not take the occurrence out of the series it belongs to."""
    occurrence = replace(created(event()), origin=FROM_PLATFORM, series_id="series-1", occurrence_start=T0,
                         subject="Weekly sync")
    decision = plan(event(2, subject="Ada Lovelace"), occurrence, [], ctx())
    kept = decision.after
    assert (kept.series_id, kept.occurrence_start, kept.subject) == ("series-1", T0, "Weekly sync")
