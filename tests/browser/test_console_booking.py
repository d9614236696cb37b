"""Booking and cancelling from the console, driven in Chromium against the real app: the local
host's reservations API and booking-changes worker, and the Graph emulator's calendars.

What is checked is what really happens: a refusal shown at its field, the booking listed with
origin platform and its sync status going from pending to synced, the meeting in the booker's
calendar and the room's, and a cancel that marks it cancelled and removes the meeting. The
requests the page sends are observed (not answered) to check their shape: times in the asset's
zone, Graph's patternedRecurrence, the cancel scope, the key in its header and never in the URL.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests
from playwright.sync_api import Page, Request, expect

from devtools.graph_emulator import seed
from tests.browser.conftest import FUNCTION_KEY
from tests.browser.console import WAIT_MS, assert_clean, subscribe_room
from tests.support.calendar_client import CalendarClient
from tests.support.polling import wait_for

ROOM = "Amsterdam Boardroom"
ROOM_EMAIL = "ams-boardroom@contoso-demo.example"
# The room's zone, set on its asset: what the page's times are typed in (the browser runs in UTC).
ZONE = "Europe/Amsterdam"
SYNC_WAIT_MS = 30_000
# Holding the booker's meeting creation this long keeps the reservation visibly pending.
HOLD_MS = 5_000


@dataclass
class SentRequests:
    """The API requests the page sent, as (method, path under /api/, query, JSON body, key header)."""

    seen: list[tuple[str, str, dict, dict | None, str | None]] = field(default_factory=list)

    def record(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if not parts.path.startswith("/api/") or parts.path == "/api/console" or request.resource_type != "fetch":
            return
        body = json.loads(request.post_data) if request.post_data else None
        self.seen.append((request.method, parts.path[len("/api/"):],
                          {k: v[0] for k, v in parse_qs(parts.query).items()}, body,
                          request.headers.get("x-functions-key")))

    def bodies(self, method: str, pattern: str) -> list[dict | None]:
        return [body for m, path, _, body, _ in self.seen if m == method and re.fullmatch(pattern, path)]

    def queries(self, method: str, pattern: str) -> list[dict]:
        return [query for m, path, query, _, _ in self.seen if m == method and re.fullmatch(pattern, path)]


@pytest.fixture
def sent(page: Page) -> SentRequests:
    recorder = SentRequests()
    page.on("request", recorder.record)
    return recorder


@pytest.fixture
def room(page: Page, host) -> dict:
    """The subscribed demo room as the app holds it, in Amsterdam's zone, with the reservations
    tab open on it."""
    subscribe_room(page, ROOM)
    integration_id = page.locator("#integration-picker").input_value()
    assets = requests.get(f"{host.base_url}/api/assets", params={"integration_id": integration_id},
                          headers={"x-functions-key": FUNCTION_KEY}, timeout=30).json()["value"]
    (asset,) = [a for a in assets if a["name"] == ROOM]
    if asset["time_zone"] != ZONE:  # a room linked from Graph's room list starts in UTC
        changed = requests.patch(f"{host.base_url}/api/assets/{asset['id']}", json={"time_zone": ZONE},
                                 headers={"x-functions-key": FUNCTION_KEY}, timeout=30)
        assert changed.status_code == 200, changed.text
        asset = changed.json()
        page.reload()  # the key stays in the tab's session; the assets are read again
    page.get_by_role("tab", name="Reservations").click()
    page.locator("#res-asset").select_option(asset["id"])
    page.locator("#book-asset").select_option(asset["id"])
    return asset


@pytest.fixture
def calendar(demo_tenant) -> CalendarClient:
    return CalendarClient(demo_tenant)


@pytest.fixture
def hold_meeting_creation(demo_emulator):
    """Delays the next event creation in the demo tenant (one request), so the pending state
    lasts long enough to be seen; the rule is removed afterwards whether it fired or not."""
    answer = requests.post(f"{demo_emulator.base_url}/_control/faults", verify=demo_emulator.ca_path, timeout=30,
                           json={"method": "POST", "path": r"/events$", "delay_ms": HOLD_MS, "count": 1,
                                 "tenant": seed.DEMO_TENANT_ID})
    assert answer.status_code == 201, answer.text
    yield
    requests.delete(f"{demo_emulator.base_url}/_control/faults/{answer.json()['id']}",
                    verify=demo_emulator.ca_path, timeout=30)


def organised(calendar: CalendarClient, person: str, subject: str) -> list[dict]:
    """The booker's own live meetings with this subject."""
    return [e for e in calendar.raw_events(person)
            if e.get("isOrganizer") and not e.get("isCancelled") and e.get("subject") == subject]


def room_copies(calendar: CalendarClient, ical_uids: set[str]) -> list[dict]:
    """The room's live copies of those meetings (its subject is the organizer's name, so by iCalUId)."""
    return [e for e in calendar.raw_events(ROOM_EMAIL) if not e.get("isCancelled") and e.get("iCalUId") in ical_uids]


def book(page: Page, booker: str, subject: str, day: date, start: str, end: str) -> None:
    page.get_by_label("Booker (email)").fill(booker)
    page.get_by_label("Subject").fill(subject)
    page.get_by_label("Date", exact=True).fill(day.isoformat())
    page.get_by_label("Start", exact=True).fill(start)
    page.get_by_label("End", exact=True).fill(end)


