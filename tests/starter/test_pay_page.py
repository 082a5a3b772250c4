"""The payment page over HTTP (ASGI transport) against real Temporal, Stripe stand-in, ledger:
links, the page, feedback, more time and the card. Other actions: test_pay_page_actions.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from models.dunning import DunningState
from models.ledger import CaseFeedback
from models.pay_links import make_token
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
    seed_closed,
    token_for,
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


async def test_tampered_unknown_and_expired_links_show_one_neutral_page(
    pay_settings: Settings, ledger: Ledger
) -> None:
    invoice = seed_closed(ledger, "recovered")
    http = browser(app_for(pay_settings, ledger, None))
    good = token_for(pay_settings, invoice)
    tampered = good[:-3] + ("aaa" if not good.endswith("aaa") else "bbb")
    other_key = token_for(pay_settings.model_copy(update={"dunning_link_secret": "k9:x"}), invoice)
    expired = make_token(pay_settings, invoice, datetime.now(UTC) - timedelta(seconds=1))
    unknown_invoice = token_for(pay_settings, "in_nonexistent")
    bodies = set()
    for token, status in (
        (tampered, 404),
        (other_key, 404),
        (unknown_invoice, 404),
        (expired, 410),
    ):
        answer = await http.get(f"/pay/{token}")
        assert answer.status_code == status
        assert "This link is not valid" in answer.text
        assert invoice not in answer.text and "cus_seed" not in answer.text
        assert answer.headers["referrer-policy"] == "no-referrer"
        bodies.add(answer.text)
    assert len(bodies) == 1  # nothing tells a guesser which check failed


async def test_closed_case_asks_one_feedback_question_and_stores_one_answer(
    pay_settings: Settings, ledger: Ledger
) -> None:
    invoice = seed_closed(ledger, "subscription_canceled")
    http = browser(app_for(pay_settings, ledger, None))
    token = token_for(pay_settings, invoice)
    page = await http.get(f"/pay/{token}")
    assert page.status_code == 200 and "This case is closed" in page.text
    assert "Your subscription has been canceled." in page.text
    assert 'id="form-feedback"' in page.text and 'value="too_expensive"' in page.text
    form = {"nonce": nonce(page.text), "reason": "too_expensive", "text": " price went up "}

    forged = await http.post(f"/pay/{token}/feedback", data={**form, "nonce": "0" * 32 + ".ab"})
    assert forged.status_code == 303
    cross = await http.post(
        f"/pay/{token}/feedback", data=form, headers={"sec-fetch-site": "cross-site"}
    )
    assert cross.status_code == 303
    with ledger.sessions() as session:
        assert (
            session.scalar(select(CaseFeedback).where(CaseFeedback.invoice_id == invoice)) is None
        )

    sent = await http.post(f"/pay/{token}/feedback", data=form)
    assert sent.status_code == 303 and sent.headers["location"] == f"/pay/{token}"
    thanked = await http.get(sent.headers["location"])
    assert "Thank you for your answer." in thanked.text
    assert 'id="form-feedback"' not in thanked.text  # asked once

    again = await http.post(f"/pay/{token}/feedback", data={**form, "reason": "other"})
    assert "We already have your answer." in (await http.get(again.headers["location"])).text
    with ledger.sessions() as session:
        rows = session.scalars(select(CaseFeedback).where(CaseFeedback.invoice_id == invoice))
        stored = [(r.reason, r.text, r.outcome) for r in rows]
    assert stored == [("too_expensive", "price went up", "subscription_canceled")]


async def test_open_case_page_in_the_customers_language_with_an_override(
    open_case: tuple[FailedInvoice, str],
    dev_env: WorkflowEnvironment,
    pay_settings: Settings,
    ledger: Ledger,
) -> None:
    _, token = open_case
    http = browser(app_for(pay_settings, ledger, dev_env.client))
    es = await http.get(f"/pay/{token}")
    assert es.status_code == 200 and '<html lang="es">' in es.text
    assert "Tu pago no se ha completado" in es.text
    assert "12,00\xa0€" in es.text  # the stand-in's default amount, as a Spanish bank shows it
    assert "insufficient_funds" not in es.text  # plain words, never the raw decline code
    assert "Tu banco ha rechazado el pago por ahora" in es.text
    en = await http.get(f"/pay/{token}?lang=en")
    assert '<html lang="en">' in en.text and "Your payment did not go through" in en.text
    assert "We will try your card again on" in en.text
    assert "form-action 'self'" in en.headers["content-security-policy"]
    assert "js.stripe.com" not in en.text  # no external asset without a publishable key
    for action in ("pay-now", "more-time", "pause", "contact"):
        assert f'action="/pay/{token}/act/{action}?lang=en"' in en.text


async def test_more_time_within_limits_moves_the_schedule_and_beyond_shows_the_refusal(
    open_case: tuple[FailedInvoice, str],
    dev_env: WorkflowEnvironment,
    pay_settings: Settings,
    ledger: Ledger,
) -> None:
    case, token = open_case
    client = dev_env.client
    http = browser(app_for(pay_settings, ledger, client))
    before: DunningState = await case_status(client, case.invoice)
    assert before.next_action_at is not None and before.final_deadline is not None
    page = (await http.get(f"/pay/{token}?lang=en")).text
    limits = re.search(r'id="until" name="until" required min="([\d-]+)" max="([\d-]+)"', page)
    assert limits, "no bounded date picker"
    first, last = date.fromisoformat(limits.group(1)), date.fromisoformat(limits.group(2))

    beyond = {"nonce": nonce(page), "until": (last + timedelta(days=3)).isoformat()}
    refused = await http.post(f"/pay/{token}/act/more-time?lang=en", data=beyond)
    assert refused.status_code == 303
    shown = (await http.get(refused.headers["location"])).text
    assert "We could not do that:" in shown and "pick a date after" in shown
    assert "Nothing has changed." in shown
    unchanged = await case_status(client, case.invoice)
    assert unchanged.grace == [] and unchanged.final_deadline == before.final_deadline

    within = {"nonce": nonce(shown), "until": first.isoformat()}
    done = await http.post(f"/pay/{token}/act/more-time?lang=en", data=within)
    assert "Done: we will try your card again on" in (await http.get(done.headers["location"])).text
    after = await case_status(client, case.invoice)
    assert [g.by for g in after.grace] == ["customer"]
    assert after.final_deadline is not None and after.final_deadline > before.final_deadline
    assert after.next_action_at is not None and after.next_action_at > before.next_action_at
    # The same form posted again is the same action, not a second grant.
    await http.post(f"/pay/{token}/act/more-time?lang=en", data=within)
    assert len((await case_status(client, case.invoice)).grace) == 1


async def test_card_update_through_the_standin_page_recovers_with_one_charge(
    open_case: tuple[FailedInvoice, str],
    dev_env: WorkflowEnvironment,
    pay_settings: Settings,
    ledger: Ledger,
) -> None:
    case, token = open_case
    stripe = StripeControl(pay_settings)
    http = browser(app_for(pay_settings, ledger, dev_env.client))
    start = await http.get(f"/pay/{token}/card")
    assert start.status_code == 303
    target = urlsplit(start.headers["location"])
    assert f"{target.scheme}://{target.netloc}" == pay_settings.stripe_api_base
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert query["return_url"] == f"http://pay.test/pay/{token}/card-return"
    async with httpx.AsyncClient() as standin:
        confirmed = await standin.post(
            start.headers["location"].split("?")[0],
            data={**query, "payment_method": "pm_card_visa"},
        )
    assert confirmed.status_code == 303
    back = urlsplit(confirmed.headers["location"])
    returned = await http.get(f"{back.path}?{back.query}")
    assert returned.status_code == 303
    charging = await http.get(returned.headers["location"])
    # The customer's language (es): "charging your new card", or already "closed" (paid).
    assert re.search(r"Estamos haciendo el cargo|Este caso está cerrado", charging.text)

    state = await eventually(
        lambda: case_status(dev_env.client, case.invoice),
        lambda s: s.outcome is not None,
        what="the case recovered on the new card",
    )
    assert state.outcome is not None and state.outcome.value == "recovered"
    charges = stripe.charges(case.invoice)["attempts"]
    assert [c["outcome"] for c in charges[1:]] == ["succeeded"]  # one charge after the decline
    si = stripe.sdk.v1.setup_intents.retrieve(parse_qs(back.query)["setup_intent"][0])
    assert charges[-1]["payment_method"] == si.payment_method  # the new card, not the old one
    # Coming back to the return URL again does not charge again.
    await http.get(f"{back.path}?{back.query}")
    assert stripe.charge_count(case.invoice) == len(charges)


async def test_temporal_unreachable_is_a_friendly_503(
    pay_settings: Settings, ledger: Ledger, open_case: tuple[FailedInvoice, str]
) -> None:
    _, token = open_case
    away = pay_settings.model_copy(update={"temporal_address": "127.0.0.1:1"})
    http = browser(app_for(away, ledger, None))
    answer = await http.get(f"/pay/{token}")
    assert answer.status_code == 503
    assert "Inténtalo de nuevo en un momento" in answer.text  # the customer's language still
