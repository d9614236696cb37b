"""Booking through the platform (POST /api/reservations, DELETE /api/reservations/{id}) answered
in memory, for the console's browser tests while those routes are not registered in this app yet.
Playwright routes only /api/reservations here (its reads too, so what was booked is listed);
everything else comes from the real local host.

It follows the contract the console is built against (functions/api_spec/bookings.py) and keeps
every request it received for the tests to check. Remove it when the routes land: the tests using
it then run against the app unchanged.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

CONTRACT_PATHS = re.compile(r"^/api/reservations(/|$)")


def now_iso(offset: timedelta = timedelta(0)) -> str:
    return (datetime.now(timezone.utc) + offset).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class ContractApi:
    assets: dict[str, dict]  # the real assets (from the app), by id
    reservations: dict[str, dict] = field(default_factory=dict)
    # (method, path, JSON body, query parameters, the x-functions-key header) of every request
    received: list[tuple[str, str, dict | None, dict, str | None]] = field(default_factory=list)

    # -- what the tests read back ----------------------------------------------------------------

    def requests_to(self, method: str, pattern: str) -> list[dict | None]:
        """The bodies of the requests with this method to paths matching the pattern."""
        return [body for m, path, body, _, _ in self.received if m == method and re.fullmatch(pattern, path)]

    def params_of(self, method: str, pattern: str) -> list[dict]:
        return [params for m, path, _, params, _ in self.received if m == method and re.fullmatch(pattern, path)]

    # -- the contract ------------------------------------------------------------------------------

    def handle(self, route) -> None:
        request = route.request
        parts = urlsplit(request.url)
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        body = json.loads(request.post_data) if request.post_data else None
        path = parts.path[len("/api/"):]
        self.received.append((request.method, path, body, params, request.headers.get("x-functions-key")))
        status, answer = self.answer(request.method, path, params, body)
        route.fulfill(status=status, content_type="application/json",
                      body="" if answer is None else json.dumps(answer))

    def answer(self, method: str, path: str, params: dict, body: dict | None):
        segments = path.split("/")
        if segments[0] == "reservations":
            return self._reservations(method, segments[1:], params, body or {})
        return 404, error("not_found", "no such route in the contract")

    def _reservations(self, method, rest, params, body):
        if not rest and method == "GET":
            found = [r for r in self.reservations.values()
                     if (not params.get("asset_id") or r["asset_id"] == params["asset_id"])
                     and (not params.get("day") or r["start"][:10] == params["day"])
                     and (not params.get("user") or r["organizer"]["email"] == params["user"])]
            return 200, {"value": sorted(found, key=lambda r: r["start"]), "continuation": None}
        if not rest and method == "POST":
            for name in ("asset_id", "booker", "start", "end", "subject"):
                if not body.get(name):
                    return 400, error("missing_field", f"{name}: required", name)
            start, end = parse_time(body["start"]), parse_time(body["end"])
            if end <= start:
                return 422, error("invalid_field", "end: must be after start", "end")
            if body["asset_id"] not in self.assets:
                return 404, error("not_found", "asset_id: no such asset", "asset_id")
            organizer = {"email": body["booker"], "user_id": None, "name": body["booker"]}
            recurrence = body.get("recurrence")
            if not recurrence:
                return 201, self._reservation(body["asset_id"], body["subject"], start, end, "platform", organizer)
            step = timedelta(days=7 if recurrence["pattern"]["type"] == "weekly" else 1)
            series = uuid.uuid4().hex
            made = [self._reservation(body["asset_id"], body["subject"], start + n * step, end + n * step, "platform",
                                      organizer, series_id=series)
                    for n in range(recurrence["range"]["numberOfOccurrences"])]
            return 201, made[0]
        reservation = self.reservations.get(rest[0])
        if reservation is None:
            return 404, error("not_found", "no such reservation")
        if method == "DELETE":
            targets = [reservation]
            if params.get("scope") == "series" and reservation["series_id"]:
                targets = [r for r in self.reservations.values() if r["series_id"] == reservation["series_id"]]
            for target in targets:
                target.update(status="cancelled", sync_status="pending", updated_at=now_iso())
            return 200, reservation
        return 200, reservation

    def _reservation(self, asset_id, subject, start, end, origin, organizer, sync_status="pending", series_id=None):
        reservation = {"id": uuid.uuid4().hex, "integration_id": self.assets[asset_id]["integration_id"],
                       "asset_id": asset_id, "start": start.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
                       "end": end.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
                       "time_zone": "UTC", "subject": subject, "organizer": organizer, "origin": origin,
                       "status": "confirmed", "sync_status": sync_status, "sync_reason": None, "series_id": series_id,
                       "occurrence_start": None, "private": False, "created_at": now_iso(), "updated_at": now_iso()}
        self.reservations[reservation["id"]] = reservation
        return reservation


def error(code: str, message: str, field: str | None = None) -> dict:
    body = {"code": code, "message": message}
    if field:
        body["field"] = field
    return {"error": body}
