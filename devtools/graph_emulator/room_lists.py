"""Room lists (Exchange distribution groups of rooms) as Graph places: the model and its Graph
JSON.

Graph (place-list, roomList resource): `GET /places/microsoft.graph.roomlist` lists them and
`GET /places/{roomlist emailAddress}/microsoft.graph.roomlist/rooms` the rooms in one, where the
list is addressed by its email address, not its id. Like rooms, a list's `id` is not immutable.

The control API makes them (`control.create_room_list`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devtools.graph_emulator.state import Tenant, new_guid

AREA = "room_lists"
ROOM_LIST_TYPE = "#microsoft.graph.roomList"


@dataclass
class RoomList:
    email: str
    display_name: str
    room_emails: list[str] = field(default_factory=list)
    id: str = field(default_factory=new_guid)


def room_lists(tenant: Tenant) -> dict[str, RoomList]:
    """The tenant's room lists by lower-cased email."""
    return tenant.area(AREA, dict)


def find_room_list(tenant: Tenant, key: str) -> RoomList | None:
    return room_lists(tenant).get(key.lower())


def render_room_list(room_list: RoomList) -> dict[str, Any]:
    return {"@odata.type": ROOM_LIST_TYPE, "id": room_list.id, "displayName": room_list.display_name,
            "address": None, "geoCoordinates": None, "phone": None, "emailAddress": room_list.email}


def put_room_list(tenant: Tenant, email: str, display_name: str | None, room_emails: list[str]) -> RoomList:
    """Creates (or replaces) the list with this address; every member must be a room of the
    tenant (ValueError naming the first that is not). Call with the world lock held."""
    members = []
    for address in room_emails:
        room = tenant.find_room(address)
        if room is None:
            raise ValueError(f"no room '{address}' in tenant {tenant.id}")
        members.append(room.email)
    room_list = RoomList(email=email, display_name=display_name or email.split("@")[0], room_emails=members)
    room_lists(tenant)[email.lower()] = room_list
    return room_list
