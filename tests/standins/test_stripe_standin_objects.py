"""The Stripe stand-in's objects through the real stripe SDK over HTTP: auth, shapes, states."""

from __future__ import annotations

import httpx
import pytest
import stripe

from standins.stripe_api.forms import decode
from tests.standins.stripe_helpers import open_invoice, subscription_of


def test_forms_decode_bracket_notation() -> None:
    body = (
        "invoice_settings[default_payment_method]=pm_x&expand[]=customer&expand[]=lines"
        "&items[0][price_data][unit_amount]=5&items[1][price]=price_1&metadata[a]=&name=N"
    )
    assert decode(body) == {
        "invoice_settings": {"default_payment_method": "pm_x"},
        "expand": ["customer", "lines"],
        "items": [{"price_data": {"unit_amount": "5"}}, {"price": "price_1"}],
        "metadata": {"a": ""},
        "name": "N",
    }


def test_auth_is_required(base: str) -> None:
    response = httpx.post(f"{base}/v1/customers")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.headers["Request-Id"].startswith("req_")
    bad = stripe.StripeClient("pk_live_nope", base_addresses={"api": base}, max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError):
        bad.v1.customers.create()


def test_customer_shape_and_update(client: stripe.StripeClient) -> None:
    cus = client.v1.customers.create(
        params={
            "name": "Max",
            "email": "max@example.com",
            "preferred_locales": ["de"],
            "metadata": {"crm": "42"},
        }
    )
    assert cus.id.startswith("cus_") and cus.object == "customer" and cus.livemode is False
    assert cus.preferred_locales == ["de"] and cus.metadata is not None
    assert cus.metadata["crm"] == "42"
    pm = client.v1.payment_methods.attach("pm_card_mastercard", params={"customer": cus.id})
    assert pm.id.startswith("pm_") and pm.id != "pm_card_mastercard"
    assert pm.customer == cus.id and pm.card is not None and pm.card.last4 == "4444"
    updated = client.v1.customers.update(
        cus.id, params={"invoice_settings": {"default_payment_method": pm.id}}
    )
    assert updated.invoice_settings is not None
    assert updated.invoice_settings.default_payment_method == pm.id
    fetched = client.v1.customers.retrieve(cus.id)
    assert fetched.invoice_settings is not None
    assert fetched.invoice_settings.default_payment_method == pm.id
    assert client.v1.payment_methods.retrieve(pm.id).customer == cus.id


def test_invoice_has_current_api_shape(client: stripe.StripeClient) -> None:
    inv = open_invoice(client)
    raw = inv.to_dict()
    for gone in ("subscription", "charge", "payment_intent"):
        assert gone not in raw
    assert inv.parent.type == "subscription_details"
    assert subscription_of(inv).startswith("sub_")
    assert inv.status == "open" and inv.amount_due == 1200 and inv.amount_remaining == 1200
    assert inv.attempt_count == 0 and inv.attempted is False
    assert inv.number and inv.hosted_invoice_url and inv.invoice_pdf
    assert inv.status_transitions.finalized_at is not None
    assert inv.lines.object == "list" and inv.lines.data[0].amount == 1200
    assert inv.customer_email == "erika@example.com" and inv.customer_name == "Erika"
    expanded = client.v1.invoices.retrieve(inv.id, params={"expand": ["customer"]})
    assert expanded.customer.object == "customer"  # type: ignore[union-attr]
    assert expanded.customer.email == "erika@example.com"  # type: ignore[union-attr]


def test_void_uncollectible_and_cancel(client: stripe.StripeClient) -> None:
    inv = open_invoice(client)
    voided = client.v1.invoices.void_invoice(inv.id)
    assert voided.status == "void" and voided.status_transitions.voided_at is not None
    other = open_invoice(client)
    bad = client.v1.invoices.mark_uncollectible(other.id)
    assert bad.status == "uncollectible"
    assert bad.status_transitions.marked_uncollectible_at is not None
    sub = client.v1.subscriptions.cancel(subscription_of(other))
    assert sub.status == "canceled" and sub.canceled_at is not None
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.subscriptions.cancel(sub.id)
    assert info.value.http_status == 404 and info.value.code == "resource_missing"
