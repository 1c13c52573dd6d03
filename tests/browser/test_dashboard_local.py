"""The dashboard over ``tickstep local --serve``, in a real browser: the token, the numbers
against the run's own report, Halt from the page halting the pipeline, and the axe scan.

One replay serves every step (a replay is the slow part): the steps are one test, in order.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import ROOT
from tests.browser.pages import card, change_state, market_cells, serious_violations, shown_decimal
from tickstep.config import drill_config

CANDLES = 60
STARTUP_S = 90.0
REPLAY_S = 240.0
# Where the screenshots go: reports/ (ignored by git) in a test run, so `make test` leaves the
# work tree as it found it; `make screenshots` points this at docs/images to refresh the README's.
SCREENSHOTS = ROOT / os.environ.get("TICKSTEP_SCREENSHOTS", "reports/screenshots")


@dataclass
class Served:
    process: subprocess.Popen[str]
    url: str
    report: Path
    lines: list[str]

    @property
    def origin(self) -> str:
        return self.url.split("/?", 1)[0]

    def wait_for(self, pattern: str, timeout_s: float) -> str:
        """The first output line matching ``pattern`` (a deadline; the process must live)."""
        deadline = time.monotonic() + timeout_s
        seen = 0
        while time.monotonic() < deadline:
            for line in self.lines[seen:]:
                if re.search(pattern, line):
                    return line
            seen = len(self.lines)
            assert self.process.poll() is None, "tickstep local --serve ended:\n" + "".join(
                self.lines[-30:]
            )
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} within {timeout_s}s:\n" + "".join(self.lines[-30:]))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``tickstep local --serve`` on a free port, trading a fast crossover on three markets."""
    import threading

    folder = tmp_path_factory.mktemp("serve")
    config = folder / "config.json"
    config.write_text(drill_config().model_dump_json())
    report = folder / "report.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tickstep.cli",
            "local",
            "--serve",
            "--port",
            "0",
            "--candles",
            str(CANDLES),
            "--config",
            str(config),
            "--report",
            str(report),
            "--log",
            str(folder / "lambda.log"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")))
    reader.daemon = True
    reader.start()
    served = Served(process, "", report, lines)
    try:
        served.url = served.wait_for(r"dashboard: open http", STARTUP_S).split()[-1]
        yield served
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_local_dashboard_token_numbers_halt_and_accessibility(
    served: Served, browser: Browser
) -> None:
    # No token, no data: from the API (401) as from the page (403); a wrong one neither.
    assert status_of(f"{served.origin}/api/dashboard") == 401
    assert status_of(f"{served.origin}/api/orders") == 401
    assert status_of(f"{served.origin}/") == 403
    assert status_of(f"{served.origin}/index.html") == 403
    assert status_of(f"{served.origin}/?token=wrong") == 403
    assert status_of(f"{served.origin}/api/dashboard?token=wrong") == 401

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    violations: list[str] = []
    page.on(
        "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
    )
    page.goto(served.url)
    assert "token=" not in page.url  # moved into an HttpOnly cookie
    expect(page.get_by_text(re.compile(r"Last updated"))).to_be_visible(timeout=20_000)
    expect(page.get_by_role("heading", name="Trading state")).to_be_visible()
    assert page.locator("#state-value").inner_text() == "ACTIVE"

    # Trades appear while the candles replay; then Halt, with a reason and a confirmation.
    expect(page.locator("#summary div[data-key=fills] dd")).not_to_have_text("0", timeout=60_000)
    change_state(page, "Halt", "browser test: game day")
    expect(page.locator("#state-value")).to_have_text("HALTED", timeout=10_000)
    expect(
        page.get_by_text(re.compile(r"by cognito:local-operator: browser test: game day"))
    ).to_be_visible()
    # The pipeline really halted: the next risk decision is denied TRADING_HALTED.
    denials = page.get_by_role("list", name="Risk denials by reason, last 7 days")
    expect(denials).to_contain_text("TRADING_HALTED", timeout=90_000)

    # After the replay, every figure on the page is the local report's, to the last digit.
    served.wait_for(r"replay finished", REPLAY_S)
    report = json.loads(served.report.read_text())
    page.reload()
    expect(page.get_by_text(re.compile(r"Last updated"))).to_be_visible(timeout=20_000)
    assert int(card(page, "Orders")) == report["orders"]["intents"]
    assert int(card(page, "Fills")) == report["fills"]
    assert shown_decimal(card(page, "Fees")) == Decimal(report["fees"])
    assert shown_decimal(card(page, "Equity (BTC)")) == Decimal(report["pnl"]["equity"]["BTC"])
    assert report["risk_decisions"].get("denied:TRADING_HALTED", 0) >= 1
    for key, figures in report["pnl"]["markets"].items():
        cells = market_cells(page, key.split(":")[1])
        position, realised, unrealised = cells[-3:]
        assert shown_decimal(position) == Decimal(figures["position"]), key
        assert shown_decimal(realised) == Decimal(figures["realized_pnl"]), key
        assert shown_decimal(unrealised) == Decimal(figures["unrealized_pnl"]), key
    assert violations == []

    assert serious_violations(page) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
    phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone.goto(served.url)
    expect(phone.locator("#state-value")).to_have_text("HALTED", timeout=20_000)
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px phone"
    assert serious_violations(phone) == []
    phone.screenshot(path=str(SCREENSHOTS / "dashboard-phone.png"), full_page=True)