def utc_of(day: date, wall_clock: str, zone: str) -> str:
    moment = datetime.fromisoformat(f"{day.isoformat()}T{wall_clock}").replace(tzinfo=ZoneInfo(zone))
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:00.000Z")


def test_a_booking_made_on_the_page_reaches_both_calendars_and_its_cancel_removes_it(
        page, sent, room, calendar, demo_tenant, hold_meeting_creation):
    booker = demo_tenant.users[0].mail
    subject = f"Design review {uuid.uuid4().hex[:6]}"
    day = datetime.now(timezone.utc).date() + timedelta(days=3)
    book(page, booker, subject, day, "14:00", "13:00")
    page.get_by_role("button", name="Book", exact=True).click()
    expect(page.locator("#book-end-error")).to_contain_text("must be after start", timeout=WAIT_MS)
    expect(page.get_by_label("End", exact=True)).to_have_attribute("aria-invalid", "true")

    page.get_by_label("End", exact=True).fill("14:30")
    page.get_by_role("button", name="Book", exact=True).click()
    row = page.locator("#res-list tbody tr").filter(has_text=subject)
    expect(row).to_contain_text("platform", timeout=WAIT_MS)
    expect(row).to_contain_text("pending")  # the worker's meeting creation is held meanwhile
    expect(row).to_contain_text("synced", timeout=SYNC_WAIT_MS)
    expect(row).to_contain_text("confirmed")

    # The times typed are the asset's wall clock (Amsterdam), whatever the browser's zone (UTC here).
    assert sent.bodies("POST", "reservations")[-1] == {
        "asset_id": room["id"], "booker": booker, "subject": subject,
        "start": utc_of(day, "14:00", ZONE), "end": utc_of(day, "14:30", ZONE),
        "time_zone": ZONE, "private": False}
    (meeting,) = organised(calendar, booker, subject)
    assert meeting["start"]["dateTime"].startswith(utc_of(day, "14:00", ZONE)[:16])
    assert len(room_copies(calendar, {meeting["iCalUId"]})) == 1

    row.get_by_role("button", name=re.compile(f"^Cancel {subject}")).click()
    expect(row).to_contain_text("cancelled", timeout=WAIT_MS)
    expect(row).to_contain_text("synced", timeout=SYNC_WAIT_MS)
    wait_for(lambda: not organised(calendar, booker, subject) and not room_copies(calendar, {meeting["iCalUId"]}),
             timeout=SYNC_WAIT_MS / 1000, interval=0.2, what="the meeting removed from both calendars")
    (cancelled_id,) = {path.split("/")[1] for m, path, *_ in sent.seen if m == "DELETE"}
    assert sent.queries("DELETE", f"reservations/{cancelled_id}") == [{}]  # a single one has no scope
    assert {key for *_, key in sent.seen} == {FUNCTION_KEY}  # the key travels in its header
    assert all("code" not in query for _, _, query, _, _ in sent.seen)
    assert_clean(page)


def test_a_weekly_booking_sends_graph_s_recurrence_and_cancelling_the_series_removes_every_meeting(
        page, sent, room, calendar, demo_tenant):
    booker = demo_tenant.users[1].mail
    subject = f"Weekly sync {uuid.uuid4().hex[:6]}"
    day = datetime.now(timezone.utc).date() + timedelta(days=4)
    book(page, booker, subject, day, "16:00", "16:30")
    page.get_by_label("Repeat").select_option("weekly")
    page.get_by_label("Occurrences").fill("3")
    page.get_by_role("button", name="Book", exact=True).click()
    row = page.locator("#res-list tbody tr").filter(has_text=subject)
    expect(row).to_contain_text("platform", timeout=WAIT_MS)
    expect(row).to_contain_text("synced", timeout=SYNC_WAIT_MS)
    assert sent.bodies("POST", "reservations")[-1]["recurrence"] == {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [day.strftime("%A").lower()],
                    "firstDayOfWeek": "monday"},
        "range": {"type": "numbered", "startDate": day.isoformat(), "numberOfOccurrences": 3}}

    meetings = wait_for(lambda: (lambda found: found if len(found) == 3 else None)(
        organised(calendar, booker, subject)), timeout=SYNC_WAIT_MS / 1000, interval=0.2, what="three weekly meetings")
    assert sorted(m["start"]["dateTime"][:10] for m in meetings) == [
        (day + timedelta(weeks=n)).isoformat() for n in range(3)]
    uids = {m["iCalUId"] for m in meetings}
    wait_for(lambda: len(room_copies(calendar, uids)) == 3, timeout=SYNC_WAIT_MS / 1000, interval=0.2,
             what="the room's three copies")

    row.get_by_role("button", name=re.compile("^Cancel series")).click()
    expect(row).to_contain_text("cancelled", timeout=WAIT_MS)
    wait_for(lambda: not organised(calendar, booker, subject) and not room_copies(calendar, uids),
             timeout=SYNC_WAIT_MS / 1000, interval=0.2, what="every meeting of the series removed")
    (cancelled_id,) = {path.split("/")[1] for m, path, *_ in sent.seen if m == "DELETE"}
    assert sent.queries("DELETE", f"reservations/{cancelled_id}") == [{"scope": "series"}]
    page.get_by_label("Day").fill((day + timedelta(weeks=2)).isoformat())
    page.get_by_label("Day").dispatch_event("change")
    last = page.locator("#res-list tbody tr").filter(has_text=subject)
    expect(last).to_contain_text("cancelled", timeout=WAIT_MS)
    assert_clean(page)
