"""Connected tenants with real ids to aim at: an integration with people, rooms linked as
subscribed assets and one platform booking, all made through the host's API. Used by the fuzz
and isolation tests, which need ids that exist (to get past 404s) and data to compare before and
after hostile calls."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import requests

from devtools.localhost import LocalHost
from sync.store import StorageLocation, queue_service
from sync.store.connection import queue_client
from tests.support.emulator_fixture import new_tenant
from tests.support.room_host import KEY, RoomWorld, connect


@dataclass
class TenantWorld:
    """A RoomWorld plus the ids a hostile caller would aim at."""

    room: RoomWorld
    reservation: dict

    @property
    def integration_id(self) -> str:
        return self.room.integration_id

    @property
    def tenant_id(self) -> str:
        return self.room.tenant.tenant_id

    @property
    def asset_ids(self) -> list[str]:
        return [asset["id"] for asset in self.room.assets.values()]

    @property
    def asset(self) -> dict:
        return next(iter(self.room.assets.values()))

    @property
    def subscription_id(self) -> str:
        return self.asset["subscription"]["id"]

    @property
    def user_ids(self) -> list[str]:
        return [user.id for user in self.room.tenant.users]

    @property
    def emails(self) -> list[str]:
        return [user.user_principal_name.lower() for user in self.room.tenant.users]

    @property
    def mailboxes(self) -> list[str]:
        return list(self.room.assets)

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.room.get(path, **params)


def utc_slot(days: int, hour: int, minutes: int = 60) -> tuple[str, str]:
    day = datetime.now(timezone.utc).replace(hour=hour, minute=0, second=0, microsecond=0) + timedelta(days=days)
    return (day.isoformat().replace("+00:00", "Z"),
            (day + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"))


def build_tenant_world(host: LocalHost, graph_emulator, *, users: int = 2, rooms: int = 1,
                       booking_day: int = 3) -> TenantWorld:
    """A fresh emulator tenant, connected, its rooms linked and subscribed, one booking made."""
    tenant = new_tenant(graph_emulator, users=users, rooms=rooms)
    room = connect(host, tenant, [r.email for r in tenant.rooms])
    start, end = utc_slot(booking_day, 9)
    first = next(iter(room.assets.values()))
    made = requests.post(f"{host.base_url}/api/reservations", headers=KEY, timeout=60, json={
        "asset_id": first["id"], "booker": tenant.users[0].user_principal_name, "start": start, "end": end,
        "subject": "Fuzz target"})
    assert made.status_code == 201, made.text
    return TenantWorld(room=room, reservation=made.json())


def peek_queue(storage_connection_string: str, queue: str) -> list[str]:
    """The texts of the visible messages on a queue (at most 32), without taking them."""
    client = queue_client(queue_service(StorageLocation(connection_string=storage_connection_string)), queue)
    try:
        return [message.content for message in client.peek_messages(max_messages=32)]
    except Exception as problem:  # a queue nobody has written to yet does not exist
        if type(problem).__name__ == "ResourceNotFoundError":
            return []
        raise
