"""What the browser tests do in the console, as a person would: open it with the key, connect the
demo tenant, link and subscribe a room; and the checks every page gets (axe-core, its own CSP)."""
from __future__ import annotations

from playwright.sync_api import Page, expect

from devtools.graph_emulator import seed
from tests.browser.conftest import FUNCTION_KEY

WAIT_MS = 20_000


def open_console(page: Page, key: str | None = FUNCTION_KEY, accepted: bool = True) -> None:
    page.goto("/api/console")
    expect(page.locator("#key-panel")).to_be_visible()
    if key is not None:
        page.get_by_label("Function key", exact=True).fill(key)
        page.get_by_role("button", name="Use this key").click()
        if accepted:
            expect(page.locator("#key-panel")).to_be_hidden()


def connect_form(page: Page, secret: str) -> None:
    page.get_by_label("Email domains").fill(seed.DEMO_DOMAIN)
    page.get_by_label("Tenant id").fill(seed.DEMO_TENANT_ID)
    page.get_by_label("Client id").fill(seed.DEMO_CLIENT_ID)
    page.get_by_label("Client secret").fill(secret)
    page.get_by_role("button", name="Connect", exact=True).click()


def ensure_demo_connected(page: Page) -> None:
    """Connects the demo tenant through the form unless an earlier test of this module did."""
    open_console(page)
    cards = page.locator("#integrations-list article")
    expect(page.locator("#integrations-list")).not_to_be_empty(timeout=WAIT_MS)
    if cards.count() == 0:
        connect_form(page, seed.DEMO_CLIENT_SECRET)
    expect(cards.filter(has_text=seed.DEMO_DOMAIN)).to_have_count(1, timeout=WAIT_MS)


def axe_violations(page: Page, axe_source: str) -> list[dict]:
    page.evaluate(axe_source)  # evaluated by the test through the DevTools protocol, never served by the app
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                        nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
    }""")
    return [v for v in result if v["impact"] in ("serious", "critical")]


def assert_clean(page: Page) -> None:
    assert page.evaluate("window.__violations") == [], "the page broke its own Content-Security-Policy"
    assert page.page_errors == []


def subscribe_room(page: Page, name: str) -> None:
    """Links the demo room `name` from the tenant's room list and subscribes it, through the page
    (once per module: a room already subscribed is left as it is)."""
    ensure_demo_connected(page)
    page.get_by_role("tab", name="Assets").click()
    expect(page.locator("#assets-list > *").first).to_be_visible(timeout=WAIT_MS)
    row = page.locator("#assets-list tbody tr").filter(has_text=name)
    if row.count() == 0:
        page.get_by_role("button", name="Load room list").click()
        page.get_by_role("button", name=f"Add {name} as an asset").click()
        expect(row).to_contain_text("unsubscribed", timeout=WAIT_MS)
    if row.get_by_role("button", name=f"Subscribe {name}", exact=True).count():
        row.get_by_role("button", name=f"Subscribe {name}", exact=True).click()
    expect(row).to_contain_text("subscribed to Graph", timeout=WAIT_MS)
