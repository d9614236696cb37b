"""Booking and cancelling from the console, driven in Chromium.

POST and DELETE /api/reservations are not registered in this app yet, so tests/browser/
contract_api.py answers /api/reservations in memory, following the contract the console is built
for; the page, the key, integrations, people and the subscribed asset are the real app. What is
checked is the page: the requests it sends (times in the asset's zone, Graph's recurrence, the
cancel scope, the key in its header) and what it shows from the answers (a refusal at its field,
the booking in the list, its cancellation).
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.browser.conftest import FUNCTION_KEY
from tests.browser.console import WAIT_MS, assert_clean, subscribe_room
from tests.browser.contract_api import CONTRACT_PATHS, ContractApi

ROOM = "Amsterdam Boardroom"


@pytest.fixture
def contract(page: Page, host) -> ContractApi:
    subscribe_room(page, ROOM)
    integration_id = page.locator("#integration-picker").input_value()
    assets = requests.get(f"{host.base_url}/api/assets", params={"integration_id": integration_id},
                          headers={"x-functions-key": FUNCTION_KEY}, timeout=30).json()["value"]
    api = ContractApi(assets={asset["id"]: asset for asset in assets})
    page.route(lambda url: bool(CONTRACT_PATHS.match(urlsplit(url).path)), api.handle)
    page.get_by_role("tab", name="Reservations").click()
    asset_id = next(a["id"] for a in assets if a["name"] == ROOM)
    page.get_by_label("Asset", exact=True).first.select_option(asset_id)
    return api


def asset_named(contract: ContractApi, name: str) -> dict:
    (asset,) = [a for a in contract.assets.values() if a["name"] == name]
    return asset


def test_booking_and_cancelling_send_the_contract_s_requests(page, contract):
    asset = asset_named(contract, ROOM)
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
    # The times typed are the asset's wall clock (Amsterdam), whatever the browser's zone (UTC here).
    zone = ZoneInfo(asset["time_zone"])
    start, end = (datetime.fromisoformat(f"{today}T{t}").replace(tzinfo=zone).astimezone(timezone.utc)
                  .strftime("%Y-%m-%dT%H:%M:00.000Z") for t in ("11:00", "11:30"))
    assert contract.requests_to("POST", "reservations")[-1] == {
        "asset_id": asset["id"], "booker": "maya.patel@contoso-demo.example", "subject": "Design review",
        "start": start, "end": end, "time_zone": asset["time_zone"], "private": False}

    row.get_by_role("button", name=re.compile("^Cancel Design review")).click()
    expect(row).to_contain_text("cancelled", timeout=WAIT_MS)
    (reservation,) = [r for r in contract.reservations.values() if r["subject"] == "Design review"]
    assert contract.params_of("DELETE", f"reservations/{reservation['id']}") == [{}]  # a single one has no scope
    assert {key for *_, key in contract.received} == {FUNCTION_KEY}  # the key travels in its header
    assert all("code" not in params for _, _, _, params, _ in contract.received)
    assert_clean(page)


def test_a_weekly_booking_sends_graph_s_recurrence_and_cancels_the_series(page, contract):
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
    assert_clean(page)
