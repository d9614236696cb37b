"""Platform bookings that cannot go through, seen from the HTTP API of the local host: a booker's
mailbox that Graph refuses for good leaves the reservation `failed` with the reason, and a
recurrence with too many occurrences or none at all is a 422 naming `recurrence`."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.support.emulator_fixture import new_tenant
from tests.support.polling import wait_for
from tests.support.room_host import RoomWorld, connect

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@pytest.fixture
def world(host, graph_emulator) -> RoomWorld:
    tenant = new_tenant(graph_emulator, users=2, rooms=1)
    return connect(host, tenant, [tenant.rooms[0].email])


def _start(days: int) -> datetime:
    return (datetime.now(timezone.utc) + timedelta(days=days)).replace(hour=9, minute=0, second=0, microsecond=0)


def _body(world: RoomWorld, start: datetime, **extra) -> dict:
    return {"asset_id": world.assets[world.tenant.rooms[0].email]["id"], "booker": world.tenant.users[0].mail,
            "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat(), "subject": "Refused",
            **extra}


def _refuse_mailbox(world: RoomWorld, status: int, code: str) -> str:
    """Every write to the booker's calendar is answered with a permanent error from now on."""
    mailbox = world.tenant.users[0].mail
    answer = requests.post(f"{world.tenant.server.base_url}/_control/faults", verify=world.tenant.ca_path, timeout=30,
                           json={"method": "POST", "path": f"/users/{re.escape(mailbox)}/events", "status": status,
                                 "body": {"code": code, "message": "The mailbox refuses this request."},
                                 "tenant": world.tenant.tenant_id})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


@pytest.mark.parametrize("status, code", [(403, "ErrorAccessDenied"), (404, "ErrorItemNotFound")])
def test_a_mailbox_refusing_for_good_leaves_the_reservation_failed_with_the_reason(world, status, code):
    rule = _refuse_mailbox(world, status, code)
    try:
        answer = world.post("reservations", _body(world, _start(4)))
        assert answer.status_code == 201 and answer.json()["sync_status"] == "pending", answer.text
        reservation_id = answer.json()["id"]

        def failed():
            found = world.get(f"reservations/{reservation_id}").json()
            return found if found["sync_status"] == "failed" else None

        found = wait_for(failed, timeout=20, interval=0.2, what="the reservation marked failed")
        assert found["status"] == "confirmed"
        assert code in found["sync_reason"] or str(status) in found["sync_reason"], found["sync_reason"]
        assert world.reservations(world.tenant.rooms[0].email)[0]["sync_reason"] == found["sync_reason"]
        assert not [e for e in world.calendar.raw_events(world.tenant.users[0].mail) if e.get("isOrganizer")]
    finally:
        requests.delete(f"{world.tenant.server.base_url}/_control/faults/{rule}", verify=world.tenant.ca_path,
                        timeout=30)


def test_a_recurrence_over_the_maximum_or_naming_no_occurrence_is_a_422_naming_recurrence(world):
    start = _start(5)
    day = WEEKDAYS[start.weekday()]
    too_many = {"pattern": {"type": "daily", "interval": 1},
                "range": {"type": "numbered", "startDate": start.date().isoformat(), "numberOfOccurrences": 5000}}
    other_day = WEEKDAYS[(start.weekday() + 1) % 7]
    none = {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [other_day]},
            "range": {"type": "endDate", "startDate": start.date().isoformat(), "endDate": start.date().isoformat()}}
    assert day != other_day
    for recurrence in (too_many, none):
        answer = world.post("reservations", _body(world, start, recurrence=recurrence))
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert error["field"].split(".")[0] == "recurrence" and "recurrence" in error["message"], error
    assert world.reservations(world.tenant.rooms[0].email) == []
