"""The payment page's other actions over HTTP: pause, cancel (confirmed), talk to a person,
pay now, and the production card form (Stripe.js)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from models.settings import Settings
from models.store import Ledger
from starter.support.service import case_status
from tests.deadline import eventually
from tests.standin_control import FailedInvoice, StripeControl
from tests.starter.pay_page_helpers import (
    app_for,
    browser,
    nonce,
    page_settings,
    running_case,
)


@pytest.fixture
def pay_settings(settings: Settings) -> Settings:
    return page_settings(settings)


@pytest.fixture
async def open_case(
    dev_env: WorkflowEnvironment, run_worker: Any, pay_settings: Settings
) -> AsyncIterator[tuple[FailedInvoice, str]]:
    async with running_case(dev_env.client, run_worker, pay_settings) as opened:
        yield opened


async def test_pause_sets_pause_collection_and_closes_the_case_with_the_resume_date(
    open_case: tuple[FailedInvoice, str],
    dev_env: WorkflowEnvironment,
    pay_settings: Settings,
    ledger: Ledger,
) -> None:
    case, token = open_case
    stripe = StripeControl(pay_settings)
    http = browser(app_for(pay_settings, ledger, dev_env.client))
    page = (await http.get(f"/pay/{token}?lang=en")).text
    assert 'id="form-pause"' in page
    done = await http.post(f"/pay/{token}/act/pause?lang=en", data={"nonce": nonce(page)})
    assert done.status_code == 303
    sub = stripe.sdk.v1.subscriptions.retrieve(case.subscription)
    assert sub.pause_collection is not None and sub.pause_collection.resumes_at
    resumes = datetime.fromtimestamp(sub.pause_collection.resumes_at, UTC)
    closed = (await http.get(done.headers["location"])).text
    assert "This case is closed" in closed
    assert f"Your subscription is paused until {resumes:%B} {resumes.day}" in closed
    assert 'id="form-feedback"' in closed and "Why are you leaving?" in closed
    state = await case_status(dev_env.client, case.invoice)
    assert state.outcome is not None and state.outcome.value == "paused_by_customer"


async def test_cancel_needs_its_confirm_step_and_contact_needs_a_message(
    open_case: tuple[FailedInvoice, str],
    dev_env: WorkflowEnvironment,
    pay_settings: Settings,
    ledger: Ledger,
) -> None:
    case, token = open_case
    http = browser(app_for(pay_settings, ledger, dev_env.client))
    page = (await http.get(f"/pay/{token}?lang=en")).text
    assert 'id="form-cancel"' not in page  # only behind the confirm step
    empty = await http.post(
        f"/pay/{token}/act/contact?lang=en", data={"nonce": nonce(page), "message": "  "}
    )
    assert "Please write a message." in (await http.get(empty.headers["location"])).text
    sent = await http.post(
        f"/pay/{token}/act/contact?lang=en", data={"nonce": nonce(page), "message": "Call me"}
    )
    assert "Our team will reply soon" in (await http.get(sent.headers["location"])).text

    confirm = (await http.get(f"/pay/{token}/cancel?lang=en")).text
    assert "Are you sure?" in confirm and 'id="form-cancel"' in confirm
    canceled = await http.post(f"/pay/{token}/act/cancel?lang=en", data={"nonce": nonce(confirm)})
    closed = (await http.get(canceled.headers["location"])).text
    assert "This case is closed" in closed
    state = await case_status(dev_env.client, case.invoice)
    assert state.outcome is not None and state.outcome.value == "subscription_canceled"
    # A form of the open page posted after the case closed changes nothing and says so.
    late = await http.post(f"/pay/{token}/act/pay-now?lang=en", data={"nonce": nonce(page)})
    assert "This case is closed" in (await http.get(late.headers["location"])).text


async def test_pay_now_charges_the_card_on_file_once_per_form(
    open_case: tuple[FailedInvoice, str],
    dev_env: WorkflowEnvironment,
    pay_settings: Settings,
    ledger: Ledger,
) -> None:
    case, token = open_case
    stripe = StripeControl(pay_settings)
    http = browser(app_for(pay_settings, ledger, dev_env.client))
    form = {"nonce": nonce((await http.get(f"/pay/{token}?lang=en")).text)}
    done = await http.post(f"/pay/{token}/act/pay-now?lang=en", data=form)
    assert "We are charging your card now." in (await http.get(done.headers["location"])).text
    await http.post(f"/pay/{token}/act/pay-now?lang=en", data=form)  # a double click

    async def charges() -> int:
        return stripe.charge_count(case.invoice)

    await eventually(charges, lambda n: n >= 2, what="the customer's retry charged")
    await eventually(
        lambda: case_status(dev_env.client, case.invoice),
        lambda s: not (s.next_action or "").startswith("retry charge now"),
        what="no second retry queued",
    )
    assert stripe.charge_count(case.invoice) == 2  # the first decline and one retry


async def test_production_card_form_loads_only_stripe_js_with_a_setup_intent(
    open_case: tuple[FailedInvoice, str],
    dev_env: WorkflowEnvironment,
    pay_settings: Settings,
    ledger: Ledger,
) -> None:
    case, token = open_case
    live = pay_settings.model_copy(update={"stripe_publishable_key": "pk_test_page"})
    http = browser(app_for(live, ledger, dev_env.client))
    page = await http.get(f"/pay/{token}/card?lang=en")
    assert page.status_code == 200
    assert '<script src="https://js.stripe.com/v3/"></script>' in page.text
    assert 'data-key="pk_test_page"' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self' https://js.stripe.com https://*.js.stripe.com;" in policy
    secret = re.search(r'data-secret="(seti_\w+?)_secret_[^"]+"', page.text)
    assert secret, "no SetupIntent client secret for Stripe.js"
    si = StripeControl(live).sdk.v1.setup_intents.retrieve(secret.group(1))
    assert si.customer == case.customer and si.usage == "off_session"
    assert si.status == "requires_payment_method"
    # Back from Stripe with a SetupIntent that did not succeed: nothing is charged.
    back = await http.get(f"/pay/{token}/card-return?setup_intent={si.id}&lang=en")
    shown = (await http.get(back.headers["location"])).text
    assert "Your card was not saved." in shown
    assert StripeControl(live).charge_count(case.invoice) == 1
