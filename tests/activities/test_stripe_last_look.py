"""The final action's last look at the default card (activities/stripe_last_look.py): an open
invoice whose customer set a card the case never charged is left alone, the card named."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import stripe_billing
from activities.stripe_billing import StripeActivities
from models.activities import FinalActionInput
from tests.standin_control import INSUFFICIENT, FailedInvoice, StripeControl


def ignore_expansion(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Stripe implementation that ignores `expand[]`: the customer must be read apart."""

    def unexpanded(client: stripe.StripeClient, input: FinalActionInput) -> Any:
        return client.v1.invoices.retrieve(input.invoice_id)

    monkeypatch.setattr(stripe_billing, "last_look", unexpanded)


@pytest.fixture
def no_expansion(monkeypatch: pytest.MonkeyPatch) -> None:
    ignore_expansion(monkeypatch)


def customer_reads(stripe_control: StripeControl, case: FailedInvoice) -> int:
    return sum(
        r["method"] == "GET" and r["path"].endswith(f"/customers/{case.customer}")
        for r in stripe_control.requests()
    )


def cancel(case: FailedInvoice, known_cards: list[str] | None) -> FinalActionInput:
    return FinalActionInput(
        invoice_id=case.invoice,
        subscription_id=case.subscription,
        action="cancel_subscription",
        customer_id=case.customer,
        known_cards=known_cards,
    )


def new_default_card(stripe_control: StripeControl, case: FailedInvoice) -> str:
    """The customer sets a new default card (Stripe gives the test card an id of its own)."""
    stripe_control.use_card(case.customer, "pm_card_visa")
    settings = stripe_control.sdk.v1.customers.retrieve(case.customer).invoice_settings
    assert settings is not None
    return str(settings.default_payment_method)


def canceled(stripe_control: StripeControl, case: FailedInvoice) -> bool:
    return stripe_control.sdk.v1.subscriptions.retrieve(case.subscription).status == "canceled"


@pytest.mark.parametrize("expands", [True, False], ids=["expanded", "read-apart"])
def test_a_default_card_the_case_never_charged_is_named_and_nothing_is_canceled(
    stripe_activities: StripeActivities,
    stripe_control: StripeControl,
    monkeypatch: pytest.MonkeyPatch,
    expands: bool,
) -> None:
    """The customer comes expanded in the invoice (one request for both); from an
    implementation that ignores `expand[]`, it is read apart."""
    if not expands:
        ignore_expansion(monkeypatch)
    case = stripe_control.failed_invoice(INSUFFICIENT)
    card = new_default_card(stripe_control, case)
    reads = customer_reads(stripe_control, case)
    result = ActivityEnvironment().run(stripe_activities.apply_final_action, cancel(case, []))
    assert (result.outcome, result.untried_card) == (None, card)
    assert not canceled(stripe_control, case)
    assert customer_reads(stripe_control, case) == reads + (0 if expands else 1)


@pytest.mark.parametrize("look", [True, False], ids=["charged-before", "no-look"])
def test_a_known_card_or_no_look_goes_on_to_the_action(
    stripe_activities: StripeActivities, stripe_control: StripeControl, look: bool
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    card = new_default_card(stripe_control, case)
    final = cancel(case, [card] if look else None)
    result = ActivityEnvironment().run(stripe_activities.apply_final_action, final)
    assert (result.outcome, result.untried_card) == ("subscription_canceled", None)
    assert canceled(stripe_control, case)


@pytest.mark.usefixtures("no_expansion")
def test_a_customer_that_cannot_be_read_means_no_card_to_try(
    stripe_activities: StripeActivities, stripe_control: StripeControl
) -> None:
    """The card is enrichment: an implementation without the customer read still acts."""
    case = stripe_control.failed_invoice(INSUFFICIENT)
    new_default_card(stripe_control, case)
    stripe_control.fault("not_found", count=1, path_contains="/v1/customers/")
    result = ActivityEnvironment().run(stripe_activities.apply_final_action, cancel(case, []))
    assert (result.outcome, result.untried_card) == ("subscription_canceled", None)


def test_a_paid_invoice_is_recovered_before_any_card_is_looked_at(
    stripe_activities: StripeActivities, stripe_control: StripeControl
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    new_default_card(stripe_control, case)
    stripe_control.sdk.v1.invoices.pay(case.invoice, params={"paid_out_of_band": True})
    result = ActivityEnvironment().run(stripe_activities.apply_final_action, cancel(case, []))
    assert (result.outcome, result.untried_card) == ("recovered", None)
    assert not canceled(stripe_control, case)


@pytest.mark.usefixtures("no_expansion")
def test_an_outage_on_the_customer_read_is_retried_not_acted_past(
    stripe_activities: StripeActivities, stripe_control: StripeControl
) -> None:
    """Nothing was done yet, so Temporal asks again rather than cancel past a new card."""
    case = stripe_control.failed_invoice(INSUFFICIENT)
    card = new_default_card(stripe_control, case)
    stripe_control.fault("500", count=1, path_contains="/v1/customers/")
    with pytest.raises(ApplicationError) as raised:
        ActivityEnvironment().run(stripe_activities.apply_final_action, cancel(case, []))
    assert (raised.value.type, raised.value.non_retryable) == ("StripeAPIError", False)
    assert not canceled(stripe_control, case)
    again = ActivityEnvironment().run(stripe_activities.apply_final_action, cancel(case, []))
    assert again.untried_card == card
