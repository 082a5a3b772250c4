"""Paying an invoice on the Stripe stand-in: test-card declines, recovery, rejected payments."""

from __future__ import annotations

import pytest
import stripe

from tests.standins.stripe_helpers import charges, open_invoice, subscription_of

DECLINES = [
    ("pm_card_chargeDeclined", "card_declined", "generic_decline", "try_again_later"),
    (
        "pm_card_chargeDeclinedInsufficientFunds",
        "card_declined",
        "insufficient_funds",
        "try_again_later",
    ),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card", "confirm_card_data"),
    ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc", "confirm_card_data"),
    (
        "pm_card_chargeDeclinedProcessingError",
        "processing_error",
        "processing_error",
        "try_again_later",
    ),
    ("pm_card_chargeDeclinedFraudulent", "card_declined", "fraudulent", "do_not_try_again"),
    ("pm_card_chargeDeclinedLostCard", "card_declined", "lost_card", "do_not_try_again"),
    ("pm_card_chargeDeclinedStolenCard", "card_declined", "stolen_card", "do_not_try_again"),
    ("pm_card_authenticationRequired", "authentication_required", "authentication_required", None),
]


@pytest.mark.parametrize(("pm", "code", "decline_code", "advice_code"), DECLINES)
def test_declined_payment(
    client: stripe.StripeClient,
    base: str,
    pm: str,
    code: str,
    decline_code: str,
    advice_code: str | None,
) -> None:
    inv = open_invoice(client, pm)
    with pytest.raises(stripe.CardError) as info:
        client.v1.invoices.pay(inv.id)
    err = info.value
    assert err.http_status == 402 and err.code == code
    assert err.error is not None
    assert err.error.type == "card_error"
    assert err.error.decline_code == decline_code
    assert err.error.advice_code == advice_code
    assert err.error.charge and err.error.charge.startswith("ch_")
    assert err.error.doc_url and err.error.message
    pi = err.error.payment_intent
    assert pi is not None and pi.object == "payment_intent"
    assert pi.status == (
        "requires_action" if pm.endswith("Required") else "requires_payment_method"
    )
    after = client.v1.invoices.retrieve(inv.id)
    assert after.status == "open" and after.attempt_count == 1 and after.attempted is True
    assert client.v1.subscriptions.retrieve(subscription_of(inv)).status == "past_due"
    log = charges(base, inv.id)
    assert log["count"] == 1 and log["attempts"][0]["outcome"] == "declined"
    assert log["attempts"][0]["decline_code"] == decline_code


def test_on_session_authentication_needs_customer_action(client: stripe.StripeClient) -> None:
    inv = open_invoice(client, "pm_card_authenticationRequired")
    with pytest.raises(stripe.CardError) as info:
        client.v1.invoices.pay(inv.id, params={"off_session": False})
    assert info.value.code == "invoice_payment_intent_requires_action"


def test_successful_payment_recovers_subscription(client: stripe.StripeClient, base: str) -> None:
    inv = open_invoice(client, "pm_card_chargeDeclined")
    with pytest.raises(stripe.CardError):
        client.v1.invoices.pay(inv.id)
    paid = client.v1.invoices.pay(inv.id, params={"payment_method": "pm_card_visa"})
    assert paid.status == "paid" and paid.amount_paid == 1200 and paid.amount_remaining == 0
    assert paid.status_transitions.paid_at is not None and paid.attempt_count == 2
    assert client.v1.subscriptions.retrieve(subscription_of(inv)).status == "active"
    assert [a["outcome"] for a in charges(base, inv.id)["attempts"]] == ["declined", "succeeded"]
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.invoices.pay(inv.id)
    assert info.value.http_status == 400 and "already paid" in str(info.value.user_message)


def test_paid_out_of_band_is_not_a_charge(client: stripe.StripeClient, base: str) -> None:
    inv = open_invoice(client)
    paid = client.v1.invoices.pay(inv.id, params={"paid_out_of_band": True})
    assert paid.status == "paid"
    assert charges(base, inv.id)["count"] == 0


def test_pay_without_payment_method_is_rejected(client: stripe.StripeClient, base: str) -> None:
    inv = open_invoice(client, pm=None)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.invoices.pay(inv.id, options={"idempotency_key": "first"})
    assert "no attached payment source or default payment method" in str(info.value)
    assert charges(base, inv.id)["count"] == 0
    # A validation failure saves no idempotent result, so the same key may run again.
    client.v1.customers.update(
        str(inv.customer), params={"invoice_settings": {"default_payment_method": "pm_card_visa"}}
    )
    assert client.v1.invoices.pay(inv.id, options={"idempotency_key": "first"}).status == "paid"
