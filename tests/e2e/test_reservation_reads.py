"""`GET /api/reservations` through the local host and Azurite: every filter (asset and window,
a day in the asset's own zone, a person by email or id) applies before paging, and pages walk
the whole result in (start, id) order with a continuation that round-trips.

The reservations are written with the app's own repository (as the inbound worker would), so
each test controls times to the minute without waiting for Outlook; one reservation made in
Outlook checks the contract's fields as the API shows them."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests

from sync.booking_model import Organizer, Reservation
from sync.store import Store, StorageLocation, table_service
from sync.store.reservations_repo import ReservationsRepo, new_reservation_id
from tests.support.room_host import KEY, connect_new_tenant

RESERVATION_KEYS = {"id", "integration_id", "asset_id", "start", "end", "time_zone", "subject", "organizer",
                    "origin", "status", "sync_status", "series_id", "occurrence_start", "private", "created_at",
                    "updated_at"}
DOCUMENTED_EXTRAS = {"sync_reason"}  # why a booking was declined or could not be applied


@pytest.fixture(scope="module")
def repo(storage_connection_string) -> ReservationsRepo:
    return ReservationsRepo(Store(table_service(StorageLocation(connection_string=storage_connection_string))))


@pytest.fixture
def world(host, graph_emulator):
    return connect_new_tenant(host, graph_emulator, users=2, rooms=2)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def book(repo: ReservationsRepo, asset: dict, person, start: str, minutes: int, subject: str,
         zone: str = "Europe/Amsterdam") -> str:
    """Stores a confirmed Outlook reservation of `person` and returns its id."""
    begin = at(start)
    now = datetime.now(timezone.utc)
    reservation = Reservation(
        id=new_reservation_id(asset["id"]), integration_id=asset["integration_id"], asset_id=asset["id"],
        start=begin, end=begin + timedelta(minutes=minutes), time_zone=zone, subject=subject,
        organizer=Organizer(email=person.user_principal_name.lower(), user_id=person.id, name=person.display_name),
        origin="outlook", status="confirmed", sync_status="synced", sync_reason=None, series_id=None,
        occurrence_start=None, private=False, created_at=now, updated_at=now)
    etag, version = repo.lock(asset["integration_id"], asset["id"])
    repo.commit(asset["integration_id"], asset["id"], etag, version, [reservation])
    return reservation.id


def listed(world, **params) -> dict:
    answer = world.get("reservations", **params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def subjects(page: dict) -> list[str]:
    return [r["subject"] for r in page["value"]]


def walk(world, page_size: int, **params) -> list[list[dict]]:
    """Every page of a listing, following the continuation."""
    pages, token = [], None
    while True:
        extra = {"continuation": token} if token else {}
        page = listed(world, page_size=page_size, **params, **extra)
        pages.append(page["value"])
        token = page["continuation"]
        if token is None:
            return pages
        assert isinstance(token, str) and len(pages) < 50


def test_an_asset_window_keeps_what_overlaps_it_including_a_booking_straddling_from(world, repo):
    room, other = (world.assets[r.email] for r in world.tenant.rooms)
    person = world.tenant.users[0]
    book(repo, room, person, "2031-03-10T07:00:00Z", 180, "ends exactly at from")
    book(repo, room, person, "2031-03-10T09:30:00Z", 60, "straddles from")
    book(repo, room, person, "2031-03-10T10:00:00Z", 60, "starts at from")
    book(repo, room, person, "2031-03-10T11:45:00Z", 60, "straddles to")
    book(repo, room, person, "2031-03-10T12:00:00Z", 30, "starts at to")
    book(repo, other, person, "2031-03-10T10:00:00Z", 60, "another room")
    page = listed(world, asset_id=room["id"], **{"from": "2031-03-10T10:00:00Z", "to": "2031-03-10T12:00:00Z"})
    assert subjects(page) == ["straddles from", "starts at from", "straddles to"]
    assert page["continuation"] is None
    offset = listed(world, asset_id=room["id"], **{"from": "2031-03-10T11:00:00+01:00", "to": "2031-03-10T11:00Z"})
    assert subjects(offset) == ["straddles from", "starts at from"]
    backwards = world.get("reservations", asset_id=room["id"], **{"from": "2031-03-10T12:00Z", "to": "2031-03-10T10:00Z"})
    assert backwards.status_code == 400 and backwards.json()["error"]["field"] == "to"


def test_a_day_is_the_assets_local_day_not_the_utc_one(world, repo, host):
    room = world.assets[world.tenant.rooms[0].email]
    patched = requests.patch(world.api(f"assets/{room['id']}"), json={"time_zone": "America/New_York"},
                             headers=KEY, timeout=30)
    assert patched.status_code == 200, patched.text
    person, other = world.tenant.users
    # January: New York is UTC-5. 23:30 local on the 14th is 04:30 UTC on the 15th.
    book(repo, room, person, "2031-01-14T12:00:00Z", 60, "morning of the 14th", "America/New_York")
    book(repo, room, person, "2031-01-15T04:30:00Z", 30, "23:30 local on the 14th", "America/New_York")
    book(repo, room, person, "2031-01-15T05:00:00Z", 60, "midnight local on the 15th", "America/New_York")
    book(repo, room, other, "2031-01-14T02:00:00Z", 60, "21:00 local on the 13th", "America/New_York")
    assert subjects(listed(world, asset_id=room["id"], day="2031-01-14")) == ["morning of the 14th",
                                                                              "23:30 local on the 14th"]
    assert subjects(listed(world, asset_id=room["id"], day="2031-01-13")) == ["21:00 local on the 13th"]
    assert subjects(listed(world, asset_id=room["id"], day="2031-01-15")) == ["midnight local on the 15th"]
    # A person's day is the day of each booked asset's zone too.
    by_person = listed(world, integration_id=world.integration_id, user=person.user_principal_name, day="2031-01-14")
    assert subjects(by_person) == ["morning of the 14th", "23:30 local on the 14th"]
    for bad in ({"day": "14/01/2031"}, {"day": "2031-01-14", "from": "2031-01-14T00:00:00Z"}):
        answer = world.get("reservations", asset_id=room["id"], **bad)
        assert answer.status_code == 400 and answer.json()["error"]["field"] == "day", answer.text


def test_a_person_is_found_by_email_or_id_across_assets_and_within_a_window(world, repo):
    room, other = (world.assets[r.email] for r in world.tenant.rooms)
    person, someone_else = world.tenant.users
    book(repo, room, person, "2031-05-02T09:00:00Z", 60, "first room")
    book(repo, other, person, "2031-05-02T08:00:00Z", 60, "second room")
    book(repo, other, person, "2031-06-01T08:00:00Z", 60, "a month later")
    book(repo, room, someone_else, "2031-05-02T10:00:00Z", 60, "not theirs")
    everything = ["second room", "first room", "a month later"]
    by_email = listed(world, integration_id=world.integration_id, user=person.user_principal_name.upper())
    by_id = listed(world, integration_id=world.integration_id, user=person.id)
    assert subjects(by_email) == subjects(by_id) == everything
    assert {r["organizer"]["user_id"] for r in by_id["value"]} == {person.id}
    window = listed(world, integration_id=world.integration_id, user=person.id,
                    **{"from": "2031-05-01T00:00:00Z", "to": "2031-05-03T00:00:00Z"})
    assert subjects(window) == ["second room", "first room"]
    within_asset = listed(world, asset_id=room["id"], user=person.user_principal_name)
    assert subjects(within_asset) == ["first room"]
    missing = world.get("reservations", user=person.id)
    assert missing.status_code in (400, 404) and "integration_id" in missing.text


def test_pages_walk_every_match_once_in_start_order_and_a_bad_token_is_refused(world, repo):
    room = world.assets[world.tenant.rooms[0].email]
    person, someone_else = world.tenant.users
    for n in range(4):  # the person's older bookings, outside the window asked for below
        book(repo, room, person, f"2031-07-0{n + 1}T09:00:00Z", 30, f"old {n}")
        book(repo, room, someone_else, f"2031-08-0{n + 1}T09:00:00Z", 30, f"theirs {n}")
    made = {book(repo, room, person, f"2031-08-0{n // 2 + 1}T09:00:00Z", 30, f"august {n}") for n in range(7)}
    pages = walk(world, 3, asset_id=room["id"], user=person.id, **{"from": "2031-08-01T00:00:00Z"})
    assert [len(page) for page in pages] == [3, 3, 1]
    seen = [r for page in pages for r in page]
    assert len({r["id"] for r in seen}) == len(seen) == 7 and {r["id"] for r in seen} == made
    assert [(r["start"], r["id"]) for r in seen] == sorted((r["start"], r["id"]) for r in seen)
    across = walk(world, 2, integration_id=world.integration_id, user=person.user_principal_name,
                  **{"from": "2031-08-01T00:00:00Z"})
    assert [len(page) for page in across] == [2, 2, 2, 1]
    assert [r["id"] for page in across for r in page] == [r["id"] for r in seen]
    whole_asset = walk(world, 5, asset_id=room["id"])
    assert [len(page) for page in whole_asset] == [5, 5, 5]
    for token in ("not-a-token", "eyJ4IjoxfQ"):
        answer = world.get("reservations", asset_id=room["id"], continuation=token)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["field"] == "continuation"


def test_a_reservation_read_through_the_api_has_exactly_the_contract_fields(world):
    person, room = world.tenant.users[0], world.tenant.rooms[0].email
    start = (datetime.now(timezone.utc) + timedelta(days=3)).replace(hour=9, minute=0, second=0, microsecond=0)
    world.meeting(person.user_principal_name, subject="Fields", start=z(start), end=z(start + timedelta(hours=1)),
                  rooms=[room])
    found = world.wait_reservations(room, lambda rs: len(rs) == 1)[0]
    one = world.get(f"reservations/{found['id']}")
    assert one.status_code == 200, one.text
    for reservation in (found, one.json()):
        assert RESERVATION_KEYS <= set(reservation) <= RESERVATION_KEYS | DOCUMENTED_EXTRAS
        assert set(reservation["organizer"]) == {"email", "user_id", "name"}
        assert reservation["organizer"] == {"email": person.user_principal_name.lower(), "user_id": person.id,
                                            "name": person.display_name}
        assert (reservation["integration_id"], reservation["asset_id"]) == (world.integration_id,
                                                                            world.assets[room]["id"])
        assert (reservation["origin"], reservation["status"], reservation["private"]) == ("outlook", "confirmed",
                                                                                          False)
        assert reservation["series_id"] is None and reservation["occurrence_start"] is None
        assert reservation["start"] == z(start) and reservation["created_at"].endswith("Z")
