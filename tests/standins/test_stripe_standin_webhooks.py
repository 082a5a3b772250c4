"""The Stripe stand-in's signed webhooks: the events, their retries, the failed-invoice scenario."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import stripe

from tests.standins.stripe_helpers import (
    SECRET,
    Receiver,
    charges,
    make_client,
    open_invoice,
    subscription_of,
    verified,
)


def test_signed_webhooks(
    client: stripe.StripeClient, base: str, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    rec.received.clear()
    httpx.post(f"{base}/_standin/webhooks", json={"url": url, "secret": SECRET})
    inv = open_invoice(client, "pm_card_authenticationRequired")
    with pytest.raises(stripe.CardError):
        client.v1.invoices.pay(inv.id, options={"idempotency_key": "hook-pay"})
    event = verified(*rec.wait_for("invoice.payment_failed"))
    assert event.object == "event" and event.id.startswith("evt_")
    assert event.api_version == "2026-10-28.endive" and event.livemode is False
    assert event.request.idempotency_key == "hook-pay"
    assert event.data.object.id == inv.id and event.data.object.attempt_count == 1
    verified(*rec.wait_for("invoice.payment_action_required"))
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(rec.received[0][0], rec.received[0][1], "whsec_wrong")
    client.v1.customers.update(
        str(inv.customer), params={"invoice_settings": {"default_payment_method": "pm_card_visa"}}
    )
    updated = verified(*rec.wait_for("customer.updated"))
    old_pm = updated.data.previous_attributes["invoice_settings"]["default_payment_method"]
    assert old_pm.startswith("pm_")
    verified(*rec.wait_for("payment_method.attached"))
    client.v1.invoices.pay(inv.id)
    verified(*rec.wait_for("invoice.paid"))
    verified(*rec.wait_for("invoice.payment_succeeded"))
    client.v1.subscriptions.cancel(subscription_of(inv))
    verified(*rec.wait_for("customer.subscription.deleted"))
    other = open_invoice(client)
    client.v1.invoices.void_invoice(other.id)
    verified(*rec.wait_for("invoice.voided"))


def test_failed_deliveries_are_retried(base: str, receiver: tuple[Receiver, str]) -> None:
    rec, url = receiver
    rec.received.clear()
    rec.fail_next = 1
    httpx.post(f"{base}/_standin/webhooks", json={"url": url, "secret": SECRET})
    client = make_client(base)
    client.v1.customers.create(params={"name": "R"})
    rec.wait_for("customer.created")

    def wait() -> list[Any]:
        return list(httpx.get(f"{base}/_standin/events").json()["deliveries"])

    deadline = time.monotonic() + 5
    statuses: list[int] = []
    while statuses != [500, 200] and time.monotonic() < deadline:
        # The stand-in records a delivery after the receiver has answered it.
        statuses = [d["status_code"] for d in wait() if d["type"] == "customer.created"]
        time.sleep(0.02)
    assert statuses == [500, 200]


def test_failed_invoice_scenario(base: str, receiver: tuple[Receiver, str]) -> None:
    rec, url = receiver
    rec.received.clear()
    httpx.post(f"{base}/_standin/webhooks", json={"url": url, "secret": SECRET})
    out = httpx.post(
        f"{base}/_standin/scenarios/failed_invoice",
        json={
            "payment_method": "pm_card_chargeDeclinedInsufficientFunds",
            "amount": 1200,
            "currency": "eur",
            "name": "Jana",
            "email": "jana@example.com",
            "preferred_locales": ["de"],
        },
    ).json()
    assert out["event"]["type"] == "invoice.payment_failed"
    assert out["event"]["request"] == {"id": None, "idempotency_key": None}
    client = make_client(base)
    inv = client.v1.invoices.retrieve(out["invoice"], params={"expand": ["customer"]})
    assert inv.status == "open" and inv.attempt_count == 1 and inv.amount_due == 1200
    assert inv.currency == "eur" and inv.next_payment_attempt is not None
    assert inv.customer.preferred_locales == ["de"]  # type: ignore[union-attr]
    assert subscription_of(inv) == out["subscription"]
    assert client.v1.subscriptions.retrieve(out["subscription"]).status == "past_due"
    assert charges(base, out["invoice"])["count"] == 1
    event = verified(*rec.wait_for("invoice.payment_failed"))
    assert event.id == out["event"]["id"]
