"""The console's assets, reservations, sync log and dead-letter sections, driven in Chromium.

Those routes are not registered in this app yet, so tests/browser/contract_api.py answers them in
memory, following the contract the console is built for; everything else (the page, the key,
integrations, people) is the real local host. What is checked is the page: the requests it
sends, and what it shows from the answers: a subscribed asset changes state, a meeting made in
Outlook appears in the list without a reload, booking (single and recurring) and cancelling
send the contract's requests, a refusal lands at its field, an import shows its dry run before
anything is applied, and a dead letter opens and can be retried or discarded.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from tests.browser.contract_api import CONTRACT_PATHS, ContractApi
from tests.browser.conftest import FUNCTION_KEY
from tests.browser.test_console import WAIT_MS, assert_clean, axe_violations, ensure_demo_connected

ROOMS = [{"email": "ams-boardroom@contoso-demo.example", "display_name": "Amsterdam Boardroom", "capacity": 12,
          "time_zone": "Europe/Amsterdam"},
         {"email": "nyc-huddle@contoso-demo.example", "display_name": "New York Huddle", "capacity": 4,
          "time_zone": "America/New_York"}]


@pytest.fixture
def contract(page: Page) -> ContractApi:
    api = ContractApi(rooms=[dict(room) for room in ROOMS])
    page.route(lambda url: bool(CONTRACT_PATHS.match(urlsplit(url).path)), api.handle)
    return api


@pytest.fixture
def subscribed_asset(page: Page, contract: ContractApi) -> dict:
    """The Amsterdam boardroom added from the room list and subscribed, through the page."""
    ensure_demo_connected(page)
    page.get_by_role("tab", name="Assets").click()
    expect(page.locator("#assets-list")).to_contain_text("No assets yet", timeout=WAIT_MS)
    page.get_by_role("button", name="Load room list").click()
    page.get_by_role("button", name="Add Amsterdam Boardroom as an asset").click()
    row = page.locator("#assets-list tbody tr").filter(has_text="Amsterdam Boardroom")
    expect(row).to_contain_text("unsubscribed", timeout=WAIT_MS)
    expect(page.locator("#rooms-list")).to_contain_text("added")
    row.get_by_role("button", name="Subscribe Amsterdam Boardroom").click()
    expect(row).to_contain_text("subscribed to Graph", timeout=WAIT_MS)
    (asset,) = contract.assets.values()
    return asset


def test_an_asset_is_added_from_the_room_list_and_subscribed(page, contract, subscribed_asset, artifacts, axe_source):
    integration_id = page.locator("#integration-picker").input_value()
    assert contract.requests_to("POST", "assets") == [{"integration_id": integration_id, "room": ROOMS[0]["email"]}]
    assert contract.requests_to("POST", rf"assets/{subscribed_asset['id']}/subscription") == [None]
    row = page.locator("#assets-list tbody tr").first
    expect(row).to_contain_text(re.compile(r"in 2 d 23 h|in 3 d 0 h"))  # the expiry countdown
    expect(row.get_by_role("button", name="Unsubscribe Amsterdam Boardroom")).to_be_visible()
    page.screenshot(path=str(artifacts / "assets-with-data-desktop.png"), full_page=True)
    assert axe_violations(page, axe_source) == []

    row.get_by_role("button", name="Unsubscribe Amsterdam Boardroom").click()
    expect(row).to_contain_text("unsubscribed", timeout=WAIT_MS)
    assert_clean(page)


def test_a_field_the_api_refuses_is_marked_in_the_asset_form(page, contract, subscribed_asset):
    page.get_by_label("Name", exact=True).fill("Desk 7")
    page.get_by_label("Room mailbox").fill("desk-7")
    page.get_by_role("button", name="Add asset").click()
    expect(page.locator("#asset-mailbox-error")).to_contain_text("room mailbox", timeout=WAIT_MS)
    expect(page.get_by_label("Room mailbox")).to_have_attribute("aria-invalid", "true")


def test_an_import_shows_its_dry_run_before_anything_is_applied(page, contract, subscribed_asset):
    page.get_by_role("button", name="Import existing bookings of Amsterdam Boardroom").click()
    page.get_by_role("button", name="Preview (dry run)").click()
    report = page.locator("#import-report")
    expect(report).to_contain_text("Dry run: nothing was changed yet", timeout=WAIT_MS)
    expect(report).to_contain_text("Would create: 2")
    expect(report).to_contain_text("Conflicts: 1")
    imports = rf"assets/{subscribed_asset['id']}/import"
    assert [body["dry_run"] for body in contract.requests_to("POST", imports)] == [True]

    page.get_by_role("button", name="Apply import").click()
    expect(report).to_contain_text("Import applied", timeout=WAIT_MS)
    sent = contract.requests_to("POST", imports)
    assert [body["dry_run"] for body in sent] == [True, False] and sent[0]["from"] == sent[1]["from"]


def test_a_meeting_made_in_outlook_appears_without_a_reload(page, contract, subscribed_asset, artifacts):
    page.get_by_role("tab", name="Reservations").click()
    expect(page.locator("#res-list")).to_contain_text("No reservations in this view", timeout=WAIT_MS)
    loads = page.evaluate("performance.getEntriesByType('navigation').length")

    start = datetime.now(timezone.utc).replace(hour=15, minute=0, second=0, microsecond=0)
    contract.meeting_from_outlook(subscribed_asset["id"], "Quarterly planning", start)

    row = page.locator("#res-list tbody tr").filter(has_text="Quarterly planning")
    expect(row).to_be_visible(timeout=WAIT_MS)
    expect(row).to_contain_text("Outlook")
    expect(row).to_contain_text("Amsterdam Boardroom")
    assert page.evaluate("performance.getEntriesByType('navigation').length") == loads
    page.screenshot(path=str(artifacts / "reservations-with-data-desktop.png"), full_page=True)


def test_booking_and_cancelling_from_the_page_send_the_contract_s_requests(page, contract, subscribed_asset):
    # The booking's times are the asset's wall clock (Amsterdam), whatever the browser's zone.
    page.get_by_role("tab", name="Reservations").click()
    today = datetime.now(timezone.utc).date().isoformat()
    page.get_by_label("Booker (email)").fill("maya.patel@contoso-demo.example")
    page.get_by_label("Subject").fill("Design review")
    page.get_by_label("Date", exact=True).fill(today)
    page.get_by_label("Start", exact=True).fill("11:00")
    page.get_by_label("End", exact=True).fill("10:00")
    page.get_by_role("button", name="Book", exact=True).click()
    expect(page.locator("#book-end-error")).to_contain_text("end: must be after start", timeout=WAIT_MS)
    expect(page.get_by_label("End", exact=True)).to_have_attribute("aria-invalid", "true")

    page.get_by_label("End", exact=True).fill("11:30")
    page.get_by_role("button", name="Book", exact=True).click()
    row = page.locator("#res-list tbody tr").filter(has_text="Design review")
    expect(row).to_contain_text("platform", timeout=WAIT_MS)
    expect(row).to_contain_text("pending")
    booked = contract.requests_to("POST", "reservations")[-1]
    amsterdam = ZoneInfo("Europe/Amsterdam")
    start, end = (datetime.fromisoformat(f"{today}T{t}").replace(tzinfo=amsterdam).astimezone(timezone.utc)
                  .strftime("%Y-%m-%dT%H:%M:00.000Z") for t in ("11:00", "11:30"))
    assert booked == {"asset_id": subscribed_asset["id"], "booker": "maya.patel@contoso-demo.example",
                      "subject": "Design review", "start": start, "end": end,
                      "time_zone": "Europe/Amsterdam", "private": False}

    row.get_by_role("button", name=re.compile("^Cancel Design review")).click()
    expect(row).to_contain_text("cancelled", timeout=WAIT_MS)
    (reservation,) = [r for r in contract.reservations.values() if r["subject"] == "Design review"]
    assert contract.params_of("DELETE", f"reservations/{reservation['id']}") == [{}]  # a single one has no scope
    assert_clean(page)


def test_a_weekly_booking_sends_graph_s_recurrence_and_offers_both_cancel_scopes(page, contract, subscribed_asset):
    page.get_by_role("tab", name="Reservations").click()
    day = datetime.now(timezone.utc).date()
    page.get_by_label("Booker (email)").fill("tom.schmidt@contoso-demo.example")
    page.get_by_label("Subject").fill("Weekly sync")
    page.get_by_label("Date", exact=True).fill(day.isoformat())
    page.get_by_label("Repeat").select_option("weekly")
    page.get_by_label("Occurrences").fill("3")
    page.get_by_role("button", name="Book", exact=True).click()
    row = page.locator("#res-list tbody tr").filter(has_text="Weekly sync")
    expect(row).to_be_visible(timeout=WAIT_MS)
    sent = contract.requests_to("POST", "reservations")[-1]
    assert sent["recurrence"] == {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [day.strftime("%A").lower()],
                                              "firstDayOfWeek": "monday"},
                                  "range": {"type": "numbered", "startDate": day.isoformat(), "numberOfOccurrences": 3}}
    row.get_by_role("button", name=re.compile("^Cancel series")).click()
    expect(row).to_contain_text("cancelled", timeout=WAIT_MS)
    series = [r for r in contract.reservations.values() if r["subject"] == "Weekly sync"]
    assert len(series) == 3 and {r["status"] for r in series} == {"cancelled"}
    first = min(series, key=lambda r: r["start"])
    assert contract.params_of("DELETE", f"reservations/{first['id']}") == [{"scope": "series"}]


def test_the_sync_log_explains_and_a_dead_letter_opens_retries_and_is_discarded(page, contract, subscribed_asset,
                                                                                 artifacts, axe_source):
    start = datetime.now(timezone.utc) + timedelta(hours=2)
    meeting = contract.meeting_from_outlook(subscribed_asset["id"], "Client visit", start)
    retried = contract.dead_letter("graph-notifications-poison", "Graph answered 503 five times",
                                   {"subscription_id": "sub-1", "resource": "Users/room/Events/AAMk1"})
    discarded = contract.dead_letter("booking-changes-poison", "the organizer's mailbox is not licensed",
                                     {"reservation_id": "r-42", "intent": "create"})
    page.get_by_role("tab", name="Sync log").click()
    log_row = page.locator("#log-list tbody tr").filter(has_text=meeting["id"])
    expect(log_row).to_contain_text("create", timeout=WAIT_MS)
    expect(log_row).to_contain_text("new outlook booking")

    dead = page.locator("#dead-list tbody tr")
    expect(dead).to_have_count(2, timeout=WAIT_MS)
    first = dead.filter(has_text="graph-notifications-poison")
    first.locator("summary").click()
    expect(first.locator("pre")).to_contain_text('"resource": "Users/room/Events/AAMk1"')
    page.screenshot(path=str(artifacts / "synclog-with-data-desktop.png"), full_page=True)
    assert axe_violations(page, axe_source) == []

    first.get_by_role("button", name=f"Retry dead letter {retried['id']}").click()
    expect(dead).to_have_count(1, timeout=WAIT_MS)
    discard = page.get_by_role("button", name=f"Discard dead letter {discarded['id']}")
    discard.click()
    expect(discard).to_have_text("Confirm discard")
    assert contract.deadletters.keys() == {discarded["id"]}  # one press only asks
    discard.click()
    expect(page.locator("#dead-list")).to_contain_text("No dead letters", timeout=WAIT_MS)
    assert contract.requests_to("POST", f"deadletters/{retried['id']}/retry") == [None]
    assert contract.requests_to("DELETE", f"deadletters/{discarded['id']}") == [None]
    # Every call carried the key in its header, never in the URL.
    assert {key for *_, key in contract.received} == {FUNCTION_KEY}
    assert all("code" not in params for _, _, _, params, _ in contract.received)
    assert_clean(page)
