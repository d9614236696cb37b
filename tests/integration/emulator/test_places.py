"""`/places/microsoft.graph.room` and `/places/{id | email}` as documented (GRAPH.md §3.4):
Place.Read.All, pages of 100 with $top/$skip, $select, $filter, hidden rooms left out, and a
mutable `id` next to the stable `placeId` and `emailAddress`."""
from __future__ import annotations

import pytest

from devtools.graph_emulator import places, seed

ROOMS = "/places/microsoft.graph.room"


@pytest.fixture
def tenant(make_tenant):
    return make_tenant(rooms=[
        {"alias": "ams-board", "display_name": "Board", "capacity": 12, "building": "Amsterdam", "floor_number": 5,
         "time_zone": "Europe/Amsterdam"},
        {"alias": "ams-focus", "capacity": 2, "building": "Amsterdam", "floor_number": 2},
        {"alias": "nyc-hudson", "capacity": 10, "building": "New York", "floor_number": 21,
         "time_zone": "America/New_York"},
        {"alias": "secret-room", "building": "Amsterdam", "hidden_from_gal": True},
    ])


def emails(body):
    return [room["emailAddress"] for room in body["value"]]


def test_lists_visible_rooms_with_documented_properties(tenant):
    body = tenant.session().get(tenant.api_base + ROOMS).json()
    assert sorted(emails(body)) == sorted(f"{a}@{tenant.domain}" for a in ("ams-board", "ams-focus", "nyc-hudson"))
    board = next(r for r in body["value"] if r["emailAddress"].startswith("ams-board"))
    assert board["@odata.type"] == "#microsoft.graph.room"
    assert board["displayName"] == "Board" and board["capacity"] == 12 and board["floorNumber"] == 5
    assert board["building"] == "Amsterdam" and board["bookingType"] == "standard"
    assert board["id"] and board["placeId"] and board["id"] != board["placeId"]
    for name in ("isWheelChairAccessible", "tags", "address", "nickname", "label", "phone"):
        assert name in board


def test_default_page_is_100_and_skip_pages_on(make_tenant):
    tenant = make_tenant(rooms=105)
    session = tenant.session()
    first = session.get(tenant.api_base + ROOMS).json()
    assert len(first["value"]) == 100
    second = session.get(first["@odata.nextLink"]).json()
    assert len(second["value"]) == 5 and "@odata.nextLink" not in second
    assert len(set(emails(first) + emails(second))) == 105


def test_top_skip_and_count(tenant):
    session = tenant.session()
    everything = emails(session.get(tenant.api_base + ROOMS).json())
    page = session.get(tenant.api_base + ROOMS, params={"$top": 1, "$skip": 1, "$count": "true"}).json()
    assert emails(page) == everything[1:2]
    assert page["@odata.count"] == 3
    assert "$skip=2" in page["@odata.nextLink"]
    assert session.get(tenant.api_base + ROOMS, params={"$top": "0"}).status_code == 400


def test_select(tenant):
    body = tenant.session().get(tenant.api_base + ROOMS, params={"$select": "emailAddress,capacity"}).json()
    assert all(set(r) == {"@odata.type", "emailAddress", "capacity"} for r in body["value"])
    assert tenant.session().get(tenant.api_base + ROOMS, params={"$select": "color"}).status_code == 400


def test_filters(tenant):
    session = tenant.session()
    by_building = session.get(tenant.api_base + ROOMS, params={"$filter": "building eq 'Amsterdam'"}).json()
    assert sorted(emails(by_building)) == [f"ams-board@{tenant.domain}", f"ams-focus@{tenant.domain}"]
    by_email = session.get(tenant.api_base + ROOMS,
                           params={"$filter": f"emailAddress eq 'NYC-HUDSON@{tenant.domain}'"}).json()
    assert emails(by_email) == [f"nyc-hudson@{tenant.domain}"]
    response = session.get(tenant.api_base + ROOMS, params={"$filter": "capacity gt 4"})
    assert response.status_code == 400 and "capacity gt 4" in response.json()["error"]["message"]


def test_get_by_email_id_or_place_id(tenant):
    session = tenant.session()
    room = tenant.rooms[0]
    for key in (room.email, room.id, room.place_id):
        body = session.get(f"{tenant.api_base}/places/{key}").json()
        assert body["emailAddress"] == room.email and body["@odata.type"] == "#microsoft.graph.room"
    missing = session.get(f"{tenant.api_base}/places/nowhere@{tenant.domain}")
    assert missing.status_code == 404


def test_room_id_is_mutable_but_place_id_and_email_are_not(tenant):
    session = tenant.session()
    room = tenant.rooms[0]
    before = session.get(f"{tenant.api_base}/places/{room.email}").json()
    places.rotate_room_id(tenant.world, room)
    after = session.get(f"{tenant.api_base}/places/{room.email}").json()
    assert after["id"] != before["id"]
    assert after["placeId"] == before["placeId"] and after["emailAddress"] == before["emailAddress"]
    assert session.get(f"{tenant.api_base}/places/{before['id']}").status_code == 404


def test_extra_properties_can_be_set(tenant):
    room = tenant.rooms[0]
    places.set_extras(tenant.world, tenant.tenant, room, {"tags": ["video"], "isWheelChairAccessible": True})
    body = tenant.session().get(f"{tenant.api_base}/places/{room.email}").json()
    assert body["tags"] == ["video"] and body["isWheelChairAccessible"] is True


def test_room_mailboxes_are_users_with_sign_in_blocked(tenant):
    room = tenant.rooms[0]
    user = tenant.session().get(f"{tenant.api_base}/users/{room.email}?$select=id,accountEnabled,mail").json()
    user.pop("@odata.context")
    assert user == {"id": room.user_id, "accountEnabled": False, "mail": room.email}


def test_rooms_of_other_tenants_are_invisible(tenant, make_tenant):
    other = make_tenant()
    seed.add_room(other.world, other.tenant, "elsewhere")
    assert emails(tenant.session().get(tenant.api_base + ROOMS).json()).count(f"elsewhere@{other.domain}") == 0
    assert tenant.session().get(f"{tenant.api_base}/places/elsewhere@{other.domain}").status_code == 404
