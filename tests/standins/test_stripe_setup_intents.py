"""The stand-in's SetupIntents through the real stripe SDK, and its test confirmation page."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import stripe

from models.settings import Settings
from models.stripe_reads import make_stripe_client


@pytest.fixture
def sdk(settings: Settings) -> stripe.StripeClient:
    return make_stripe_client(settings)


def new_customer(sdk: stripe.StripeClient) -> str:
    return sdk.v1.customers.create(params={"email": "si@example.com"}).id


def test_create_retrieve_and_confirm_attaches_the_card_to_the_customer(
    sdk: stripe.StripeClient,
) -> None:
    customer = new_customer(sdk)
    si = sdk.v1.setup_intents.create(params={"customer": customer, "usage": "off_session"})
    assert si.object == "setup_intent" and si.id.startswith("seti_")
    assert si.status == "requires_payment_method" and si.usage == "off_session"
    assert si.client_secret and si.client_secret.startswith(f"{si.id}_secret_")
    done = sdk.v1.setup_intents.confirm(si.id, params={"payment_method": "pm_card_visa"})
    assert done.status == "succeeded"
    assert isinstance(done.payment_method, str) and done.payment_method.startswith("pm_")
    assert done.payment_method != "pm_card_visa"  # a token materialises as a new PM
    pm = sdk.v1.payment_methods.retrieve(done.payment_method)
    assert pm.customer == customer and pm.card is not None and pm.card.last4 == "4242"
    assert sdk.v1.setup_intents.retrieve(si.id).status == "succeeded"
    with pytest.raises(stripe.InvalidRequestError, match="status of succeeded"):
        sdk.v1.setup_intents.confirm(si.id, params={"payment_method": "pm_card_visa"})


def test_a_declining_card_fails_setup_but_the_charge_fail_card_attaches(
    sdk: stripe.StripeClient,
) -> None:
    customer = new_customer(sdk)
    si = sdk.v1.setup_intents.create(params={"customer": customer})
    with pytest.raises(stripe.CardError) as declined:
        sdk.v1.setup_intents.confirm(si.id, params={"payment_method": "pm_card_chargeDeclined"})
    assert declined.value.code == "card_declined"
    again = sdk.v1.setup_intents.retrieve(si.id)
    assert again.status == "requires_payment_method" and again.last_setup_error is not None
    ok = sdk.v1.setup_intents.confirm(
        si.id, params={"payment_method": "pm_card_chargeCustomerFail"}
    )
    assert ok.status == "succeeded"


def test_the_test_page_confirms_and_returns_as_stripe_js_does(
    sdk: stripe.StripeClient, settings: Settings
) -> None:
    customer = new_customer(sdk)
    si = sdk.v1.setup_intents.create(params={"customer": customer})
    assert si.client_secret
    page = f"{settings.stripe_api_base}/_standin/setup_intents/{si.id}/test_page"
    back = "https://shop.example.com/pay/tok/card-return?x=1"
    query = {"client_secret": si.client_secret, "return_url": back}
    assert httpx.get(page, params={**query, "client_secret": "wrong"}).status_code == 404
    shown = httpx.get(page, params=query)
    assert shown.status_code == 200 and 'value="pm_card_visa"' in shown.text
    refused = httpx.post(page, data={**query, "payment_method": "pm_card_chargeDeclined"})
    assert refused.status_code == 402 and re.search(r"declined", refused.text)
    sent = httpx.post(page, data={**query, "payment_method": "pm_card_mastercard"})
    assert sent.status_code == 303
    target = urlsplit(sent.headers["location"])
    assert target.netloc == "shop.example.com" and target.path == "/pay/tok/card-return"
    params = parse_qs(target.query)
    assert params["setup_intent"] == [si.id] and params["redirect_status"] == ["succeeded"]
    assert params["x"] == ["1"]
    done = sdk.v1.setup_intents.retrieve(si.id)
    assert done.status == "succeeded" and isinstance(done.payment_method, str)
    assert sdk.v1.payment_methods.retrieve(done.payment_method).customer == customer
