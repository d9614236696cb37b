"""The outbound worker's pure rules: what counts as an unknown outcome, the meeting it sends,
the room's answer, queue messages and the booking settings."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import graph.errors as graph_errors
from graph.errors import BadRequest, GraphError, ServiceUnavailable, Throttled
from sync.booking_model import Asset, Organizer, Reservation, Subscription
from sync.booking_queue import BadMessage, BookingChange, LeaverRelease
from sync.booking_settings import load_booking_settings
from sync.outbound import (
    RESERVATION_TAG, meeting, outcome_unknown, platform_reservation_id, room_response, transaction_id,
)
from sync.settings import SettingsError

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=timezone.utc)
ASSET = Asset(id="a" * 32, integration_id="i", name="Room Amber", category="room", mailbox="amber@contoso.example",
              time_zone="Europe/Amsterdam", capacity=6, max_duration_minutes=None, subscription=Subscription(),
              created_at=NOW, updated_at=NOW)


def reservation(**changes) -> Reservation:
    base = dict(id="a" * 32 + "b" * 32, integration_id="i", asset_id="a" * 32, start=NOW, end=NOW + timedelta(hours=1),
                time_zone="Europe/Amsterdam", subject="Planning", organizer=Organizer("kim@contoso.example", "u1", "Kim"),
                origin="platform", status="confirmed", sync_status="pending", sync_reason=None, series_id=None,
                occurrence_start=None, private=False, created_at=NOW, updated_at=NOW, body="Agenda")
    base.update(changes)
    return Reservation(**base)


@pytest.mark.parametrize("error, unknown", [
    (GraphError(0, "ReadTimeout", "no answer"), True),
    (ServiceUnavailable(503, "ServiceUnavailable", "later"), True),
    (GraphError(500, "InternalServerError", "oops"), True),
    (Throttled(429, "TooManyRequests", "later"), False),
    (BadRequest(400, "ErrorInvalidRequest", "bad"), False),
    (ValueError("not Graph"), False),
])
def test_which_failures_may_have_created_the_event(error, unknown):
    assert outcome_unknown(error) is unknown


def test_the_clients_own_outcome_unknown_counts_when_it_exists(monkeypatch):
    class OutcomeUnknown(GraphError):
        pass

    monkeypatch.setattr(graph_errors, "OutcomeUnknown", OutcomeUnknown, raising=False)
    assert outcome_unknown(OutcomeUnknown(400, "x", "y"))


def test_transaction_ids_are_stable_per_change_and_differ_between_changes():
    assert transaction_id("r1", 3) == transaction_id("r1", 3)
    assert len({transaction_id("r1", 3), transaction_id("r1", 4), transaction_id("r2", 3)}) == 3


def test_the_meeting_invites_the_room_as_a_resource_in_utc():
    body = meeting(reservation(private=True), ASSET)
    assert body["attendees"] == [{"type": "resource", "emailAddress": {"address": ASSET.mailbox, "name": ASSET.name}}]
    assert body["location"]["locationEmailAddress"] == ASSET.mailbox
    assert body["start"] == {"dateTime": "2026-05-04T09:00:00", "timeZone": "UTC"}
    assert body["end"] == {"dateTime": "2026-05-04T10:00:00", "timeZone": "UTC"}
    assert body["sensitivity"] == "private" and body["body"]["content"] == "Agenda"


def test_the_rooms_answer_is_read_case_insensitively():
    event = {"attendees": [{"emailAddress": {"address": "Amber@Contoso.Example"}, "status": {"response": "declined"}},
                           {"emailAddress": {"address": "kim@contoso.example"}, "status": {"response": "accepted"}}]}
    assert room_response(event, ASSET.mailbox) == "declined"
    assert room_response({"attendees": []}, ASSET.mailbox) == "none"


def test_the_tag_names_our_reservation_and_nothing_else():
    ours = {"singleValueExtendedProperties": [{"id": RESERVATION_TAG.id, "value": "a" * 32 + "b" * 32}]}
    assert platform_reservation_id(ours) == "a" * 32 + "b" * 32
    assert platform_reservation_id({"singleValueExtendedProperties": [{"id": RESERVATION_TAG.id, "value": "x"}]}) is None
    assert platform_reservation_id({}) is None


def test_booking_change_messages_round_trip_and_refuse_nonsense():
    change = BookingChange("i", reservation_id="a" * 64, attempt=2)
    assert BookingChange.from_message(change.as_message()) == change
    assert change.as_message()["asset_id"] == "a" * 32
    for bad in ([], {"integration_id": "i"}, {"integration_id": "i", "reservation_id": "x"},
                {"integration_id": "i", "reservation_id": "a" * 64, "series_id": "a" * 64},
                {"integration_id": "i", "series_id": "a" * 64, "attempt": -1}):
        with pytest.raises(BadMessage):
            BookingChange.from_message(bad)
    assert LeaverRelease.from_message({"integration_id": "i", "user_id": "u"}) == LeaverRelease("i", "u")
    with pytest.raises(BadMessage):
        LeaverRelease.from_message({"integration_id": "i"})


def test_answers_messages_round_trip_and_hold_one_batch_of_our_ids():
    ids = tuple(f"{n:02d}" * 32 for n in range(20))
    change = BookingChange("i", answer_ids=ids, attempt=3)
    assert change.as_message() == {"integration_id": "i", "answers": list(ids), "attempt": 3}
    assert BookingChange.from_message(change.as_message()) == change
    for bad in ({"integration_id": "i", "answers": []}, {"integration_id": "i", "answers": "a" * 64},
                {"integration_id": "i", "answers": list(ids) + ["a" * 64]},
                {"integration_id": "i", "answers": ["../" + "a" * 61]},
                {"integration_id": "i", "answers": ["a" * 64], "reservation_id": "a" * 64}):
        with pytest.raises(BadMessage, match="answers|exactly one"):
            BookingChange.from_message(bad)


def test_booking_settings_have_defaults_and_one_line_errors():
    settings = load_booking_settings({})
    assert (settings.horizon_days, settings.max_occurrences, settings.sweep_schedule) == (90, 730, "0 */5 * * * *")
    assert load_booking_settings({"RECURRENCE_HORIZON_DAYS": "30"}).horizon_days == 30
    for name, value in (("RECURRENCE_HORIZON_DAYS", "0"), ("RECURRENCE_MAX_OCCURRENCES", "many"),
                        ("BOOKING_SWEEP_SCHEDULE", "every five minutes")):
        with pytest.raises(SettingsError) as refused:
            load_booking_settings({name: value})
        assert str(refused.value).startswith(name + ":") and "\n" not in str(refused.value)
