"""Calendar requests against the Graph emulator for tests: Graph calls with a real token, the
mailbox control API (acting as Outlook users), and builders for event bodies."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import requests

from tests.support.emulator_fixture import EmulatorTenant


def q(value: str) -> str:
    """Percent-encodes an id for a path segment (Outlook ids contain `/`, `+` and `=`)."""
    return quote(value, safe="")


def at(day: datetime, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day.date(), time(hour, minute), tzinfo=timezone.utc)


def graph_time(moment: datetime, zone: str = "UTC") -> dict:
    """A dateTimeTimeZone for an aware instant, written as UTC wall time unless told otherwise."""
    return {"dateTime": moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": zone}


def event_body(subject: str, start: datetime, minutes: int = 60, rooms: tuple[str, ...] = (),
               attendees: tuple[str, ...] = (), **extra: Any) -> dict:
    body = {"subject": subject, "start": graph_time(start), "end": graph_time(start + timedelta(minutes=minutes))}
    invited = [{"type": "required", "emailAddress": {"address": a}} for a in attendees]
    invited += [{"type": "resource", "emailAddress": {"address": r}} for r in rooms]
    if invited:
        body["attendees"] = invited
    body.update(extra)
    return body


class CalendarClient:
    """Graph calendar calls for one tenant's app, plus its mailbox control routes."""

    def __init__(self, tenant: EmulatorTenant) -> None:
        self.tenant = tenant
        self.http = tenant.session()

    @property
    def now(self) -> datetime:
        return self.tenant.world.clock.now()

    def day(self, days_ahead: int) -> datetime:
        return self.now + timedelta(days=days_ahead)

    def url(self, user: str, *parts: str) -> str:
        return "/".join([self.tenant.api_base, "users", q(user), *parts])

    def item(self, user: str, event_id: str, *more: str) -> str:
        return self.url(user, "events", q(event_id), *more)

    # Graph
    def create(self, user: str, body: dict, headers: dict | None = None) -> requests.Response:
        return self.http.post(self.url(user, "events"), json=body, headers=headers or {})

    def created(self, user: str, body: dict) -> dict:
        response = self.create(user, body)
        assert response.status_code == 201, response.text
        return response.json()

    def get(self, user: str, event_id: str, **params: str) -> requests.Response:
        return self.http.get(self.item(user, event_id), params=params)

    def fetch(self, user: str, event_id: str) -> dict:
        response = self.get(user, event_id)
        assert response.status_code == 200, response.text
        return response.json()

    def patch(self, user: str, event_id: str, body: dict, headers: dict | None = None) -> requests.Response:
        return self.http.patch(self.item(user, event_id), json=body, headers=headers or {})

    def delete(self, user: str, event_id: str) -> requests.Response:
        return self.http.delete(self.item(user, event_id))

    def action(self, user: str, event_id: str, name: str, body: dict | None = None) -> requests.Response:
        return self.http.post(self.item(user, event_id, name), json=body or {})

    def list(self, user: str, **params: str) -> dict:
        response = self.http.get(self.url(user, "events"), params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def view(self, user: str, start: datetime, end: datetime, path: str = "calendarView", **params: str) -> list[dict]:
        """Every page of a calendarView (or instances) window."""
        response = self.http.get(self.url(user, *path.split("/")), params={
            "startDateTime": start.isoformat(), "endDateTime": end.isoformat(), "$top": "50", **params})
        assert response.status_code == 200, response.text
        page = response.json()
        items = page["value"]
        while "@odata.nextLink" in page:
            page = self.http.get(page["@odata.nextLink"]).json()
            items += page["value"]
        return items

    # control API (acting as Outlook users)
    def mailbox_control(self, user: str, *parts: str) -> str:
        return "/".join([self.tenant.base_url, "_control", "tenants", self.tenant.tenant_id, "mailboxes", q(user), *parts])

    def control_call(self, method: str, user: str, *parts: str, body: dict | None = None) -> requests.Response:
        # The control API takes no token.
        return requests.request(method, self.mailbox_control(user, *parts), json=body,
                                verify=self.tenant.ca_path, timeout=30)

    def room_settings(self, room_email: str, **settings: Any) -> None:
        """Set-CalendarProcessing for a room (PascalCase names, as in Exchange)."""
        url = "/".join([self.tenant.base_url, "_control", "tenants", self.tenant.tenant_id, "rooms",
                        q(room_email), "settings"])
        response = requests.patch(url, json=settings, verify=self.tenant.ca_path, timeout=30)
        assert response.status_code == 200, response.text

    def raw_events(self, user: str) -> list[dict]:
        response = self.control_call("GET", user, "events")
        assert response.status_code == 200, response.text
        return response.json()["value"]
