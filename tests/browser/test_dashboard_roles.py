"""The page over the real API handler and an empty local stack (no replay): a viewer sees
the state and cannot halt (the API's 403 is shown in the page, nothing changes), the empty
states, and an API failure is a visible banner, never a blank page."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.browser.conftest import DIST, ROOT
from tests.browser.pages import change_state, serious_violations
from tickstep.dashboard.server import DashboardServer
from tickstep.local.cloud import LocalCloud


@pytest.fixture(scope="module")
def viewer_url() -> Iterator[str]:
    with LocalCloud(ROOT) as cloud:
        server = DashboardServer(DIST, port=0, groups="[viewers]")
        server.start(cloud)
        try:
            yield server.url
        finally:
            server.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    page = browser.new_page(viewport={"width": 1024, "height": 800})
    yield page
    page.close()


def test_viewer_when_halting_then_the_page_shows_403_and_trading_stays_active(
    page: Page, viewer_url: str
) -> None:
    page.goto(viewer_url)
    expect(page.get_by_text(re.compile(r"Last updated"))).to_be_visible(timeout=20_000)
    expect(page.locator("#state-value")).to_have_text("ACTIVE")
    expect(page.get_by_text("No orders yet.")).to_be_visible()

    change_state(page, "Halt", "a viewer tries")

    error = page.get_by_role("dialog").get_by_role("alert")
    expect(error).to_contain_text("not allowed (403)")
    expect(error).to_contain_text("operators group")
    page.get_by_role("button", name="Cancel").click()
    page.reload()
    expect(page.locator("#state-value")).to_have_text("ACTIVE", timeout=20_000)
    assert serious_violations(page) == []


def test_api_failure_when_loading_then_a_banner_says_so(page: Page, viewer_url: str) -> None:
    def fail(route: Route) -> None:
        route.fulfill(status=500, content_type="application/json", body='{"message":"boom"}')

    page.route("**/api/dashboard", fail)
    page.goto(viewer_url)

    banner = page.get_by_role("alert").filter(has_text="Cannot load the dashboard")
    expect(banner).to_be_visible(timeout=20_000)
    expect(banner).to_contain_text("the API answered 500: boom")
    expect(page.get_by_role("heading", name="Trading state")).to_be_visible()
    assert serious_violations(page) == []


def test_api_failure_after_loading_then_the_data_stays_under_a_banner(
    page: Page, viewer_url: str
) -> None:
    page.goto(viewer_url)
    expect(page.locator("#state-value")).to_have_text("ACTIVE", timeout=20_000)

    page.route("**/api/dashboard", lambda route: route.abort("connectionrefused"))

    banner = page.get_by_role("alert").filter(has_text="Refresh failed")
    expect(banner).to_contain_text("the API cannot be reached", timeout=20_000)
    expect(page.locator("#state-value")).to_have_text("ACTIVE")
    page.unroute("**/api/dashboard")
    expect(banner).to_be_hidden(timeout=20_000)
