"""A real browser against the real local world: Debian's Chromium driven by Playwright, the app
served by the local Functions host from Azurite, and a Graph emulator of this package's own
seeded with the demo tenant (its fixed credentials are the ones the README shows).

Chromium, Playwright and axe-core are required, not optional: when one is missing the tests fail
with a line saying how to install it, so a run can never pass by skipping the browser.
Screenshots go to test-artifacts/browser/ (ignored by git; CI can keep the folder).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from devtools.azurite import Azurite
from devtools.graph_emulator import seed
from devtools.graph_emulator.state import World
from tests.support.emulator_fixture import EmulatorTenant, start_emulator
from tests.support.room_host import FUNCTION_KEY, start_room_host  # noqa: F401 -- the key the tests type in

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("ROOMSYNC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("ROOMSYNC_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "browser"
DEMO_USERS = 12


def _require(condition: bool, line: str) -> None:
    if not condition:
        pytest.fail(line, pytrace=False)


@pytest.fixture(scope="session")
def playwright_driver():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright for Python is missing: install it into .venv (pip install playwright)", pytrace=False)
    _require(Path(CHROMIUM).exists(), f"Chromium is missing at {CHROMIUM}: apt-get install -y chromium")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver):
    instance = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield instance
    instance.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    _require(AXE.exists(), f"axe-core is missing at {AXE.relative_to(ROOT)}: run npm ci")
    return AXE.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def demo_emulator(tmp_path_factory):
    """An emulator of this module's own, so the demo tenant's fixed ids collide with nobody."""
    world = World()
    seed.seed_demo(world, users=DEMO_USERS)
    with start_emulator(world=world, cert_dir=str(tmp_path_factory.mktemp("browser-emulator-tls"))) as server:
        yield server


@pytest.fixture(scope="module")
def demo_people(demo_emulator) -> tuple[int, int]:
    """(active, total) people of the demo tenant as its directory holds them: the seeded people
    (one disabled) and the room mailboxes' disabled accounts."""
    tenant = demo_emulator.world.tenants[seed.DEMO_TENANT_ID]
    people = list(tenant.users.values())
    return sum(1 for person in people if person.account_enabled), len(people)


@pytest.fixture(scope="module")
def storage():
    """Storage of this module's own: the console lists everything it finds, so other modules'
    integrations must not be there (and their queued syncs must not run here)."""
    with Azurite() as instance:
        yield instance.connection_string


@pytest.fixture(scope="module")
def host(demo_emulator, storage):
    """The app on the local host; its PUBLIC_BASE_URL is its own address, so the emulator's
    subscription handshakes and notifications reach its webhooks."""
    yield from start_room_host(demo_emulator, storage)


@pytest.fixture(scope="module")
def demo_tenant(demo_emulator) -> EmulatorTenant:
    tenant = demo_emulator.world.tenants[seed.DEMO_TENANT_ID]
    return EmulatorTenant(server=demo_emulator, tenant=tenant, app=tenant.apps[seed.DEMO_CLIENT_ID],
                          domain=seed.DEMO_DOMAIN, client_secret=seed.DEMO_CLIENT_SECRET,
                          users=[u for u in tenant.users.values() if u.account_enabled],
                          rooms=list(tenant.rooms.values()))


@pytest.fixture
def page(browser, host):
    """A fresh browser context per test (its own session storage), recording CSP violations and
    page errors so a test can assert there were none."""
    context_ = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=host.base_url,
                                   timezone_id="UTC", locale="en-GB")
    context_.add_init_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation', e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));")
    tab = context_.new_page()
    tab.page_errors = []
    tab.on("pageerror", lambda error: tab.page_errors.append(str(error)))
    yield tab
    context_.close()
