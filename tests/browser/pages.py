"""What the browser tests read and check on the page: as a person would (roles, labels,
visible text), never CSS paths of the layout."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from playwright.sync_api import Page

from tests.browser.conftest import AXE


def shown_decimal(text: str) -> Decimal:
    """A figure as the page writes it ("+0.0012 BTC", "−0.5") as an exact decimal."""
    return Decimal(text.split(maxsplit=1)[0].replace("−", "-").removeprefix("+"))


def card(page: Page, term: str) -> str:
    return (
        page.locator("#summary div", has=page.get_by_text(term, exact=True))
        .locator("dd")
        .inner_text()
    )


def market_cells(page: Page, symbol: str) -> list[str]:
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=symbol))
    return [c.inner_text() for c in row.get_by_role("cell").all()]


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations of impact serious or critical on the page as it is now."""
    # Through the DevTools protocol: the page's CSP forbids inline scripts, as it should.
    page.evaluate(AXE.read_text())
    result = page.evaluate("async () => await axe.run(document)")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def change_state(page: Page, action: str, reason: str) -> None:
    """Click the action, give a reason, confirm: what an operator does."""
    page.get_by_role("button", name=action, exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Reason").fill(reason)
    dialog.get_by_role("button", name=f"Confirm {action.lower()}").click()


def api_json(page: Page, path: str) -> Any:
    return json.loads(page.evaluate(f"fetch('/api/{path}').then(r => r.text())"))
