"""Assets: linking a bookable room of the platform to a room mailbox of the customer's tenant.

A mailbox is checked against Graph before it is saved (it exists, it is a room or resource
where Place.Read.All lets us see the tenant's rooms, and its calendar is readable with the
granted permissions), so an asset never points at a typo that would silently sync nothing.

Limit: "is a room" needs Place.Read.All (`/places/microsoft.graph.room`). With only the
permissions this app requires (User.Read.All, Calendars.ReadWrite) Graph has no documented way
to tell a room from a person: the user object carries no mailbox type, `mailboxSettings`
(`userPurpose`) needs MailboxSettings.Read, and `findRooms` is delegated only. Without
Place.Read.All a person's mailbox is therefore accepted when its calendar is readable.
"""
from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from graph import Forbidden, NotFound
from graph.events import calendar_view
from graph.places import list_rooms
from graph.users import get_user
from sync.booking_model import Asset, Subscription
from sync.model import USERS_AND_CALENDARS, Integration, utc_now
from sync.store.assets_repo import AssetsRepo, MailboxTaken, new_asset_id
from sync.store.errors import ConflictError
from sync.validation import Problem, reject_unknown

log = logging.getLogger(__name__)

PLACE_READ = ("Place.Read.All", "Place.ReadWrite.All")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,253}$")
CREATE_FIELDS = frozenset({"integration_id", "name", "category", "mailbox", "time_zone", "capacity",
                           "max_duration_minutes", "room"})
PATCH_FIELDS = frozenset({"name", "category", "time_zone", "capacity", "max_duration_minutes"})
CATEGORIES = ("room", "desk", "workspace", "equipment")


def not_found(what: str = "asset") -> Problem:
    return Problem(404, "not_found", f"no such {what}")


def mailbox_address(value: Any, field: str = "mailbox") -> str:
    if not isinstance(value, str) or not _EMAIL.match(value.strip()):
        raise Problem(422, "invalid_field", f"{field}: must be the room mailbox's email address", field=field)
    return value.strip().lower()


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise Problem(422, "invalid_field", "name: must be 1-200 characters", field="name")
    return " ".join(value.split())


