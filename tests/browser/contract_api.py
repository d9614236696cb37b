"""The room sync's REST contract (assets, rooms, subscriptions, import, reservations, sync log,
dead letters) answered in memory, for the console's browser tests while those routes are not
registered in this app yet. Playwright routes only these paths here; the page, its files and
the integrations and people API come from the real local host.

It follows the contract the console is built against (functions/api_spec/room_sync.py), keeps
every request it received for the tests to check, and lets a test act as Outlook (a meeting
that arrives on its own) or as the workers (a dead letter). Replace it with the real routes as
they land: the tests using it then run against the app unchanged.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

CONTRACT_PATHS = re.compile(r"^/api/(assets|reservations|synclog|deadletters|integrations/[^/]+/rooms)(/|$)")


def now_iso(offset: timedelta = timedelta(0)) -> str:
    return (datetime.now(timezone.utc) + offset).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class ContractApi:
    rooms: list[dict]
    assets: dict[str, dict] = field(default_factory=dict)
    reservations: dict[str, dict] = field(default_factory=dict)
    synclog: list[dict] = field(default_factory=list)
    deadletters: dict[str, dict] = field(default_factory=dict)
    # (method, path, JSON body, query parameters, the x-functions-key header) of every request
    received: list[tuple[str, str, dict | None, dict, str | None]] = field(default_factory=list)

    # -- what a test does as Outlook or as the workers -------------------------------------------

    def meeting_from_outlook(self, asset_id: str, subject: str, start: datetime, minutes: int = 30) -> dict:
        return self._reservation(asset_id, subject, start, start + timedelta(minutes=minutes), "outlook",
                                 {"email": "organizer@contoso-demo.example", "user_id": None, "name": "Outlook Organizer"},
                                 sync_status="synced")

    def dead_letter(self, queue: str, error: str, message: dict) -> dict:
        letter = {"id": uuid.uuid4().hex, "queue": queue, "error": error, "message": message, "at": now_iso()}
        self.deadletters[letter["id"]] = letter
        return letter

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
        if segments[0] == "integrations" and segments[2:] == ["rooms"] and method == "GET":
            return 200, {"value": self.rooms}
        if segments[0] == "assets":
            return self._assets(method, segments[1:], params, body or {})
        if segments[0] == "reservations":
            return self._reservations(method, segments[1:], params, body or {})
        if path == "synclog" and method == "GET":
            return 200, {"value": [e for e in self.synclog if not params.get("asset_id") or e["asset_id"] == params["asset_id"]]}
        if segments[0] == "deadletters":
            if method == "GET" and len(segments) == 1:
                return 200, {"value": list(self.deadletters.values())}
            letter = self.deadletters.pop(segments[1], None)
            if letter is None:
                return 404, error("not_found", "no such dead letter")
            return (202, None) if segments[2:] == ["retry"] else (204, None)
        return 404, error("not_found", "no such route in the contract")

    def _assets(self, method, rest, params, body):
        if not rest and method == "GET":
            return 200, {"value": [a for a in self.assets.values() if a["integration_id"] == params.get("integration_id")]}
        if not rest and method == "POST":
            if "room" in body:
                room = next((r for r in self.rooms if r["email"] == body["room"]), None)
                if room is None:
                    return 422, error("invalid_field", "room: not a room of this tenant", "room")
                name, mailbox, capacity, zone = room["display_name"], room["email"], room["capacity"], room["time_zone"]
            else:
                if "@" not in body.get("mailbox", ""):
                    return 422, error("invalid_field", "mailbox: must be a room mailbox's email address", "mailbox")
                name, mailbox, capacity, zone = body["name"], body["mailbox"], body.get("capacity"), "UTC"
            asset = {"id": uuid.uuid4().hex, "integration_id": body["integration_id"], "name": name, "category": "room",
                     "mailbox": mailbox, "time_zone": zone, "capacity": capacity,
                     "subscription": {"state": "unsubscribed", "expires_at": None, "subscribed_at": None,
                                      "last_notification_at": None, "last_error": None},
                     "created_at": now_iso(), "updated_at": now_iso()}
            self.assets[asset["id"]] = asset
            return 201, asset
        asset = self.assets.get(rest[0])
        if asset is None:
            return 404, error("not_found", "no such asset")
        if rest[1:] == ["subscription"] and method == "POST":
            asset["subscription"].update(state="subscribed", subscribed_at=now_iso(),
                                         expires_at=now_iso(timedelta(days=3)), last_error=None)
            return 200, asset["subscription"]
        if rest[1:] == ["subscription"] and method == "DELETE":
            asset["subscription"].update(state="unsubscribed", expires_at=None)
            return 204, None
        if rest[1:] == ["resync"] and method == "POST":
            return 202, None
        if rest[1:] == ["import"] and method == "POST":
            report = {"created": [{"subject": "Board meeting", "start": now_iso(timedelta(days=2))},
                                  {"subject": "Team lunch", "start": now_iso(timedelta(days=3))}],
                      "linked": [], "conflicts": [{"subject": "Double booked", "start": now_iso(timedelta(days=4)),
                                                   "reason": "overlaps an existing reservation"}]}
            return 200, report
        if not rest[1:] and method == "GET":
            return 200, asset
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
        self.synclog.insert(0, {"at": now_iso(), "integration_id": reservation["integration_id"], "asset_id": asset_id,
                                "reservation_id": reservation["id"], "input": {"origin": origin},
                                "decision": "create", "reason": f"new {origin} booking", "graph_calls": 1,
                                "outcome": "applied"})
        return reservation


def error(code: str, message: str, field: str | None = None) -> dict:
    body = {"code": code, "message": message}
    if field:
        body["field"] = field
    return {"error": body}
