"""The support console in a real headless Chromium (tests/starter/conftest.py), over real HTTP."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from models.settings import Settings
from models.store import Ledger
from standins.server import BackgroundServer
from starter.app import create_app
from starter.cases import start_case
from tests.deadline import eventually
from tests.standin_control import StripeControl
from tests.workflows.helpers import INSUFFICIENT

TOKEN = "browser-test-token"
UI = "http://temporal-ui.test"


@pytest.fixture
def served_console(dev_env: WorkflowEnvironment, settings: Settings, ledger: Ledger):  # type: ignore[no-untyped-def]
    # No client handed over: the app connects from uvicorn's own event loop, as in production.
    console_settings = settings.model_copy(
        update={
            "dunning_support_token": TOKEN,
            "temporal_address": dev_env.client.service_client.config.target_host,
            "temporal_namespace": dev_env.client.namespace,
            "temporal_ui_url": UI,
        }
    )
    app = create_app(console_settings, ledger=ledger)
    with BackgroundServer(app) as server:
        yield server


async def test_support_console_in_chromium(
    chromium: Any,
    served_console: BackgroundServer,
    dev_env: WorkflowEnvironment,
    run_worker: Any,
    settings: Settings,
    tmp_path: Path,
) -> None:
    from playwright.async_api import expect

    client = dev_env.client
    email = f"Browser.{uuid.uuid4().hex[:8]}@Example.com"
    case = StripeControl(settings).failed_invoice(INSUFFICIENT, email=email, name="Grace <Hopper>")
    page = await chromium.new_page()

    async def reload_until(selector: str, text: str) -> None:
        # Live status and the ledger follow the workflow a moment later: reload until they do.
        async def shown() -> bool:
            if text in (await page.locator(selector).inner_text()):
                return True
            await page.reload()
            return False

        try:
            await eventually(shown, interval=0.2, what=f"{text!r} in {selector}")
        except AssertionError:
            await page.screenshot(path=tmp_path / "failed.png", full_page=True)
            raise AssertionError(
                f"{text!r} never appeared in {selector} (see {tmp_path})"
            ) from None

    async def submit(action: str, **fields: str) -> None:
        form = page.locator(f"#form-{action}")
        for name, value in fields.items():
            await form.locator(f"input[name={name}]").fill(value)
        await form.locator("button[type=submit]").click()

    async with run_worker(client) as task_queue:
        await start_case(client, case.dunning_input(), task_queue)

        await page.goto(f"{served_console.url}/support")
        await expect(page).to_have_url(re.compile(r"/support/login\?next="))
        await page.fill("#token", TOKEN)
        await page.click("#login button[type=submit]")

        await page.fill("#q", email.lower())
        await page.click("#search button[type=submit]")
        results = page.locator("#results")
        await expect(results).to_contain_text("Grace <Hopper>")  # shown as text, not markup
        await results.get_by_role("link", name=case.invoice).click()
        await expect(page.locator("h1")).to_have_text(f"Case {case.invoice}")
        await reload_until("#status", "0 of 5 done")

        await submit("grace", days="99", reason="asked for time", by="ann")
        await expect(page.locator("#error-grace")).to_contain_text(
            "grace is limited to 14 days per grant"
        )
        await expect(page.locator("#form-grace input[name=days]")).to_have_value("99")

        await submit("grace", days="3", reason="asked for time", by="ann")
        flash = page.locator("#flash")
        await expect(flash).to_contain_text("New final deadline:")
        deadline = await page.locator("#final-deadline").inner_text()
        assert deadline in await flash.inner_text()
        await reload_until("#timeline", "Grace granted: +3 days")
        grant = page.locator("#timeline li", has_text="Grace granted: +3 days")
        await expect(grant.locator(".who")).to_have_text("ann")
        await expect(grant.locator(".why")).to_have_text("asked for time")

        await submit("pause", reason="customer disputes the charge", by="ann")
        await expect(page.locator("#status-value")).to_have_text("paused")
        await submit("resume", by="ann")
        await expect(page.locator("#status-value")).to_have_text("active")
        await reload_until("#timeline", "Resumed")
        await expect(page.locator("#timeline")).to_contain_text("customer disputes the charge")

        href = await page.locator("#temporal-link").get_attribute("href")
        assert href == f"{UI}/namespaces/{client.namespace}/workflows/dunning-{case.invoice}"
        await page.screenshot(path=tmp_path / "case.png", full_page=True)


async def test_times_are_shown_in_the_readers_zone(
    chromium: Any, served_console: BackgroundServer
) -> None:
    context = await chromium.new_context(timezone_id="Asia/Tokyo")
    page = await context.new_page()
    await page.goto(f"{served_console.url}/support/login")
    await page.fill("#token", TOKEN)
    await page.click("#login button[type=submit]")
    await page.goto(f"{served_console.url}/support/report?days=30")

    shown = page.locator("time").first
    text = await shown.inner_text()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d (GMT\+9|JST)", text), text
    utc = await shown.get_attribute("title")
    assert utc is not None and utc.endswith(" UTC") and utc != text
    await context.close()


async def test_report_page_draws_its_charts_with_nothing_fetched_elsewhere(
    chromium: Any, served_console: BackgroundServer, ledger: Ledger
) -> None:
    from playwright.async_api import Request, Route, expect

    from tests.starter.test_report_by import seed

    experiment = f"exp_{uuid.uuid4().hex[:8]}"
    seed(ledger, experiment)
    local, outside, problems = served_console.url, [], []
    page = await chromium.new_page()

    async def only_local(route: Route, request: Request) -> None:
        if request.url.startswith(local):
            await route.continue_()
        else:
            outside.append(request.url)
            await route.abort()

    await page.route("**/*", only_local)
    # Errors only: a Content-Security-Policy violation (an inline style, say) is one.
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    await page.goto(f"{local}/support/login")
    await page.fill("#token", TOKEN)
    await page.click("#login button[type=submit]")
    await page.goto(f"{local}/support/report?days=0&experiment={experiment}&min_effect=0.3")

    for chart in ("#chart-curve", "#chart-step", "#chart-channel"):
        svg = page.locator(f"{chart} svg")
        await expect(svg).to_be_visible()
        box = await svg.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 100, chart
    await expect(page.locator("#chart-curve svg text", has_text="control")).to_have_count(1)
    await expect(page.locator("#experiment")).to_contain_text("not enough data")
    await expect(page.locator("#group-variant tbody tr")).to_have_count(2)

    await page.fill("#filter-variant", "B")
    await page.click("#report-window button[type=submit]")
    await expect(page.locator("#group-variant tbody tr")).to_have_count(1)
    assert "variant=B" in page.url
    assert outside == [] and problems == [], (outside, problems)
    await page.close()
