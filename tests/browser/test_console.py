"""The admin console in Chromium: asking for the key, connecting the demo tenant through the
form (a wrong secret refused at its field first), the people it synced, every section at desktop
and phone widths with a screenshot each, axe-core finding no serious or critical violation, the
keyboard reaching everything, and the page working under its own Content-Security-Policy."""
from __future__ import annotations

import json
import re

import pytest
import requests
from playwright.sync_api import Page, expect

from devtools.graph_emulator import seed
from functions.admin_page import CONTENT_SECURITY_POLICY
from tests.browser.console import (
    WAIT_MS, assert_clean, axe_violations, connect_form, ensure_demo_connected, open_console,
)
from tests.browser.conftest import FUNCTION_KEY

# Each section, with what shows that it finished loading (a list, or the note that its API is absent).
SECTIONS = {"integrations": "#integrations-list article", "people": "#people-list table",
            "assets": "#assets-list > *", "reservations": "#res-list > *", "synclog": "#dead-list > *",
            "status": "#status-queues table"}
WIDTHS = {"desktop": 1280, "phone": 390}


# --- the key ------------------------------------------------------------------------------------

def test_the_key_is_asked_once_kept_for_the_session_only_and_a_wrong_one_is_refused(page):
    open_console(page, key="not-the-key", accepted=False)
    expect(page.locator("#key-error")).to_have_text(re.compile("refused"), timeout=WAIT_MS)
    expect(page.get_by_label("Function key", exact=True)).to_have_attribute("aria-invalid", "true")
    assert page.evaluate("sessionStorage.getItem('roomsync.functionKey')") is None

    page.get_by_label("Function key", exact=True).fill(FUNCTION_KEY)
    page.get_by_role("button", name="Use this key").click()
    expect(page.locator("#key-panel")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('roomsync.functionKey')") == FUNCTION_KEY
    assert page.evaluate("localStorage.length") == 0 and page.context.cookies() == []
    page.reload()
    expect(page.locator("#key-panel")).to_be_hidden()  # the same tab keeps it
    assert FUNCTION_KEY not in page.content()
    assert_clean(page)


# --- integrations and people ----------------------------------------------------------------------

def _disconnect_all(host) -> None:
    """Tests run in any order: a tenant another test connected is deleted, and its purge awaited,
    so this test starts from an empty console."""
    import requests

    from functions import context
    from tests.support.polling import wait_for
    from tests.support.room_host import KEY

    listed = requests.get(f"{host.base_url}/api/integrations", headers=KEY, timeout=30).json()["value"]
    for integration in listed:
        requests.delete(f"{host.base_url}/api/integrations/{integration['id']}", headers=KEY, timeout=30)
    wait_for(lambda: all(context.integrations_repo().get(i["id"]) is None for i in listed), timeout=60, interval=0.2)


def test_a_wrong_secret_is_refused_at_its_field_then_the_demo_tenant_connects(page, demo_people, host):
    _disconnect_all(host)
    open_console(page)
    expect(page.locator("#integrations-list")).to_contain_text("No tenant is connected yet", timeout=WAIT_MS)

    connect_form(page, "wrong-secret-value")

    error = page.locator("#connect-secret-error")
    expect(error).to_be_visible(timeout=WAIT_MS)
    expect(error).to_contain_text("client_secret")
    expect(page.get_by_label("Client secret")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Client secret")).to_be_focused()
    expect(page.locator("#connect-tenant-error")).to_be_hidden()

    page.get_by_label("Client secret").fill(seed.DEMO_CLIENT_SECRET)
    page.get_by_role("button", name="Connect", exact=True).click()

    card = page.locator("#integrations-list article").filter(has_text=seed.DEMO_DOMAIN)
    expect(card).to_have_count(1, timeout=WAIT_MS)
    expect(card).to_contain_text("active")
    expect(card).to_contain_text("User.Read.All")
    active, total = demo_people
    expect(card).to_contain_text(f"{active} active of {total}", timeout=WAIT_MS)  # the first sync ran
    expect(page.locator("#connect-error")).to_be_hidden()
    assert page.get_by_label("Client secret").input_value() == ""
    assert seed.DEMO_CLIENT_SECRET not in page.content()
    assert_clean(page)


def test_people_are_listed_searchable_and_filtered_by_state(page, demo_people):
    active, total = demo_people
    ensure_demo_connected(page)
    page.get_by_role("tab", name="People").click()
    rows = page.locator("#people-list tbody tr")
    expect(rows).to_have_count(total, timeout=WAIT_MS)
    expect(page.locator("#people-list")).to_contain_text("deactivated")

    first = rows.first.locator("td").nth(1).inner_text()
    page.get_by_label("Search").fill(first)
    expect(rows).to_have_count(1)
    page.get_by_label("Search").fill("")

    page.get_by_label("Show").select_option("false")
    expect(rows).to_have_count(total - active, timeout=WAIT_MS)
    expect(rows.first).to_contain_text("deactivated")
    page.get_by_label("Show").select_option("true")
    expect(rows).to_have_count(active, timeout=WAIT_MS)
    expect(page.locator("#people-list")).not_to_contain_text("deactivated")
    assert_clean(page)


# --- every section: screenshots, axe, widths --------------------------------------------------

@pytest.mark.parametrize("width", WIDTHS)
def test_every_section_is_readable_accessible_and_screenshotted(page, axe_source, artifacts, width):
    ensure_demo_connected(page)
    page.set_viewport_size({"width": WIDTHS[width], "height": 900})
    problems = {}
    for section in SECTIONS:
        tab = page.locator(f"#tab-{section}")
        tab.click()
        panel = page.locator(f"#panel-{section}")
        expect(panel).to_be_visible()
        expect(panel.locator("h2").first).to_be_visible()
        expect(page.locator(SECTIONS[section]).first).to_be_visible(timeout=WAIT_MS)
        page.screenshot(path=str(artifacts / f"{section}-{width}.png"), full_page=True)
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= WIDTHS[width] + 1, f"{section} at {width} scrolls sideways ({scroll} px)"
        found = axe_violations(page, axe_source)
        if found:
            problems[section] = found
    assert problems == {}, json.dumps(problems, indent=1)
    assert_clean(page)


def test_the_key_panel_is_accessible_too(page, axe_source, artifacts):
    open_console(page, key=None)
    page.screenshot(path=str(artifacts / "key-desktop.png"))
    assert axe_violations(page, axe_source) == []


# --- keyboard -----------------------------------------------------------------------------------

def test_the_keyboard_reaches_the_sections_and_focus_is_visible(page):
    ensure_demo_connected(page)
    page.locator("#tab-integrations").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-people")).to_be_focused()
    expect(page.locator("#panel-people")).to_be_visible()
    page.keyboard.press("End")
    expect(page.locator("#tab-status")).to_be_focused()
    expect(page.locator("#panel-status")).to_be_visible()
    page.keyboard.press("Home")
    expect(page.locator("#panel-integrations")).to_be_visible()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"

    page.keyboard.press("Tab")  # from the tab list into the section: the first card's button
    focused = page.evaluate("document.activeElement.tagName + ' ' + document.activeElement.textContent")
    assert focused.startswith("BUTTON"), focused


# --- status ------------------------------------------------------------------------------------

def test_the_status_section_shows_what_a_monitor_reads(page):
    ensure_demo_connected(page)
    page.get_by_role("tab", name="Status").click()
    expect(page.locator("#status-summary")).to_contain_text("dead letter", timeout=WAIT_MS)
    for queue in ("user-sync", "user-sync-poison", "graph-notifications", "reservation-events"):
        expect(page.locator("#status-queues")).to_contain_text(queue)


# --- what the app serves ---------------------------------------------------------------------------

def test_the_page_and_its_files_carry_the_strict_policy_and_nothing_else_is_served(host):
    for path, kind in (("api/console", "text/html"), ("api/console/app.js", "text/javascript"),
                       ("api/console/app.css", "text/css")):
        response = requests.get(f"{host.base_url}/{path}", timeout=10)
        assert response.status_code == 200 and response.headers["Content-Type"].startswith(kind), path
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    for path in ("api/console/axe.min.js", "api/console/index.html", "api/console/..%2Fadmin_page.py",
                 "api/console/app.js.map"):
        assert requests.get(f"{host.base_url}/{path}", timeout=10).status_code == 404, path
    page_text = requests.get(f"{host.base_url}/api/console", timeout=10).text
    assert "http://" not in page_text and "https://" not in page_text  # nothing from elsewhere


def test_the_reservation_filters_follow_the_chosen_view(page):
    ensure_demo_connected(page)
    page.get_by_role("tab", name="Reservations").click()
    expect(page.get_by_label("Day", exact=True)).to_be_visible()
    expect(page.get_by_label("Person (email)")).to_be_hidden()
    page.get_by_label("View").select_option("person")
    expect(page.get_by_label("Person (email)")).to_be_visible()
    expect(page.get_by_label("Day", exact=True)).to_be_hidden()
    expect(page.get_by_label("Occurrences")).to_be_hidden()
    page.get_by_label("Repeat").select_option("weekly")
    expect(page.get_by_label("Occurrences")).to_be_visible()
