"""The room sync in the console, end to end through the real app: a demo room linked from the
tenant's room list and subscribed (its state changes on the page), a meeting made in Outlook (the
emulator's control API, acting as a demo person) appearing in the reservations list without a
reload, the sync log saying why, an import whose dry run is shown before it is applied, and a dead
letter opened, retried and discarded."""
from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from azure.storage.queue import QueueServiceClient
from playwright.sync_api import Page, expect

from sync.store.connection import queue_client
from tests.browser.console import WAIT_MS, assert_clean, axe_violations, subscribe_room
from tests.support.calendar_client import CalendarClient

ROOM = "Amsterdam Boardroom"
ROOM_EMAIL = "ams-boardroom@contoso-demo.example"


@pytest.fixture
def room(page: Page) -> str:
    subscribe_room(page, ROOM)
    return ROOM


def utc(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_subscribing_a_room_changes_its_state_on_the_page(page, room, artifacts, axe_source):
    row = page.locator("#assets-list tbody tr").filter(has_text=room)
    expect(row).to_contain_text(ROOM_EMAIL)
    expect(row).to_contain_text(re.compile(r"in \d+ (d|h|min)"))  # the expiry countdown
    expect(row).to_contain_text("subscribed to Graph")
    page.screenshot(path=str(artifacts / "assets-subscribed-desktop.png"), full_page=True)
    assert axe_violations(page, axe_source) == []

    row.get_by_role("button", name=f"Unsubscribe {room}", exact=True).click()
    expect(row).to_contain_text("unsubscribed", timeout=WAIT_MS)
    row.get_by_role("button", name=f"Subscribe {room}", exact=True).click()
    expect(row).to_contain_text("subscribed to Graph", timeout=WAIT_MS)
    assert_clean(page)


def test_a_meeting_made_in_outlook_appears_without_a_reload_and_the_log_says_why(page, room, demo_tenant,
                                                                                 artifacts, axe_source):
    page.get_by_role("tab", name="Reservations").click()
    page.get_by_label("View").select_option("asset")
    expect(page.locator("#res-list > *").first).to_be_visible(timeout=WAIT_MS)
    navigations = page.evaluate("performance.getEntriesByType('navigation').length")
    subject = f"Quarterly planning {uuid.uuid4().hex[:6]}"
    start = (datetime.now(timezone.utc) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    person = demo_tenant.users[0]
    made = CalendarClient(demo_tenant).control_call("POST", person.user_principal_name, "meetings", body={
        "subject": subject, "start": utc(start), "end": utc(start + timedelta(minutes=45)), "rooms": [ROOM_EMAIL]})
    assert made.status_code == 201, made.text

    row = page.locator("#res-list tbody tr").filter(has_text=subject)
    expect(row).to_be_visible(timeout=WAIT_MS)
    expect(row).to_contain_text("Outlook")
    expect(row).to_contain_text(room)
    expect(row).to_contain_text(person.display_name)
    assert page.evaluate("performance.getEntriesByType('navigation').length") == navigations
    page.screenshot(path=str(artifacts / "reservations-outlook-desktop.png"), full_page=True)
    assert axe_violations(page, axe_source) == []

    page.get_by_role("tab", name="Sync log").click()
    expect(page.locator("#log-list tbody tr").first).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#log-list")).to_contain_text(room)
    page.screenshot(path=str(artifacts / "synclog-entries-desktop.png"), full_page=True)
    assert axe_violations(page, axe_source) == []
    assert_clean(page)


def test_an_import_shows_its_dry_run_before_it_is_applied(page, room):
    row = page.locator("#assets-list tbody tr").filter(has_text=room)
    row.get_by_role("button", name=f"Import existing bookings of {room}").click()
    expect(page.get_by_label("From")).to_be_focused()
    page.get_by_role("button", name="Preview (dry run)").click()
    report = page.locator("#import-report")
    expect(report).to_contain_text("Dry run: nothing was changed yet", timeout=WAIT_MS)
    expect(report).to_contain_text(re.compile(r"Would create: \d+"))
    expect(report).to_contain_text(re.compile(r"Already linked: \d+"))
    apply = page.get_by_role("button", name="Apply import")
    expect(apply).to_be_visible()
    apply.click()
    expect(report).to_contain_text("Import applied", timeout=WAIT_MS)
    expect(apply).to_be_hidden()
    assert_clean(page)


def test_a_dead_letter_opens_and_is_retried_or_discarded(page, room, storage, artifacts, axe_source):
    integration_id = page.locator("#integration-picker").input_value()
    poison = queue_client(QueueServiceClient.from_connection_string(storage), "calendar-resync-poison")
    try:
        poison.create_queue()
    except Exception:  # noqa: BLE001 -- it exists already
        pass
    marker = uuid.uuid4().hex[:8]
    for reason in ("retry", "discard"):
        poison.send_message(json.dumps({"integration_id": integration_id, "asset_id": f"gone-{marker}-{reason}",
                                        "reason": reason}))
    page.get_by_role("tab", name="Sync log").click()
    letters = page.locator("#dead-list tbody tr").filter(has_text=marker)
    expect(letters).to_have_count(2, timeout=30_000)  # the section refreshes itself every 10 s
    first = letters.filter(has_text=f"gone-{marker}-retry")
    first.locator("summary").click()
    expect(first.locator("pre")).to_contain_text(f"gone-{marker}-retry")
    expect(first).to_contain_text("calendar-resync")
    page.screenshot(path=str(artifacts / "deadletters-desktop.png"), full_page=True)
    assert axe_violations(page, axe_source) == []

    first.get_by_role("button", name=re.compile("^Retry dead letter")).click()
    expect(page.locator("#notice")).to_contain_text("Put back on its queue", timeout=WAIT_MS)
    expect(first).to_have_count(0, timeout=WAIT_MS)
    second = letters.filter(has_text=f"gone-{marker}-discard")
    discard = second.get_by_role("button", name=re.compile("^Discard dead letter"))
    discard.click()
    expect(discard).to_have_text("Confirm discard")
    discard.click()
    expect(page.locator("#notice")).to_contain_text("Dead letter discarded", timeout=WAIT_MS)
    expect(second).to_have_count(0, timeout=WAIT_MS)
    assert_clean(page)
