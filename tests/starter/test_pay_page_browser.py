"""The payment page in a real headless Chromium (tests/starter/conftest.py), over real HTTP,
at a phone's width and a desktop's, with the Stripe stand-in's test card page in between."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from models.ledger import CaseFeedback
from models.pay_links import make_token
from models.settings import Settings
from models.store import Ledger
from standins.server import BackgroundServer, free_port
from starter.app import create_app
from starter.cases import start_case
from starter.support.service import case_status
from tests.deadline import eventually
from tests.standin_control import FailedInvoice, StripeControl
from tests.workflows.helpers import INSUFFICIENT

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture
def served(dev_env: WorkflowEnvironment, settings: Settings, ledger: Ledger) -> Iterator[Settings]:
    # No client handed over: the app connects from uvicorn's own event loop, as in production.
    port = free_port("127.0.0.1")
    pay_settings = settings.model_copy(
        update={
            "dunning_link_secret": "kb:browser-secret",
            "dunning_public_url": f"http://127.0.0.1:{port}",
            "temporal_address": dev_env.client.service_client.config.target_host,
            "temporal_namespace": dev_env.client.namespace,
        }
    )
    with BackgroundServer(create_app(pay_settings, ledger=ledger), port=port):
        yield pay_settings


def link(settings: Settings, invoice: str, expires: datetime | None = None) -> str:
    token = make_token(settings, invoice, expires or datetime.now(UTC) + timedelta(days=60))
    return f"{settings.dunning_public_url}/pay/{token}"


@pytest.fixture
async def case(
    dev_env: WorkflowEnvironment, run_worker: Any, settings: Settings
) -> AsyncIterator[FailedInvoice]:
    client = dev_env.client
    failed = StripeControl(settings).failed_invoice(INSUFFICIENT)
    async with run_worker(client) as task_queue:
        handle = await start_case(client, failed.dunning_input(), task_queue)
        await eventually(
            lambda: case_status(client, failed.invoice),
            lambda s: s.next_action_at is not None,
            what="the case scheduled its next step",
        )
        yield failed
        with contextlib.suppress(RPCError):  # a case the test closed is already over
            await handle.terminate("test over")


async def open_page(chromium: Any, viewport: dict[str, int]) -> tuple[Any, list[str]]:
    """A page at this width, and the list of requests it made anywhere but 127.0.0.1 (our
    API and the Stripe stand-in): no other asset may ever be fetched."""
    context = await chromium.new_context(viewport=viewport, locale="en-US")
    page = await context.new_page()
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if "//127.0.0.1:" not in r.url else None)
    return page, outside


async def fits(page: Any, viewport: dict[str, int]) -> None:
    width = await page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= viewport["width"], "the page scrolls sideways"


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
async def test_tampered_and_expired_links_are_refused(
    chromium: Any, served: Settings, ledger: Ledger, viewport: dict[str, int]
) -> None:
    settings = served
    invoice = f"in_{uuid.uuid4().hex[:12]}"
    ledger.open_case(
        invoice_id=invoice, workflow_id=f"dunning-{invoice}", customer_id="cus_b",
        amount_due=900, currency="usd", policy="default", opened_at=datetime.now(UTC),
    )  # fmt: skip
    page, outside = await open_page(chromium, viewport)
    good = link(settings, invoice)
    answer = await page.goto(good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"))
    assert answer.status == 404
    assert await page.locator("h1").inner_text() == "This link is not valid"
    expired = await page.goto(link(settings, invoice, datetime.now(UTC) - timedelta(minutes=1)))
    assert expired.status == 410
    assert await page.locator("h1").inner_text() == "This link is not valid"
    assert invoice not in await page.content()
    await fits(page, viewport)
    assert outside == []


async def test_new_card_on_the_standin_page_recovers_the_case_with_one_charge(
    chromium: Any,
    served: Settings,
    case: FailedInvoice,
    dev_env: WorkflowEnvironment,
    tmp_path: Path,
) -> None:
    from playwright.async_api import expect

    settings = served
    page, outside = await open_page(chromium, PHONE)
    await page.goto(link(settings, case.invoice))
    await expect(page.locator("h1")).to_have_text("Your payment did not go through")
    await expect(page.locator("#amount")).to_have_text("€12.00")
    await fits(page, PHONE)
    await page.screenshot(path=tmp_path / "phone-case.png", full_page=True)

    await page.click("#update-card")
    await expect(page.locator("h1")).to_contain_text("Test card for seti_")
    await page.check("input[value=pm_card_visa]")
    await page.click("#card button[type=submit]")
    # Back on our page: "charging" (it refreshes itself) until the case has recovered.
    await expect(page.locator("h1")).to_have_text("This case is closed", timeout=20_000)
    await expect(page.locator("#outcome")).to_contain_text("This payment is complete")
    state = await case_status(dev_env.client, case.invoice)
    assert state.outcome is not None and state.outcome.value == "recovered"
    charges = StripeControl(settings).charges(case.invoice)["attempts"]
    assert [c["outcome"] for c in charges] == ["declined", "succeeded"]
    assert charges[1]["payment_method"] != charges[0]["payment_method"]
    await page.screenshot(path=tmp_path / "phone-recovered.png", full_page=True)
    assert outside == []


async def test_more_time_within_limits_and_beyond_them(
    chromium: Any,
    served: Settings,
    case: FailedInvoice,
    dev_env: WorkflowEnvironment,
    tmp_path: Path,
) -> None:
    from playwright.async_api import expect

    settings = served
    before = await case_status(dev_env.client, case.invoice)
    page, outside = await open_page(chromium, DESKTOP)
    await page.goto(link(settings, case.invoice))
    picker = page.locator("#until")
    last = date.fromisoformat(str(await picker.get_attribute("max")))
    first = date.fromisoformat(str(await picker.get_attribute("min")))

    # The browser keeps the customer within the picker's bounds; the validator is the
    # authority, so lift the bound and ask beyond it.
    await picker.evaluate("el => el.removeAttribute('max')")
    await picker.fill((last + timedelta(days=2)).isoformat())
    await page.click("#form-more-time button[type=submit]")
    await expect(page.locator("#flash")).to_contain_text("We could not do that:")
    await expect(page.locator("#refusal")).to_contain_text("no later than")
    assert (await case_status(dev_env.client, case.invoice)).grace == []

    await page.locator("#until").fill(first.isoformat())
    await page.locator("#form-more-time button[type=submit]").focus()
    await page.keyboard.press("Enter")  # keyboard only
    await expect(page.locator("#flash")).to_contain_text("Done: we will try your card again on")
    after = await case_status(dev_env.client, case.invoice)
    assert [g.by for g in after.grace] == ["customer"]
    assert after.next_action_at and before.next_action_at
    assert after.next_action_at > before.next_action_at
    await fits(page, DESKTOP)
    await page.screenshot(path=tmp_path / "desktop-more-time.png", full_page=True)
    assert outside == []


async def test_pause_sets_pause_collection_then_one_feedback_answer(
    chromium: Any,
    served: Settings,
    case: FailedInvoice,
    ledger: Ledger,
    tmp_path: Path,
) -> None:
    from playwright.async_api import expect

    settings = served
    page, outside = await open_page(chromium, PHONE)
    await page.goto(link(settings, case.invoice) + "?lang=es")
    await expect(page.locator("h1")).to_have_text("Tu pago no se ha completado")
    await page.click("#form-pause button[type=submit]")
    await expect(page.locator("h1")).to_have_text("Este caso está cerrado")
    sub = StripeControl(settings).sdk.v1.subscriptions.retrieve(case.subscription)
    assert sub.pause_collection is not None and sub.pause_collection.resumes_at
    await expect(page.locator("#outcome")).to_contain_text("Tu suscripción está en pausa hasta")

    await page.check("#reason-no_funds_until_payday")
    await page.fill("#text", "cobro el día 30")
    await page.click("#form-feedback button[type=submit]")
    await expect(page.locator("#flash")).to_contain_text("Gracias por tu respuesta.")
    await expect(page.locator("#form-feedback")).to_have_count(0)
    await fits(page, PHONE)
    await page.screenshot(path=tmp_path / "phone-feedback.png", full_page=True)
    assert outside == []
    with ledger.sessions() as session:
        rows = session.scalars(select(CaseFeedback).where(CaseFeedback.invoice_id == case.invoice))
        stored = [(r.reason, r.text) for r in rows]
    assert stored == [("no_funds_until_payday", "cobro el día 30")]