def _zone(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise Problem(422, "invalid_field", "time_zone: must be an IANA time zone such as Europe/Amsterdam",
                      field="time_zone")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise Problem(422, "invalid_field", f"time_zone: {value[:64]!r} is not an IANA time zone",
                      field="time_zone") from None
    return value


def _whole(value: Any, field: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Problem(422, "invalid_field", f"{field}: must be a whole number from {low} to {high}", field=field)
    return value


def _category(value: Any) -> str:
    if value is None:
        return "room"
    if value not in CATEGORIES:
        raise Problem(422, "invalid_field", f"category: must be one of {', '.join(CATEGORIES)}", field="category")
    return value


class AssetService:
    def __init__(self, *, assets: AssetsRepo, integrations, access, live_integration: Callable[[str], Integration],
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.assets = assets
        self.integrations = integrations
        self.access = access
        self.live_integration = live_integration
        self.clock = clock

    def rooms(self, integration_id: str) -> list[dict[str, Any]]:
        integration = self.live_integration(integration_id)
        if not set(PLACE_READ) & set(integration.granted_roles):
            raise Problem(403, "permission_missing",
                          "listing the tenant's rooms needs the application permission Place.Read.All "
                          "(with admin consent); you can still add a room by its mailbox address",
                          details={"permission": "Place.Read.All"})
        client = self.access.client_for(integration)
        try:
            rooms = list(list_rooms(client))
        except Forbidden:
            raise Problem(403, "permission_missing", "Graph refused to list rooms: grant Place.Read.All",
                          details={"permission": "Place.Read.All"}) from None
        finally:
            client.close()
        return [_room_view(room) for room in rooms if isinstance(room, dict) and room.get("emailAddress")]

    def create(self, data: Mapping[str, Any]) -> dict[str, Any]:
        reject_unknown(data, CREATE_FIELDS)
        integration = self.live_integration(data.get("integration_id"))
        if integration.mode != USERS_AND_CALENDARS:
            raise Problem(422, "calendars_not_granted", "this integration syncs users only: grant "
                          "Calendars.ReadWrite (application) with admin consent to link rooms",
                          field="integration_id")
        if data.get("room") is not None and data.get("mailbox") is not None:
            raise Problem(400, "invalid_request", "give either room or mailbox, not both", field="room")
        field = "room" if data.get("room") is not None else "mailbox"
        mailbox = mailbox_address(data.get(field), field)
        room = self._check_mailbox(integration, mailbox, field)
        now = self.clock()
        asset = Asset(
            id=new_asset_id(), integration_id=integration.id,
            name=_name(data["name"]) if data.get("name") is not None else _name(room.get("displayName") or mailbox),
            category=_category(data.get("category")), mailbox=mailbox,
            time_zone=_zone(data["time_zone"]) if data.get("time_zone") is not None else _room_zone(room),
            capacity=_whole(data.get("capacity"), "capacity", 0, 100_000) if data.get("capacity") is not None
            else _whole(room.get("capacity") if isinstance(room.get("capacity"), int) else None, "capacity", 0, 100_000),
            max_duration_minutes=_whole(data.get("max_duration_minutes"), "max_duration_minutes", 5, 60 * 24 * 14),
            subscription=Subscription(), created_at=now, updated_at=now)
        try:
            saved = self.assets.insert(asset)
        except MailboxTaken:
            existing = self.assets.by_mailbox(integration.id, mailbox)
            raise Problem(409, "mailbox_linked", f"{field}: {mailbox} is already linked to asset "
                          f"{existing.id if existing else '(being created)'}", field=field,
                          details={"asset_id": existing.id if existing else None}) from None
        log.info("asset %s created for integration %s", saved.id, integration.id)
        return saved.view(now)

    def _check_mailbox(self, integration: Integration, mailbox: str, field: str) -> dict[str, Any]:
        """Graph's word that the mailbox is a room we can read; returns what we learnt of it."""
        client = self.access.client_for(integration)
        try:
            try:
                get_user(client, mailbox, select=("id", "mail", "userPrincipalName", "displayName", "accountEnabled"))
            except NotFound:
                raise Problem(422, "mailbox_not_found", f"{field}: no mailbox {mailbox} in the tenant",
                              field=field) from None
            room: dict[str, Any] = {}
            if set(PLACE_READ) & set(integration.granted_roles):
                rooms = {str(r.get("emailAddress", "")).lower(): r for r in list_rooms(client) if isinstance(r, dict)}
                if mailbox not in rooms:
                    raise Problem(422, "not_a_room", f"{field}: {mailbox} is not a room or resource mailbox "
                                  "of the tenant", field=field)
                room = rooms[mailbox]
            now = self.clock()
            try:
                next(iter(calendar_view(client, mailbox, now, now + timedelta(minutes=1), page_size=1)), None)
            except Forbidden:
                raise Problem(422, "calendar_not_readable", f"{field}: Graph refused to read the calendar of "
                              f"{mailbox}; check Calendars.ReadWrite and any Exchange application access "
                              "policy or RBAC scope", field=field) from None
            return room
        finally:
            client.close()

    def get(self, asset_id: str) -> Asset:
        asset = self.assets.get(asset_id) if _looks_like_id(asset_id) else None
        if asset is None:
            raise not_found()
        self.live_integration(asset.integration_id, missing=not_found())
        return asset

    def view(self, asset_id: str) -> dict[str, Any]:
        return self.get(asset_id).view(self.clock())

    def list(self, integration_id: str) -> list[dict[str, Any]]:
        integration = self.live_integration(integration_id)
        now = self.clock()
        return [asset.view(now) for asset in self.assets.list(integration.id)]

    def update(self, asset_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        reject_unknown(data, PATCH_FIELDS)
        for _ in range(3):
            asset = self.get(asset_id)
            changes: dict[str, Any] = {}
            if "name" in data:
                changes["name"] = _name(data["name"])
            if "category" in data:
                changes["category"] = _category(data["category"])
            if "time_zone" in data:
                changes["time_zone"] = _zone(data["time_zone"])
            if "capacity" in data:
                changes["capacity"] = _whole(data["capacity"], "capacity", 0, 100_000)
            if "max_duration_minutes" in data:
                changes["max_duration_minutes"] = _whole(data["max_duration_minutes"], "max_duration_minutes",
                                                         5, 60 * 24 * 14)
            try:
                saved = self.assets.update(replace(asset, updated_at=self.clock(), **changes))
            except ConflictError:
                continue
            return saved.view(self.clock())
        raise Problem(409, "changed_meanwhile", "the asset changed while it was being updated; try again")


def _looks_like_id(value: Any) -> bool:
    return isinstance(value, str) and bool(re.fullmatch(r"[0-9a-f]{32}", value))


def _room_zone(room: Mapping[str, Any]) -> str:
    """Rooms do not carry a zone in Graph's places API; UTC unless the caller names one."""
    zone = room.get("timeZone") if isinstance(room, Mapping) else None
    try:
        return _zone(zone) if zone else "UTC"
    except Problem:
        return "UTC"


def _room_view(room: Mapping[str, Any]) -> dict[str, Any]:
    capacity = room.get("capacity")
    return {"email": str(room.get("emailAddress", "")).lower()[:320],
            "display_name": str(room.get("displayName") or "")[:200],
            "capacity": capacity if isinstance(capacity, int) and not isinstance(capacity, bool) else None,
            "building": str(room.get("building") or "")[:200] or None}
