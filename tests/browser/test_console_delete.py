"""Deleting an integration from the console, against the real app: the DELETE answers 202 and the
purge runs in the background, so the page follows the status URL and shows the deletion's steps
(done and still to do) until the integration is gone."""
from __future__ import annotations

import requests
from playwright.sync_api import expect

from tests.browser.conftest import FUNCTION_KEY
from tests.browser.console import assert_clean, open_console
from tests.support.emulator_fixture import new_tenant
from tests.support.room_host import connect

# The Graph subscription's removal (the purge's first Graph call) is held this long, so the
# steps still to do can be seen on the page.
HOLD_MS = 4_000


def test_deleting_an_integration_shows_its_steps_until_it_is_gone(page, host, demo_emulator, artifacts):
    tenant = new_tenant(demo_emulator, users=2, rooms=1)
    world = connect(host, tenant, [tenant.rooms[0].email])  # a subscribed room, so there is a purge to follow
    held = requests.post(f"{demo_emulator.base_url}/_control/faults", verify=demo_emulator.ca_path, timeout=30,
                         json={"method": "DELETE", "path": "/subscriptions/", "delay_ms": HOLD_MS, "count": 1,
                               "tenant": tenant.tenant_id})
    assert held.status_code == 201, held.text

    open_console(page)
    card = page.locator("#integrations-list article").filter(has_text=tenant.domain)
    delete = card.get_by_role("button", name=f"Delete the integration of {tenant.domain}")
    delete.click()
    expect(delete).to_have_text("Confirm delete")
    delete.click()

    progress = page.locator("#delete-progress")
    expect(progress).to_contain_text(f"Deleting the integration of {tenant.domain}", timeout=20_000)
    expect(progress).to_contain_text("Still to do:", timeout=20_000)
    expect(progress).to_contain_text("graph-subscriptions")
    # while the subscription's removal is held, the step before it shows as done
    expect(progress).to_contain_text("Done: user-sync-lease", timeout=HOLD_MS)
    page.screenshot(path=str(artifacts / "integration-deleting-desktop.png"), full_page=True)
    expect(progress).to_contain_text(f"Deleted the integration of {tenant.domain}: every step is done.",
                                     timeout=30_000)
    expect(card).to_have_count(0)
    gone = requests.get(f"{host.base_url}/api/integrations/{world.integration_id}/status",
                        headers={"x-functions-key": FUNCTION_KEY}, timeout=30)
    assert gone.status_code == 404, gone.text
    assert_clean(page)
