"""Reading reservations for the API: by asset and time window (or a day in the asset's zone),
by person (email or user id, across the integration's assets or within one), or one by id.

Tables cannot sort by start, so a list reads every matching row (the Table service filters
them: asset or integration, window, organizer, and from the previous page's last start on),
sorts by (start, id) and hands out one page; the continuation is that page's last (start, id).
A window bounds the read; a person's whole history, unbounded, is read once per page."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo

from sync import validation
from sync.assets import AssetService, not_found
from sync.store.reservations_repo import ReservationsRepo, asset_of, is_reservation_id
from sync.store.synclog_repo import SyncLog
from sync.store.users_repo import BadContinuation, encode_continuation, read_token
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


def _cursor(params: Mapping[str, str]) -> tuple[datetime, str] | None:
    """The (start, id) of the last reservation of the previous page, from its token."""
    raw = params.get("continuation") or None
    if raw is None:
        return None
    try:
        value = read_token(raw)
        after = datetime.fromisoformat(value["after_start"]).astimezone(timezone.utc)
        if not is_reservation_id(value["after_id"]) or set(value) != {"after_start", "after_id"}:
            raise ValueError
    except (BadContinuation, ValueError, TypeError, KeyError, AttributeError):
        raise Problem(400, "invalid_continuation", "continuation: not a token this API handed out; start again "
                      "without it", field="continuation") from None
    return after, value["after_id"]


def _token(last) -> str:
    return encode_continuation({"after_start": last.start.isoformat(), "after_id": last.id})


def _organizer(raw: str | None) -> dict[str, str]:
    """The organizer filter: an email (compared in lower case) or a user id."""
    who = (raw or "").strip()
    if not who:
        return {}
    if len(who) > 320:
        raise Problem(400, "invalid_parameter", "user: an email address or a user id", field="user")
    return {"organizer_email": who.lower()} if "@" in who else {"organizer_user_id": who}


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
        """Every filter is applied before paging, so pages are full. Order: start, then id,
        ascending, across pages; the token names the last row handed out, so rows booked
        meanwhile before it are not shown and none is repeated or skipped."""
        validation.reject_unknown_params(params, LIST_PARAMETERS)
        size = validation.page_size(params.get("page_size"))
        after = _cursor(params)
        who = _organizer(params.get("user"))
        if params.get("day") and (params.get("from") or params.get("to")):
            raise Problem(400, "invalid_parameter", "day: give either day or from/to, not both", field="day")
        start, end = instant(params, "from"), instant(params, "to")
        if start and end and end <= start:
            raise Problem(400, "invalid_parameter", "to: must be after from", field="to")
        if params.get("asset_id"):
            asset = self.assets.get(params["asset_id"])
            if params.get("integration_id") and params["integration_id"] != asset.integration_id:
                raise not_found("asset")  # another integration's asset: as if it did not exist
            integration_id, asset_id, zones = asset.integration_id, asset.id, {asset.id: asset.time_zone}
        elif who:
            integration_id, asset_id = self.live_integration(params.get("integration_id")).id, None
            zones = {a.id: a.time_zone for a in self.assets.assets.list(integration_id)} if params.get("day") else {}
        else:
            raise Problem(400, "missing_parameter", "asset_id or user (with integration_id) is required",
                          field="asset_id")
        day_of: Callable[[str], tuple[datetime, datetime]] | None = None
        if params.get("day"):
            windows = {zone: day_window(params["day"], zone) for zone in set(zones.values()) | {"UTC"}}
            # The Table filter takes the widest window; each row then keeps its own asset's day.
            start, end = min(w[0] for w in windows.values()), max(w[1] for w in windows.values())
            day_of = lambda asset: windows[zones.get(asset, "UTC")]  # noqa: E731
        rows = self.reservations.matching(integration_id, asset_id, start=start, end=end,
                                          starting_from=after[0] if after else None, **who)
        if day_of is not None:
            rows = (r for r in rows if r.overlaps(*day_of(r.asset_id)))
        if after is not None:
            rows = (r for r in rows if (r.start, r.id) > after)
        ordered = sorted(rows, key=lambda r: (r.start, r.id))
        page = ordered[:size]
        more = len(ordered) > size
        return {"value": [r.view() for r in page], "continuation": _token(page[-1]) if more else None}

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
