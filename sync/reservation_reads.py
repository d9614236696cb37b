"""Reading reservations for the API: by asset and time window (or a day in the asset's zone),
by person (email or user id), or one by id. Pages carry an opaque continuation."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo

from sync import validation
from sync.assets import AssetService, not_found
from sync.store.reservations_repo import ReservationsRepo, asset_of, is_reservation_id
from sync.store.synclog_repo import SyncLog
from sync.store.users_repo import BadContinuation, decode_continuation, encode_continuation
from sync.validation import Problem

LIST_PARAMETERS = frozenset({"asset_id", "integration_id", "from", "to", "day", "user", "page_size", "continuation"})


def instant(params: Mapping[str, str], name: str) -> datetime | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Problem(400, "invalid_parameter", f"{name}: not an ISO 8601 time such as 2026-12-07T09:00:00Z",
                      field=name) from None
    if moment.tzinfo is None:
        raise Problem(400, "invalid_parameter", f"{name}: give a time zone offset or Z", field=name)
    return moment.astimezone(timezone.utc)


def day_window(raw: str, zone: str) -> tuple[datetime, datetime]:
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise Problem(400, "invalid_parameter", "day: not a date such as 2026-12-07", field="day") from None
    tz = ZoneInfo(zone)
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def _continuation(params: Mapping[str, str]):
    try:
        return decode_continuation(params.get("continuation") or None)
    except BadContinuation:
        raise Problem(400, "invalid_continuation", "continuation: not a token this API handed out; start again "
                      "without it", field="continuation") from None


class ReservationReads:
    def __init__(self, *, reservations: ReservationsRepo, assets: AssetService, live_integration, users,
                 synclog: SyncLog, clock: Callable[[], datetime]) -> None:
        self.reservations = reservations
        self.assets = assets
        self.live_integration = live_integration
        self.users = users
        self.synclog = synclog
        self.clock = clock

    def list(self, params: Mapping[str, str]) -> dict[str, Any]:
        validation.reject_unknown_params(params, LIST_PARAMETERS)
        size = validation.page_size(params.get("page_size"))
        token = _continuation(params)
        if params.get("asset_id"):
            asset = self.assets.get(params["asset_id"])
            start, end = instant(params, "from"), instant(params, "to")
            if params.get("day"):
                start, end = day_window(params["day"], asset.time_zone)
            if start and end and end <= start:
                raise Problem(400, "invalid_parameter", "to: must be after from", field="to")
            rows, next_token = self.reservations.in_range(asset.integration_id, asset.id, start, end,
                                                          page_size=size, continuation=token)
        elif params.get("user"):
            integration = self.live_integration(params.get("integration_id"))
            who = params["user"].strip()
            if "@" in who:
                rows, next_token = self.reservations.by_organizer(integration.id, email=who.lower(), page_size=size,
                                                                  continuation=token)
            else:
                rows, next_token = self.reservations.by_organizer(integration.id, user_id=who, page_size=size,
                                                                  continuation=token)
            start, end = instant(params, "from"), instant(params, "to")
            rows = [r for r in rows if (start is None or r.end > start) and (end is None or r.start < end)]
        else:
            raise Problem(400, "missing_parameter", "asset_id or user (with integration_id) is required",
                          field="asset_id")
        rows.sort(key=lambda r: (r.start, r.id))
        return {"value": [r.view() for r in rows], "continuation": encode_continuation(next_token)}

    def get(self, reservation_id: str) -> dict[str, Any]:
        return self.find(reservation_id).view()

    def find(self, reservation_id: str):
        if not is_reservation_id(reservation_id):
            raise not_found("reservation")
        try:
            asset = self.assets.get(asset_of(reservation_id))
        except Problem:
            raise not_found("reservation") from None
        found = self.reservations.get(asset.integration_id, asset.id, reservation_id)
        if found is None:
            raise not_found("reservation")
        return found

    def log(self, params: Mapping[str, str]) -> dict[str, Any]:
        validation.reject_unknown_params(params, frozenset({"integration_id", "asset_id", "reservation_id", "days"}))
        integration = self.live_integration(params.get("integration_id"))
        asset_id = params.get("asset_id") or None
        reservation_id = params.get("reservation_id") or None
        for value, check in ((asset_id, self.assets.get), (reservation_id, self.find)):
            if value:
                found = check(value)
                if found.integration_id != integration.id:
                    raise not_found("asset" if check == self.assets.get else "reservation")
        days = params.get("days") or "7"
        if not days.isdigit() or not 1 <= int(days) <= 31:
            raise Problem(400, "invalid_parameter", "days: a whole number from 1 to 31", field="days")
        entries = self.synclog.read(integration.id, now=self.clock(), days=int(days), asset_id=asset_id,
                                    reservation_id=reservation_id)
        return {"value": [entry.view() for entry in entries]}
